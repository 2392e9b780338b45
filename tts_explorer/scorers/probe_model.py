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
- with `text_features`: the calculator's features of the step (step_features.py, in the
  version named, one of its VERSIONS).
The head standardises them, then a linear layer or a one-hidden-layer MLP gives a logit;
the score is sigmoid(scale * logit + bias), where (scale, bias) is the Platt calibration
fitted on a validation split ((1, 0) when none was fitted).

A search scores each new step of a path whose earlier steps it scored before: a step's
features depend only on the tokens up to its separator (the backbone is causal), so the
paths scored are kept (ScoredPaths: their keys and values as a tree of segments, their
steps' features, at the end of each step's text), and a path that extends one, or parts from
one after a shared step, is fed from the end of the last shared step's text. Not from the
end of its separator: a blank line that ends the text is one token, and a blank line
followed by more text is two, so the separator is fed again, and that step's features are
completed from the sums kept of its text's tokens (the "mean" pooling and the token
statistics), as whole-path scoring reads a step that is not the last.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, field

import torch

from ..policy.kv import Segment, kept_bytes
from ..policy.steppers import ModelShape
from . import step_features

POOLS = ("last", "mean")
LAST_SEPARATORS = ("alone", "followed")  # how a text's last separator is tokenized (ProbePRM.tokenize)
SCORED_PATHS_MB = 128  # one scorer's (one search's) kept paths' keys and values, each segment counted once


@dataclass(frozen=True)
class ProbeSpec:
    layers: tuple[int, ...]
    pool: tuple[str, ...] = ("last",)
    token_stats: bool = False
    text_features: str | None = None  # one of step_features.VERSIONS, or None
    calibration: tuple[float, float] = (1.0, 0.0)  # (scale, bias) on the head's logit
    last_separator: str = "alone"  # the text's last separator tokenized as its end, or "followed" (ProbePRM.tokenize)

    def __post_init__(self) -> None:
        if not self.layers or min(self.layers) < 0:
            raise ValueError("layers must be hidden-state indices (0 = the embeddings)")
        if self.last_separator not in LAST_SEPARATORS:
            raise ValueError(f"last_separator must be one of {', '.join(LAST_SEPARATORS)}")
        if not self.pool or any(p not in POOLS for p in self.pool):
            raise ValueError(f"pool must be some of {', '.join(POOLS)}")
        if self.text_features is not None and self.text_features not in tuple(step_features.VERSIONS):
            raise ValueError(
                f"text features {str(self.text_features)[:40]!r} are not a version this release reads "
                f"({', '.join(step_features.VERSIONS)}): train the probe again"
            )

    def width(self, hidden_size: int) -> int:
        return (
            hidden_size * len(self.layers) * len(self.pool)
            + 3 * self.token_stats
            + (len(step_features.VERSIONS[self.text_features]) if self.text_features is not None else 0)
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
            config.get("last_separator", "alone"),
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
    cuts: list[int] = field(default_factory=list)  # the first token after the step's text (its separator's)


@dataclass(frozen=True, eq=False)
class _Scored:
    """A scored path up to the end of one step's text (`segment`: the keys and values of those
    positions): the features of the steps before that one, the sums kept of that open step's
    tokens (None for the question alone, which has no open step), and the last token's
    last-layer hidden state (from which the next token's log-probability is read)."""

    segment: Segment
    features: torch.Tensor  # [closed steps, backbone features]
    tail: torch.Tensor  # [hidden]
    open_sums: tuple[torch.Tensor, ...] | None = None  # per read layer: the sum of its hidden states
    open_count: int = 0  # tokens in those sums
    open_stats: tuple[float, float, float, int] = (0.0, float("inf"), 0.0, 0)  # sum, min log-prob; sum entropy; n


class ScoredPaths:
    """The paths one scorer has scored, by token ids; past `cap_bytes` of keys and values (each
    segment counted once) the least recently used are dropped."""

    def __init__(self, cap_bytes: int):
        self.cap = cap_bytes
        self.entries: OrderedDict[tuple[int, ...], _Scored] = OrderedDict()

    def longest(self, span: StepSpans) -> tuple[int, _Scored | None]:
        """(k, entry): the longest kept path this one extends, which ends after the text of this
        one's step k (its steps before k reused, step k completed), or the question alone (k = 0);
        (0, None) when there is none."""
        if len(span.cuts) != len(span.starts) or not span.starts:
            return 0, None
        for k in range(len(span.starts) - 1, -1, -1):
            hit = self.entries.get(key := tuple(span.ids[: span.cuts[k]]))
            if hit is not None and hit.open_sums is not None and hit.features.shape[0] == k:
                self.entries.move_to_end(key)
                return k, hit
        hit = self.entries.get(key := tuple(span.ids[: span.starts[0]]))
        if hit is not None and hit.open_sums is None and hit.features.shape[0] == 0:
            self.entries.move_to_end(key)
            return 0, hit
        return 0, None

    def put(self, ids: list[int], entry: _Scored) -> None:
        self.entries[tuple(ids)] = entry
        self.entries.move_to_end(tuple(ids))

    def trim(self) -> None:
        while len(self.entries) > 1 and kept_bytes(e.segment for e in self.entries.values()) > self.cap:
            self.entries.popitem(last=False)


class ProbeModel(torch.nn.Module):
    """A backbone (shared, read-only) and a probe head reading it as `spec` says."""

    def __init__(self, backbone, head: ProbeHead, spec: ProbeSpec, name: str = "its backbone"):
        super().__init__()
        self.backbone, self.head, self.spec, self.name = backbone, head, spec, name
        self.shape = ModelShape(backbone)  # of the kept paths' keys and values
        # a cache of past keys and values holds every layer's whole past: not for sliding-window layers
        self.resumable = not getattr(backbone.config, "sliding_window", None)

    def step_features(
        self, spans: list[StepSpans], pad: int, scored: ScoredPaths | None = None
    ) -> tuple[list[torch.Tensor], int]:
        """Per path, [steps, width] float32 features of its steps, one forward for the batch, and
        the tokens fed: with `scored`, a path that extends a kept one is fed from where that one
        ended, and each path is kept."""
        keeping = scored is not None and self.resumable
        hits = [scored.longest(s) if keeping else (0, None) for s in spans]
        past = [hit.segment.end if hit is not None else 0 for _, hit in hits]
        fed = [len(s.ids) - p for s, p in zip(spans, past)]
        longest, widest = max(fed), max(past)
        ids = torch.full((len(spans), longest), pad, dtype=torch.long)
        mask = torch.zeros(len(spans), widest + longest, dtype=torch.long)
        for row, (s, p) in enumerate(zip(spans, past)):  # right padding: positions stay as computed
            ids[row, : len(s.ids) - p] = torch.tensor(s.ids[p:])
            mask[row, :p] = 1
            mask[row, widest : widest + len(s.ids) - p] = 1
        inputs = {"input_ids": ids, "attention_mask": mask, "output_hidden_states": True}
        if widest:
            inputs["position_ids"] = torch.tensor(past).unsqueeze(1) + torch.arange(longest)
        if keeping:
            inputs["cache"], inputs["use_cache"] = self._past(hits, widest), True
        out = self.backbone.base_model(**inputs)
        hidden = [out.hidden_states[layer] for layer in self.spec.layers]
        last = out.hidden_states[-1]
        stats = self._token_stats(last, spans, past, hits) if self.spec.token_stats else None
        result = []
        width = sum(h.shape[-1] for h in hidden) * len(self.spec.pool) + 3 * self.spec.token_stats
        for row, (s, p, (first, hit)) in enumerate(zip(spans, past, hits)):
            rows = [self._features(row, k, s, p, hit, hidden, stats) for k in range(first, len(s.starts))]
            new = torch.stack(rows) if rows else torch.zeros(0, width)
            features = torch.cat([hit.features[:first], new]) if hit is not None else new
            if keeping and len(s.cuts) == len(s.starts) and s.starts:
                self._keep(scored, s, p, hit, features, inputs["cache"], row, widest, last[row], hidden, stats)
            if self.spec.text_features is not None:
                text = torch.tensor(
                    step_features.path_features(s.question, s.steps, self.spec.text_features), dtype=torch.float32
                )
                features = torch.cat([features, text], dim=1)
            result.append(features)
        if keeping:
            scored.trim()
        return result, sum(fed)

    def _features(self, row, k, span, past, hit, hidden, stats) -> torch.Tensor:
        """Step k's backbone features; its tokens before `past` (an open step's text, fed
        earlier) enter through the kept sums."""
        start, end = span.starts[k], span.ends[k]
        kept = hit is not None and hit.open_sums is not None and start < past
        parts = []
        for index, h in enumerate(hidden):
            for pool in self.spec.pool:
                if pool == "last":
                    parts.append(h[row, end - past].float())
                    continue
                tokens = h[row, max(start, past) - past : end - past + 1].float()
                if kept:
                    parts.append((tokens.sum(0) + hit.open_sums[index]) / (len(tokens) + hit.open_count))
                else:
                    parts.append(tokens.mean(0))
        if stats is not None:
            logp, entropy = stats[row]
            fed = range(max(start, past, 1), end + 1)
            lp = torch.stack([logp[t] for t in fed]) if fed else torch.zeros(0)
            ent = torch.stack([entropy[t] for t in fed]) if fed else torch.zeros(0)
            total, low, ent_total, count = hit.open_stats if kept else (0.0, float("inf"), 0.0, 0)
            count += len(lp)
            if count:
                low = min(low, float(lp.min())) if len(lp) else low
                parts.append(
                    torch.tensor([(total + float(lp.sum())) / count, low, (ent_total + float(ent.sum())) / count])
                )
            else:
                parts.append(torch.zeros(3))
        return torch.cat(parts)

    def _past(self, hits, widest: int):
        """The kept paths' keys and values, each row's at the start of `widest` positions."""
        from transformers import DynamicCache

        if not widest:
            return DynamicCache()
        shape = self.shape
        layers = []
        for layer in range(shape.layers):
            keys = torch.zeros(len(hits), shape.kv_heads, widest, shape.head_dim, dtype=shape.dtype)
            values = torch.zeros_like(keys)
            for row, (_, hit) in enumerate(hits):
                for segment in hit.segment.chain() if hit is not None else []:
                    keys[row, :, segment.start : segment.end] = segment.keys[layer]
                    values[row, :, segment.start : segment.end] = segment.values[layer]
            layers.append((keys, values))
        return DynamicCache(ddp_cache_data=layers)

    def _keep(self, scored, span, past, hit, features, cache, row, widest, last, hidden, stats) -> None:
        """Keep a path just scored at each step boundary fed: the question (where it extends no
        kept path) and the end of each step's text, each a segment of keys and values under the
        one before, with the features of the steps before it, that step's sums so far and the
        hidden state of its last token (`last`: the row's last-layer states of the tokens fed)."""
        keys = [layer.keys[row, :, widest : widest + len(span.ids) - past] for layer in cache.layers]
        values = [layer.values[row, :, widest : widest + len(span.ids) - past] for layer in cache.layers]
        parent, at = (hit.segment if hit is not None else None), past

        def segment(to: int) -> Segment:
            own = slice(at - past, to - past)
            return Segment(tuple(k[:, own].clone() for k in keys), tuple(v[:, own].clone() for v in values), parent)

        if hit is None and 0 < span.starts[0]:
            parent, at = segment(span.starts[0]), span.starts[0]
            scored.put(span.ids[:at], _Scored(parent, features[:0], last[at - 1 - past].clone()))
        for k, (start, cut) in enumerate(zip(span.starts, span.cuts)):
            if cut <= at or start < past:  # kept already, or an open step completed from kept sums
                continue
            sums = tuple(h[row, start - past : cut - past].float().sum(0) for h in hidden)
            open_stats = (0.0, float("inf"), 0.0, 0)
            text = range(max(start, 1), cut)
            if stats is not None and text:
                logp, entropy = stats[row]
                lp, ent = torch.stack([logp[t] for t in text]), torch.stack([entropy[t] for t in text])
                open_stats = (float(lp.sum()), float(lp.min()), float(ent.sum()), len(text))
            parent, at = segment(cut), cut
            scored.put(
                span.ids[:cut],
                _Scored(parent, features[:k], last[cut - 1 - past].clone(), sums, cut - start, open_stats),
            )

    def _token_stats(self, last_hidden, spans, past, hits):
        """Per path, the log-probability and the next-token entropy of each fed token of the
        steps computed (each token predicted from the one before it, the kept path's tail where
        that one was not fed), as {position: value}; the LM head applied only there."""
        where = [
            (row, t)
            for row, (s, p, (first, _)) in enumerate(zip(spans, past, hits))
            for start, end in zip(s.starts[first:], s.ends[first:])
            for t in range(max(start, p, 1), end + 1)
        ]
        out = [({}, {}) for _ in spans]
        if not where:
            return out
        states = torch.stack(
            [
                last_hidden[row, t - 1 - past[row]] if t - 1 >= past[row] else hits[row][1].tail.to(last_hidden.dtype)
                for row, t in where
            ]
        )
        logits = self.backbone.get_output_embeddings()(states).float()
        logp = torch.log_softmax(logits, dim=-1)
        tokens = torch.tensor([spans[row].ids[t] for row, t in where])
        token_logp = logp.gather(1, tokens.unsqueeze(1)).squeeze(1)
        entropy = -(logp.exp() * logp).sum(-1)
        for i, (row, t) in enumerate(where):
            out[row][0][t], out[row][1][t] = token_logp[i], entropy[i]
        return out

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """Calibrated step scores in (0, 1) from step features."""
        scale, bias = self.spec.calibration
        return torch.sigmoid(scale * self.head.logits(features) + bias)
