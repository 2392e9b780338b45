"""Learned PRMs: each format scores a path's steps exactly as its models were trained.

A format turns (question, steps) into one text and the character offsets at which each
step's score is read; the offsets map to tokens through the fast tokenizer, so a wrong
template shows up as a wrong position. The model id or local path is an argument, not a
class per checkpoint. Formats (see each model card):

- math-shepherd: `question + " " + steps`, each step ending in " ки"; P("+") against "-"
  at every "ки" (causal LM).
- qwen-prm: chat template, the system prompt below, the assistant turn = steps joined by
  "<extra_0>" plus a trailing "<extra_0>"; softmax(logits)[..., 1] at "<extra_0>"
  (token-classification head).
- skywork: bos + problem + "\\n", then each step + "\\n"; sigmoid of a linear value head
  at each step's last token (the value head's weights, `v_head.summary.*`, are read from
  the checkpoint's safetensors).
- rlhflow: each step a user turn answered by an assistant "+"; P("+") against "-" where
  the assistant's token is predicted (causal LM).
- trl: `"\\n\\n".join([question, *steps]) + "\\n\\n"`; softmax(logits)[..., 1] at the last
  token of each step's separator (token-classification head).
- probe: a small head on a frozen causal LM (ReProbe-style, probe_model.py): the same text
  as trl; the hidden states of chosen layers at each step (its separator's last token, or
  the mean over its tokens), optionally the backbone's token log-probabilities and the
  calculator's step features; standardised, through a linear layer or a one-hidden-layer
  MLP, calibrated. A checkpoint is a folder with probe.json and probe.safetensors; the
  backbone is loaded as a policy is, so the embedded one is shared with the search's
  policy, never changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError, first_line
from ..policy.compute import flops_params
from ..policy.engine_thread import on_engine
from .base import Scorer, ScorerEnv, StepPath
from .probe_model import SCORED_PATHS_MB, ProbeHead, ProbeModel, ProbeSpec, ScoredPaths, StepSpans

MAX_TOKENS = 4096  # tokens of one scored path (a longer one is refused in one line)
BATCH_TOKENS = 8192  # padded tokens in one forward pass: what bounds a batch's memory
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
_LOADED: dict[tuple, tuple] = {}  # (format, source, dtype, remote code, device) -> (model, tokenizer)


def _stamp(source: str):
    """When a local checkpoint's files last changed (so a rewritten one is loaded again), else None."""
    folder = Path(source)
    try:
        files = [folder] if folder.is_file() else list(folder.iterdir())
        return max((f.stat().st_mtime_ns for f in files), default=None)
    except OSError:
        return None


@dataclass
class Encoded:
    text: str
    offsets: list[int]  # character index of the token whose output is each step's score


class LearnedPRM(Scorer):
    """Base: loading, batching, offsets -> token positions; subclasses give format and head."""

    name = "learned"
    head = "causal"  # "causal", "token-classification" or "value"
    needs_model = True

    def __init__(
        self,
        env: ScorerEnv,
        model: str | None = None,
        dtype: str = "fp32",
        batch_size: int = 4,
        trust_remote_code: bool = False,
        device: str = "cpu",
    ):
        super().__init__(env)
        if not model:
            raise UserError(f"the {self.name} scorer needs model=<a local path or hub id>")
        self.batch_size, self.device = batch_size, device
        key = (type(self), model, _stamp(model), dtype, trust_remote_code, device)
        if key not in _LOADED:  # loaded once per process, shared read-only by every search
            _LOADED[key] = self._loaded(
                model, {"bf16": torch.bfloat16, "fp32": torch.float32}[dtype], trust_remote_code
            )
        self.model, self.tokenizer = _LOADED[key]
        self.flops_params = flops_params(self.model)  # what its FLOPs count (policy/compute.py)

    # --- loading -------------------------------------------------------------------
    @on_engine
    def _loaded(self, source: str, dtype, trust_remote_code: bool):
        model, tokenizer = self._load(source, dtype, trust_remote_code)
        return model.to(self.device).eval(), tokenizer

    def _load(self, source: str, dtype, trust_remote_code: bool):
        from transformers import AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code)
            return self._load_model(source, dtype, trust_remote_code), tokenizer
        except (OSError, ValueError) as exc:
            raise UserError(f"cannot load PRM {source!r}: {first_line(exc)}") from None

    def _load_model(self, source: str, dtype, trust_remote_code: bool):
        """The model with the head this format reads (`head`), from a local path or hub id."""
        from transformers import AutoModelForCausalLM, AutoModelForTokenClassification

        heads = {"causal": AutoModelForCausalLM, "token-classification": AutoModelForTokenClassification}
        try:
            return heads[self.head].from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code)
        except ValueError:
            if not trust_remote_code:
                raise
            # checkpoints whose own code registers only AutoModel (Qwen2.5-Math-PRM) return the same logits
            from transformers import AutoModel

            return AutoModel.from_pretrained(source, dtype=dtype, trust_remote_code=True)

    # --- scoring -------------------------------------------------------------------
    def encode(self, path: StepPath) -> Encoded:
        raise NotImplementedError

    def step_values(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, T] step-score candidates at every position (read where the format says)."""
        raise NotImplementedError

    def positions(self, path: StepPath) -> tuple[list[int], list[int]]:
        """(token ids, token index of each step's score) for one path, at most MAX_TOKENS of them."""
        encoded = self.encode(path)
        if len(encoded.text) > MAX_TOKENS * 16:  # too long whatever the tokenizer: not even tokenized
            raise UserError(
                f"this path is {len(encoded.text)} characters long: the {self.name} PRM reads at "
                f"most {MAX_TOKENS} tokens"
            )
        ids, spans = self.tokenize(encoded.text)
        if len(ids) > MAX_TOKENS:
            raise UserError(f"this path is {len(ids)} tokens long: the {self.name} PRM reads at most {MAX_TOKENS}")
        where = []
        for char in encoded.offsets:
            index = next((i for i, (a, b) in enumerate(spans) if a <= char < b), None)
            if index is None:
                raise ValueError(f"no token covers character {char} of the {self.name} input")
            where.append(index)
        return ids, where

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """(token ids, each token's character span) of the format's text."""
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        return enc["input_ids"], enc["offset_mapping"]

    def batches(self, encoded: list) -> list[list[int]]:
        """Indices of `encoded` (each with its token ids first) in batches of at most batch_size
        paths and BATCH_TOKENS padded tokens, in order; the run's stop check between them."""
        out, current, longest = [], [], 0
        for i, item in enumerate(encoded):
            length = len(item[0])
            if current and (
                len(current) >= self.batch_size or max(longest, length) * (len(current) + 1) > BATCH_TOKENS
            ):
                out.append(current)
                current, longest = [], 0
            current.append(i)
            longest = max(longest, length)
        return out + ([current] if current else [])

    @on_engine
    @torch.inference_mode()
    def score_steps(self, paths: list[StepPath]) -> list[list[float]]:
        out: list[list[float]] = []
        encoded = [self.positions(p) for p in paths]
        for batch in self.batches(encoded):
            self.checkpoint()
            chunk = [encoded[i] for i in batch]
            longest = max(len(ids) for ids, _ in chunk)
            pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
            ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
            mask = torch.zeros(len(chunk), longest, dtype=torch.long)
            for row, (tokens, _) in enumerate(chunk):  # right padding: positions stay as computed
                ids[row, : len(tokens)] = torch.tensor(tokens)
                mask[row, : len(tokens)] = 1
            values = self.step_values(ids.to(self.device), mask.to(self.device)).float().cpu()
            out.extend([values[row, where].tolist() for row, (_, where) in enumerate(chunk)])
            self.env.meter.add("scorer", self.flops_params, prefill=int(mask.sum()))
        return out

    def score_last(self, paths: list[StepPath]) -> list[float]:
        return [scores[-1] for scores in self.score_steps(paths)]


class _PlusMinus(LearnedPRM):
    """Causal-LM PRMs that read P("+") against P("-") from next-token logits."""

    head = "causal"
    plus, minus = "+", "-"

    def _token(self, text: str) -> int:
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return ids[-1]

    def step_values(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        pair = logits[..., [self._token(self.plus), self._token(self.minus)]].float()
        return torch.softmax(pair, dim=-1)[..., 0]


class MathShepherdPRM(_PlusMinus):
    name = "math-shepherd"
    tag = "ки"

    def encode(self, path: StepPath) -> Encoded:
        text, offsets = path.question + " ", []
        for i, step in enumerate(path.steps):
            text += step.strip() + " "
            offsets.append(len(text))
            text += self.tag + ("\n" if i < len(path.steps) - 1 else "")
        return Encoded(text, offsets)


class RLHFlowPRM(_PlusMinus):
    name = "rlhflow"

    def encode(self, path: StepPath) -> Encoded:
        conversation, offsets = [], []
        for i, step in enumerate(path.steps):
            content = f"{path.question} {step.strip()}" if i == 0 else step.strip()
            conversation.append({"role": "user", "content": content})
            prefix = self.tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
            offsets.append(len(prefix) - 1)  # the last prompt token predicts the assistant's "+"
            conversation.append({"role": "assistant", "content": "+"})
        text = self.tokenizer.apply_chat_template(conversation, tokenize=False)
        return Encoded(text, offsets)


class _TokenClassification(LearnedPRM):
    head = "token-classification"

    def step_values(self, input_ids, attention_mask):
        logits = self.model(input_ids=input_ids, attention_mask=attention_mask).logits
        return torch.softmax(logits.float(), dim=-1)[..., 1]


class QwenPRM(_TokenClassification):
    name = "qwen-prm"
    tag = "<extra_0>"

    def encode(self, path: StepPath) -> Encoded:
        answer = "".join(step.strip() + self.tag for step in path.steps)
        messages = [
            {"role": "system", "content": QWEN_SYSTEM},
            {"role": "user", "content": path.question},
            {"role": "assistant", "content": answer},
        ]
        text = self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)
        start = text.rindex(answer)
        offsets, cursor = [], start
        for step in path.steps:
            cursor += len(step.strip())
            offsets.append(cursor)
            cursor += len(self.tag)
        return Encoded(text, offsets)


class TrlPRM(_TokenClassification):
    name = "trl"
    separator = "\n\n"

    def encode(self, path: StepPath) -> Encoded:
        text, offsets = path.question, []
        for step in path.steps:
            text += self.separator + step
            offsets.append(len(text) + len(self.separator) - 1)
        return Encoded(text + self.separator, offsets)


class SkyworkPRM(LearnedPRM):
    name = "skywork"
    head = "value"

    def _load_model(self, source: str, dtype, trust_remote_code: bool):
        """The base model with the checkpoint's value head (v_head.summary.*) attached."""
        from safetensors import safe_open
        from transformers import AutoModel

        base = AutoModel.from_pretrained(source, dtype=dtype, trust_remote_code=trust_remote_code)
        weights: dict[str, torch.Tensor] = {}
        folder = Path(source)
        if not folder.is_dir():  # a hub id: the files from_pretrained has just cached
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(source, allow_patterns=["*.safetensors", "*.json"]))
        for file in sorted(folder.glob("*.safetensors")):
            with safe_open(str(file), framework="pt") as handle:
                for key in handle.keys():
                    if key.startswith("v_head."):
                        weights[key] = handle.get_tensor(key)
        if "v_head.summary.weight" not in weights:
            raise UserError(f"{source!r} has no value head (v_head.summary.weight)")
        head = torch.nn.Linear(weights["v_head.summary.weight"].shape[1], 1)
        head.weight.data.copy_(weights["v_head.summary.weight"])
        head.bias.data.copy_(weights.get("v_head.summary.bias", torch.zeros(1)))
        base.v_head = head.to(dtype)
        return base

    def encode(self, path: StepPath) -> Encoded:
        text = (self.tokenizer.bos_token or "") + path.question + "\n"
        offsets = []
        for step in path.steps:
            text += step.strip() + "\n"
            offsets.append(len(text) - 1)
        return Encoded(text, offsets)

    def step_values(self, input_ids, attention_mask):
        hidden = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return torch.sigmoid(self.model.v_head(hidden).squeeze(-1).float())


PROBE_CONFIG, PROBE_WEIGHTS = "probe.json", "probe.safetensors"
FOLLOWER = "A"  # what a step's text starts with, to tokenize a separator as when a step follows it


class ProbePRM(TrlPRM):
    """The probe format (probe_model.py): the trl text read by a frozen backbone, features per
    step as the checkpoint's ProbeSpec says, a small head and its calibration."""

    name = "probe"
    head = "probe"

    def _load(self, source: str, dtype, trust_remote_code: bool):
        from safetensors.torch import load_file

        from ..policy.loading import EMBEDDED, load_policy

        folder = Path(source)
        try:
            config = json.loads((folder / PROBE_CONFIG).read_text(encoding="utf-8"))
            backbone = config["backbone"]
            spec = ProbeSpec.from_json(config)
            head = ProbeHead(int(config["features"]), int(config.get("hidden", 0)))
            head.load_state_dict(load_file(str(folder / PROBE_WEIGHTS)))
        except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
            raise UserError(f"cannot load the probe PRM in {source!r}: {first_line(exc)}") from None
        policy = load_policy(backbone if backbone == EMBEDDED else str(folder / backbone))
        if not hasattr(policy, "model"):
            raise UserError(f"the probe in {source!r} needs its backbone on this machine, not on a server")
        if max(spec.layers) > policy.model.config.num_hidden_layers:
            raise UserError(f"the probe in {source!r} reads layer {max(spec.layers)}; its backbone has fewer")
        if spec.width(policy.model.config.hidden_size) != int(config["features"]):
            raise UserError(
                f"the probe in {source!r} reads {config['features']} features; its spec gives "
                f"{spec.width(policy.model.config.hidden_size)}"
            )
        return ProbeModel(policy.model, head.eval(), spec, policy.name), policy.tokenizer

    def __init__(self, env: ScorerEnv, model: str | None = None, keep_paths_mb: float = SCORED_PATHS_MB, **options):
        options.setdefault("batch_size", 16)  # one forward per path and no vocabulary head: batches are cheap
        super().__init__(env, model=model, **options)
        # this search's scored paths, so that a path's next step is fed alone (0: every path read whole)
        self.scored = ScoredPaths(int(keep_paths_mb * 2**20)) if keep_paths_mb > 0 else None
        own = getattr(env.policy, "tokenizer", None)
        if own is not None and own is not self.tokenizer and own.get_vocab() != self.tokenizer.get_vocab():
            raise UserError(
                f"the {self.name} PRM reads the hidden states of {self.model.name} and was trained "
                f"on its steps; this policy ({getattr(env.policy, 'name', '?')}) uses another tokenizer: "
                "choose another scorer"
            )

    def spans(self, path: StepPath) -> StepSpans:
        """The path's tokens, each step's score token (positions(), as every format reads), its
        first token (where "mean" pooling and the token statistics start) and the first token
        after its text (where its separator starts)."""
        ids, ends = self.positions(path)
        offsets = self.tokenize(self.encode(path).text)[1]

        def reaching(char: int, end: int) -> int:
            """The first token that ends past character `char` (else `end`)."""
            return next((i for i, (_, b) in enumerate(offsets) if b > char), end)

        starts, cuts, cursor = [], [], len(path.question)
        for step, end in zip(path.steps, ends):
            cursor += len(self.separator)
            starts.append(min(reaching(cursor, end), end))
            cursor += len(step)
            cuts.append(max(min(reaching(cursor, end), end), starts[-1]))
        return StepSpans(ids, starts, ends, path.question, list(path.steps), cuts)

    def tokenize(self, text: str) -> tuple[list[int], list[tuple[int, int]]]:
        """As the trl format tokenizes it, or, where the spec says "followed", with the text's last
        separator tokenized as when another step follows it (a blank line at the end of a text is
        one token, before a step two): then a step reads the same whether or not it is the last,
        as a search reads every new step and training reads most steps."""
        if self.model.spec.last_separator == "alone":
            return super().tokenize(text)
        ids, offsets = super().tokenize(text + FOLLOWER)
        kept = sum(1 for start, _ in offsets if start < len(text))
        if kept and offsets[kept - 1][1] > len(text):  # the follower merged into the separator
            return super().tokenize(text)
        return ids[:kept], offsets[:kept]

    @on_engine
    @torch.inference_mode()
    def features(self, paths: list[StepPath]) -> list[torch.Tensor]:
        """Per path, [steps, width] features (what the head reads), in batches."""
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        out = []
        every = [self.spans(p) for p in paths]
        for batch in self.batches([(s.ids,) for s in every]):
            self.checkpoint()
            features, fed = self.model.step_features([every[i] for i in batch], pad, self.scored)
            out += features
            self.env.meter.add("scorer", self.flops_params, prefill=fed)
        return out

    @on_engine
    @torch.inference_mode()
    def score_steps(self, paths: list[StepPath]) -> list[list[float]]:
        return [self.model.scores(f).tolist() if len(f) else [] for f in self.features(paths)]


LEARNED_FORMATS: dict[str, type[LearnedPRM]] = {
    cls.name: cls for cls in (MathShepherdPRM, QwenPRM, SkyworkPRM, RLHFlowPRM, TrlPRM, ProbePRM)
}
