"""The `probe` PRM's model: what it reads of a frozen causal LM at each step, and its head.

A probe checkpoint (ReProbe-style) is a folder: probe.json (the backbone, "embedded" or a
model path relative to the folder, and a ProbeSpec: which layers, pooled how, and which
extra features) and probe.safetensors (the head). The text the backbone reads is the trl
format: the question, then each step after a blank line, and a blank line at the end.

Features of one step, concatenated in this order:
- for each layer in `layers`, for each pooling in `pool`: the hidden state at the last token
  of the step's separator ("last"), or the mean over the step's tokens and that separator
  ("mean");
- with `token_stats`: the backbone's own view of the step's tokens (mean and min token
  log-probability, mean entropy of the next-token distribution), what the `confidence`
  scorer reads, here over the trl text;
- with `text_features`: the calculator's features of the step (step_features.py, whose
  VERSION must match).
The head standardises them, then a linear layer or a one-hidden-layer MLP gives a logit;
the score is sigmoid(scale * logit + bias), where (scale, bias) is the Platt calibration
fitted on a validation split ((1, 0) when none was fitted).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch

from . import step_features

POOLS = ("last", "mean")


@dataclass(frozen=True)
class ProbeSpec:
    layers: tuple[int, ...]
    pool: tuple[str, ...] = ("last",)
    token_stats: bool = False
    text_features: str | None = None  # step_features.VERSION, or None
    calibration: tuple[float, float] = (1.0, 0.0)  # (scale, bias) on the head's logit

    def __post_init__(self) -> None:
        if not self.layers or min(self.layers) < 0:
            raise ValueError("layers must be hidden-state indices (0 = the embeddings)")
        if not self.pool or any(p not in POOLS for p in self.pool):
            raise ValueError(f"pool must be some of {', '.join(POOLS)}")
        if self.text_features not in (None, step_features.VERSION):
            raise ValueError(
                f"text features {self.text_features!r} are not this version's "
                f"({step_features.VERSION}): train the probe again"
            )

    def width(self, hidden_size: int) -> int:
        return (
            hidden_size * len(self.layers) * len(self.pool)
            + 3 * self.token_stats
            + len(step_features.NAMES) * (self.text_features is not None)
        )

    def to_json(self) -> dict:
        return {
            **asdict(self),
            "layers": list(self.layers),
            "pool": list(self.pool),
            "calibration": list(self.calibration),
        }

    @classmethod
    def from_json(cls, config: dict) -> ProbeSpec:
        return cls(
            tuple(int(i) for i in config["layers"]),
            tuple(config.get("pool", ("last",))),
            bool(config.get("token_stats", False)),
            config.get("text_features"),
            tuple(float(v) for v in config.get("calibration", (1.0, 0.0))),
        )


class ProbeHead(torch.nn.Module):
    """(x - mean) / std, then Linear (hidden == 0) or Linear-GELU-Linear: [..., d] -> logits [...]."""

    def __init__(self, features: int, hidden: int = 0):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))
        self.net = (
            torch.nn.Linear(features, 1)
            if hidden == 0
            else torch.nn.Sequential(torch.nn.Linear(features, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, 1))
        )

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net((x.float() - self.mean) / self.std).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


@dataclass
class StepSpans:
    """One path in the backbone's tokens: ids, and per step its first token and score token."""

    ids: list[int]
    starts: list[int]
    ends: list[int]  # the last token of the step's separator: where "last" reads
    question: str = ""
    steps: list[str] = field(default_factory=list)


class ProbeModel(torch.nn.Module):
    """A backbone (shared, read-only) and a probe head reading it as `spec` says."""

    def __init__(self, backbone, head: ProbeHead, spec: ProbeSpec, name: str = "its backbone"):
        super().__init__()
        self.backbone, self.head, self.spec, self.name = backbone, head, spec, name

    def step_features(self, spans: list[StepSpans], pad: int) -> list[torch.Tensor]:
        """Per path, [steps, width] float32 features of its steps, one forward for the batch."""
        longest = max(len(s.ids) for s in spans)
        ids = torch.full((len(spans), longest), pad, dtype=torch.long)
        mask = torch.zeros(len(spans), longest, dtype=torch.long)
        for row, s in enumerate(spans):  # right padding: positions stay as computed
            ids[row, : len(s.ids)] = torch.tensor(s.ids)
            mask[row, : len(s.ids)] = 1
        out = self.backbone.base_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        hidden = [out.hidden_states[layer] for layer in self.spec.layers]
        stats = self._token_stats(out.hidden_states[-1], ids, spans) if self.spec.token_stats else None
        result = []
        for row, s in enumerate(spans):
            rows = []
            for k, (start, end) in enumerate(zip(s.starts, s.ends)):
                parts = [
                    h[row, end] if pool == "last" else h[row, start : end + 1].mean(0)
                    for h in hidden
                    for pool in self.spec.pool
                ]
                if stats is not None:
                    parts.append(stats[row][k])
                rows.append(torch.cat([p.float() for p in parts]))
            features = torch.stack(rows)
            if self.spec.text_features is not None:
                text = torch.tensor(step_features.path_features(s.question, s.steps), dtype=torch.float32)
                features = torch.cat([features, text], dim=1)
            result.append(features)
        return result

    def _token_stats(self, last_hidden: torch.Tensor, ids: torch.Tensor, spans: list[StepSpans]):
        """Per path, per step: [mean log-prob, min log-prob, mean entropy] of its tokens (each token
        predicted from the one before it), the LM head applied only where it is read."""
        where = [
            (row, t)
            for row, s in enumerate(spans)
            for start, end in zip(s.starts, s.ends)
            for t in range(max(start, 1), end + 1)
        ]
        rows = torch.tensor([r for r, _ in where])
        positions = torch.tensor([t for _, t in where])
        logits = self.backbone.get_output_embeddings()(last_hidden[rows, positions - 1]).float()
        logp = torch.log_softmax(logits, dim=-1)
        token_logp = logp.gather(1, ids[rows, positions].unsqueeze(1)).squeeze(1)
        entropy = -(logp.exp() * logp).sum(-1)
        out, cursor = [], 0
        for s in spans:
            per_step = []
            for start, end in zip(s.starts, s.ends):
                count = end + 1 - max(start, 1)
                lp, ent = token_logp[cursor : cursor + count], entropy[cursor : cursor + count]
                cursor += count
                per_step.append(torch.stack([lp.mean(), lp.min(), ent.mean()]) if count else torch.zeros(3))
            out.append(per_step)
        return out

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Calibrated step scores in (0, 1) from step features."""
        scale, bias = self.spec.calibration
        return torch.sigmoid(scale * self.head.logits(features) + bias)
