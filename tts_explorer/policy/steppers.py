"""One forward step of the model over a KVBatch: feed T tokens per row, return the logits
of each row's last position (or of every fed position, to score given text), and leave the
new keys/values in the batch.

LlamaStep is a lean forward for Llama-family decoders (Llama, SmolLM, Qwen2): the model's
own weights, with q/k/v and gate/up each fused into one matrix multiply, and attention
split in three (kv.py): every row's queries against the shared prefix at once (the
prompt's keys and values are read once per step instead of once per row), the queries of
a group's rows against their common parent state's chain at once, and each row against
its own tokens; the parts are merged by their log-sum-exps. Its weight matrices are
prepacked once for oneDNN where PyTorch has it (same results, 1.6-1.8x faster matrix
products here than F.linear, which repacks on every call). It computes what the
transformers forward computes, with far fewer operations per token on a CPU.
`forward` steps several batches (several searches' calls) at once: the matrix products
run on all their rows together, and the attention over the batches' prefixes and groups in
one call per part (stacked.py); each batch's own tokens are read per batch.
HFStep runs any other causal LM through its transformers forward (one per batch).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

from .kv import KVBatch
from .stacked import SharedPart, Stacks, attend_part

LEAN_MODEL_TYPES = {"llama", "qwen2"}


def make_step(model):
    """The fastest correct step for this model."""
    config = model.config
    lean = (
        config.model_type in LEAN_MODEL_TYPES
        and not getattr(config, "use_sliding_window", False)
        and getattr(config, "hidden_act", "silu") == "silu"
        and hasattr(model, "model")
        and hasattr(model.model, "rotary_emb")
    )
    return LlamaStep(model) if lean else HFStep(model)


class ModelShape:
    """A decoder's layers, key/value heads, head width and dtype: the shape of its keys and values."""

    def __init__(self, model):
        config = model.config
        self.layers = config.num_hidden_layers
        self.heads = config.num_attention_heads
        self.kv_heads = getattr(config, "num_key_value_heads", None) or self.heads
        self.head_dim = getattr(config, "head_dim", None) or config.hidden_size // self.heads
        self.dtype = next(model.parameters()).dtype

    def new_batch(self, states, spare: int, inline: bool = False) -> KVBatch:
        return KVBatch.gather(states, self.layers, self.kv_heads, self.head_dim, self.dtype, spare, inline)

    def release(self) -> None:
        """Drop what the step keeps between forwards (the decode loop has no calls left)."""


class _Linear:
    """x @ W.T + b for x [rows, in] (the lean step keeps its hidden states two-dimensional), with
    W prepacked for oneDNN when possible."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None = None):
        self.weight, self.bias = weight, bias
        self.packed = None
        if weight.device.type == "cpu" and torch.backends.mkldnn.is_available():
            try:
                packed = torch.ops.mkldnn._reorder_linear_weight(weight)
                probe = torch.ones(1, weight.shape[1], dtype=weight.dtype)
                if torch.equal(
                    torch.ops.mkldnn._linear_pointwise(probe, packed, bias, "none", [], ""),
                    F.linear(probe, weight, bias),
                ):
                    self.packed, self.weight = packed, None  # the packed copy is all that is used
            except (RuntimeError, AttributeError):
                self.packed = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.packed is None:
            return F.linear(x, self.weight, self.bias)
        return torch.ops.mkldnn._linear_pointwise(x, self.packed, self.bias, "none", [], "")


def fused_matrices(layer) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
    """A Llama-family block's matrices as the lean step multiplies by them, (weight, bias) each:
    q/k/v fused into "qkv", gate/up into "gate_up", then "o" and "down"."""
    attn, mlp = layer.self_attn, layer.mlp
    projections = (attn.q_proj, attn.k_proj, attn.v_proj)
    qkv_bias = None
    if any(p.bias is not None for p in projections):
        zeros = [p.weight.new_zeros(p.weight.shape[0]) for p in projections]
        qkv_bias = torch.cat([p.bias if p.bias is not None else zero for p, zero in zip(projections, zeros)])
    gate_up_bias = None if mlp.gate_proj.bias is None else torch.cat([mlp.gate_proj.bias, mlp.up_proj.bias])
    return {
        "qkv": (torch.cat([p.weight for p in projections]), qkv_bias),
        "o": (attn.o_proj.weight, attn.o_proj.bias),
        "gate_up": (torch.cat([mlp.gate_proj.weight, mlp.up_proj.weight]), gate_up_bias),
        "down": (mlp.down_proj.weight, mlp.down_proj.bias),
    }


def _halves_swapped(x):
    """x with the two halves of its last dimension swapped (one copy)."""
    half = x.shape[-1] // 2
    return x.unflatten(-1, (2, half)).flip(-2).flatten(-2)


def _signed_sin(sin):
    """sin with its first half negated: rotate_half(x) * sin == _halves_swapped(x) * _signed_sin(sin),
    exactly (a sign moved from one factor to the other)."""
    half = sin.shape[-1] // 2
    return torch.cat((-sin[..., :half], sin[..., half:]), dim=-1)


class LlamaStep(ModelShape):
    def __init__(self, model):
        super().__init__(model)
        inner = model.model
        self.embed = inner.embed_tokens
        self.rotary = inner.rotary_emb
        self.final_norm = (inner.norm.weight, inner.norm.variance_epsilon)
        self.lm_head = _Linear(model.lm_head.weight)
        self.scale = self.head_dim**-0.5
        self._stacks = Stacks(self.layers, self.kv_heads, self.head_dim, self.dtype)
        self.blocks = []
        with torch.no_grad():
            for layer in inner.layers:
                matrices = {name: _Linear(weight, bias) for name, (weight, bias) in fused_matrices(layer).items()}
                self.blocks.append(
                    {
                        "norm_in": (layer.input_layernorm.weight, layer.input_layernorm.variance_epsilon),
                        "norm_post": (
                            layer.post_attention_layernorm.weight,
                            layer.post_attention_layernorm.variance_epsilon,
                        ),
                        **matrices,
                    }
                )

    def release(self) -> None:
        self._stacks.forget()

    @staticmethod
    def _norm(x, weight_eps):
        weight, eps = weight_eps
        return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).to(x.dtype) * weight

    def _own_mask(self, batch: KVBatch, tokens: int):
        """Additive mask (0: may attend) for a batch's own part, [B, 1, groups*T, length]: causal
        among the T new tokens, what holds no keys of a row blocked (own_valid); None when T is 1
        and every own position is real (a row sees all its own tokens)."""
        if tokens == 1 and not batch.masked:
            return None
        allowed = batch.own_valid().unsqueeze(1).expand(batch.rows, tokens, batch.length).clone()
        allowed[:, :, batch.length - tokens :] &= torch.ones(tokens, tokens, dtype=torch.bool).tril()
        allowed = allowed.repeat(1, self.heads // self.kv_heads, 1).unsqueeze(1)
        return torch.zeros(allowed.shape, dtype=self.dtype).masked_fill_(~allowed, torch.finfo(self.dtype).min)

    def _attention(self, q, layer: int, owns: list, own_masks, sizes: list[int], shared: list[SharedPart]):
        """Each row's queries against its own tokens (one call per batch: `owns`, each batch's
        own_views, `sizes` its rows), and against the shared parts (the prefixes, the groups)
        of every batch at once, merged by log-sum-exp."""
        rows, _, tokens, dim = q.shape
        width = (self.heads // self.kv_heads) * tokens
        q = q.reshape(rows, self.kv_heads, width, dim)
        own = [
            attend_part(part, keys[layer], values[layer], mask, self.scale)
            for part, (keys, values, _, _), mask in zip(q.split(sizes), owns, own_masks)
        ]
        out, lse = own[0] if len(own) == 1 else tuple(torch.cat(part) for part in zip(*own))
        parts = [(out.float(), lse)]
        if shared:
            across = q.transpose(0, 1).reshape(self.kv_heads, rows * width, dim)
            parts += [part.attend(across, layer, self.scale) for part in shared]
        out, lse = parts[0]  # the own part: never empty (a row reads at least its own token)
        for at, (o, part_lse) in enumerate(parts[1:], start=2):
            # softmax over the union of the keys: each part's share is sigmoid of the log-sum-exp gap
            out = torch.lerp(o, out, torch.sigmoid(lse - part_lse).unsqueeze(-1))
            if at < len(parts):
                lse = torch.logaddexp(lse, part_lse)
        return out.to(q.dtype).reshape(rows, self.heads, tokens, dim)

    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, batch: KVBatch, every_position: bool = False
    ) -> torch.Tensor:
        return self.forward([(ids, positions, batch)], every_position)[0]

    @torch.inference_mode()
    def forward(
        self, parts: list[tuple[torch.Tensor, torch.Tensor, KVBatch]], every_position: bool = False
    ) -> list[torch.Tensor]:
        """One step of several batches at once (the same T tokens per row in each): the matrix
        products run on all their rows together, and so does the attention over their prefixes
        and groups (stacked, see SharedPart); each batch's own tokens are read per batch.
        Logits [rows, vocab] of each row's last position, or [rows, T, vocab] with `every_position`."""
        tokens = parts[0][0].shape[1]
        batches = [batch for _, _, batch in parts]
        sizes = [batch.rows for batch in batches]
        ends = list(itertools.accumulate(sizes))
        spans = list(zip([0] + ends[:-1], ends))
        for batch in batches:
            batch.advance(tokens)
        own_masks = [self._own_mask(batch, tokens) for batch in batches]
        owns = [batch.own_views(tokens) for batch in batches]
        width = (self.heads // self.kv_heads) * tokens
        if len(batches) == 1:
            self.release()  # the batches stacked last have left the loop
        starts = [start for start, _ in spans]
        shared = [
            p for p in (self._stacks.prefixes(batches, starts, width), self._stacks.groups(batches, starts, width)) if p
        ]
        ids = parts[0][0] if len(parts) == 1 else torch.cat([p[0] for p in parts])
        positions = parts[0][1] if len(parts) == 1 else torch.cat([p[1] for p in parts])
        rows = ids.shape[0]
        x = self.embed(ids).view(rows * tokens, -1)  # hidden states of every fed token, one per row
        cos, sin = self.rotary(x, positions)
        cos, sin = cos.unsqueeze(1), _signed_sin(sin.unsqueeze(1))
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, block in enumerate(self.blocks):
            h = self._norm(x, block["norm_in"])
            qk, v = block["qkv"](h).split([q_size + kv_size, kv_size], dim=-1)
            # queries and keys rotated together: one set of elementwise ops for both
            qk = qk.view(rows, tokens, self.heads + self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = (qk * cos + _halves_swapped(qk) * sin).split([self.heads, self.kv_heads], dim=1)
            v = v.view(rows, tokens, self.kv_heads, self.head_dim).transpose(1, 2)
            for (_, _, new_k, new_v), part_k, part_v in zip(owns, k.split(sizes), v.split(sizes)):
                new_k[index].copy_(part_k)
                new_v[index].copy_(part_v)
            attn = self._attention(q, index, owns, own_masks, sizes, shared)
            x = x + block["o"](attn.transpose(1, 2).reshape(rows * tokens, q_size))
            gate, up = block["gate_up"](self._norm(x, block["norm_post"])).chunk(2, dim=-1)
            x = x + block["down"](F.silu(gate) * up)
        last = x if every_position else x.view(rows, tokens, -1)[:, -1]
        logits = self.lm_head(self._norm(last, self.final_norm)).float()
        if every_position:
            logits = logits.view(rows, tokens, -1)
        return [logits[start:end] for start, end in spans]


class HFStep(ModelShape):
    """Any causal LM: the rows' full caches are handed to its transformers forward each step."""

    def __init__(self, model):
        super().__init__(model)
        self.model = model

    @torch.inference_mode()
    def __call__(
        self, ids: torch.Tensor, positions: torch.Tensor, batch: KVBatch, every_position: bool = False
    ) -> torch.Tensor:
        from transformers import DynamicCache

        rows, tokens = ids.shape
        start, prefix, width = batch.length, batch.prefix_length, batch.group_width
        layers = []
        for layer in range(self.layers):
            parts_k, parts_v = [], []
            if prefix:
                parts_k.append(batch.prefix.keys[layer].unsqueeze(0).expand(rows, -1, -1, -1))
                parts_v.append(batch.prefix.values[layer].unsqueeze(0).expand(rows, -1, -1, -1))
            if width:
                parts_k.append(batch.groups_k[layer].index_select(0, batch.row_group))
                parts_v.append(batch.groups_v[layer].index_select(0, batch.row_group))
            parts_k.append(batch.keys[layer][:, :, :start])
            parts_v.append(batch.values[layer][:, :, :start])
            layers.append((torch.cat(parts_k, dim=2), torch.cat(parts_v, dim=2)))
        cache = DynamicCache(ddp_cache_data=layers) if prefix + width + start else DynamicCache()
        mask = torch.cat(
            [
                torch.ones(rows, prefix, dtype=torch.long),
                batch.group_mask.index_select(0, batch.row_group).long(),
                batch.own_valid().long(),
                torch.ones(rows, tokens, dtype=torch.long),
            ],
            dim=1,
        )
        out = self.model(
            input_ids=ids,
            attention_mask=mask,
            position_ids=positions,
            cache=cache,
            use_cache=True,
            logits_to_keep=0 if every_position else 1,
        )
        batch.advance(tokens)
        for layer, cached in enumerate(cache.layers):
            batch.write(layer, cached.keys[:, :, -tokens:], cached.values[:, :, -tokens:])
        return out.logits.float() if every_position else out.logits[:, -1].float()

    def forward(
        self, parts: list[tuple[torch.Tensor, torch.Tensor, KVBatch]], every_position: bool = False
    ) -> list[torch.Tensor]:
        """Several batches: one transformers forward each."""
        return [self(ids, positions, batch, every_position) for ids, positions, batch in parts]
