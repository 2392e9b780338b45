"""Per-sequence KV states, and the batch they are gathered into for one decode loop.

A RowState is one sequence's cached context: a shared, read-only `prefix` (typically the
problem's prompt, one copy for every path of a search), the keys and values of its own
tokens after that prefix, the position id of the next token, and the tokens not yet fed
(`pending`: at least the last sampled token, whose KV is only computed when the sequence
is continued). States are immutable once stored, so many children share a parent's state.

A KVBatch holds a batch's rows: the prefix once, and each row's own keys and values
left-padded in a buffer with room for the tokens still to be decoded, so feeding a token
writes one slot in place (no copy of the whole cache per token).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True, eq=False)
class Prefix:
    """Keys and values shared by many rows; per layer [kv_heads, length, head_dim]."""

    keys: tuple[torch.Tensor, ...]
    values: tuple[torch.Tensor, ...]

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]

    def head(self, tokens: int) -> Prefix:
        """The first `tokens` positions (views, no copy): a causal model's keys and values of a
        sequence's first tokens do not depend on what follows them."""
        return Prefix(tuple(k[:, :tokens] for k in self.keys), tuple(v[:, :tokens] for v in self.values))


@dataclass(frozen=True)
class RowState:
    prefix: Prefix | None
    keys: tuple[torch.Tensor, ...]  # per layer [kv_heads, own length, head_dim]; () when none
    values: tuple[torch.Tensor, ...]
    next_pos: int  # position id of the first pending token
    pending: tuple[int, ...]  # token ids not yet fed to the model
    ids: tuple[int, ...] = ()  # every token of the sequence, fed or pending (what the state stands for)

    @property
    def length(self) -> int:
        """Tokens cached after the prefix."""
        return self.keys[0].shape[1] if self.keys else 0

    def as_prefix(self) -> RowState:
        """The same state with everything cached moved into one shareable prefix."""
        if not self.keys:
            return self
        keys, values = self.keys, self.values
        if self.prefix is not None:
            keys = tuple(torch.cat([p, k], dim=1) for p, k in zip(self.prefix.keys, keys))
            values = tuple(torch.cat([p, v], dim=1) for p, v in zip(self.prefix.values, values))
        return RowState(Prefix(keys, values), (), (), self.next_pos, self.pending, self.ids)


def common_prefix_length(a, b) -> int:
    """How many leading tokens two token sequences share."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def empty_state(pending: list[int]) -> RowState:
    return RowState(prefix=None, keys=(), values=(), next_pos=0, pending=tuple(pending), ids=tuple(pending))


class KVBatch:
    """A batch's cache: `prefix` (or None) shared by all rows, then per-row buffers
    [B, kv_heads, capacity, head_dim] per layer, filled up to `length`; `mask` [B, capacity]
    marks real (not padding) positions."""

    def __init__(
        self,
        prefix: Prefix | None,
        keys: list[torch.Tensor],
        values: list[torch.Tensor],
        mask: torch.Tensor,
        length: int,
    ):
        self.prefix, self.keys, self.values, self.mask, self.length = prefix, keys, values, mask, length

    @classmethod
    def gather(
        cls, states: list[RowState], layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype, spare: int
    ) -> KVBatch:
        """Rows from states, with room for `spare` more tokens. One prefix is shared when every
        state has the same one; otherwise each row's prefix is copied into its own part."""
        shared = states[0].prefix
        if any(s.prefix is not shared for s in states):
            states, shared = [_inline_prefix(s) for s in states], None
        longest = max(s.length for s in states)
        capacity = longest + spare
        mask = torch.zeros(len(states), capacity, dtype=torch.bool)
        keys, values = [], []
        for layer in range(layers):
            k = torch.zeros(len(states), kv_heads, capacity, head_dim, dtype=dtype)
            v = torch.zeros(len(states), kv_heads, capacity, head_dim, dtype=dtype)
            for row, state in enumerate(states):
                if state.length:
                    k[row, :, longest - state.length : longest] = state.keys[layer]
                    v[row, :, longest - state.length : longest] = state.values[layer]
            keys.append(k)
            values.append(v)
        for row, state in enumerate(states):
            mask[row, longest - state.length : longest] = True
        return cls(shared, keys, values, mask, longest)

    @property
    def prefix_length(self) -> int:
        return self.prefix.length if self.prefix is not None else 0

    def advance(self, tokens: int) -> None:
        """Take the next `tokens` positions of every row (growing the buffers when needed);
        a forward then stores their keys and values with `write`."""
        need = self.length + tokens
        if need > self.mask.shape[1]:
            capacity = 2 * need
            self.keys = [_grown(k, self.length, capacity) for k in self.keys]
            self.values = [_grown(v, self.length, capacity) for v in self.values]
            self.mask = _grown(self.mask, self.length, capacity)
        self.mask[:, self.length : need] = True
        self.length = need

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store keys/values [B, kv_heads, T, head_dim] of the T positions taken by the last advance."""
        start = self.length - keys.shape[2]
        self.keys[layer][:, :, start : self.length] = keys
        self.values[layer][:, :, start : self.length] = values

    def select(self, rows: torch.Tensor) -> KVBatch:
        """A batch of `rows` of this one (rows may repeat)."""
        return KVBatch(
            self.prefix,
            [k.index_select(0, rows) for k in self.keys],
            [v.index_select(0, rows) for v in self.values],
            self.mask.index_select(0, rows),
            self.length,
        )

    def extract(self, row: int, next_pos: int, pending: list[int], ids: tuple[int, ...] = ()) -> RowState:
        """Copy one row's real positions out of the batch (`ids`: every token the state stands for)."""
        valid = self.mask[row, : self.length].nonzero().squeeze(1)
        return RowState(
            self.prefix,
            tuple(k[row].index_select(1, valid) for k in self.keys),
            tuple(v[row].index_select(1, valid) for v in self.values),
            next_pos,
            tuple(pending),
            ids,
        )


def _inline_prefix(state: RowState) -> RowState:
    if state.prefix is None:
        return state
    full = state.as_prefix()
    return RowState(None, full.prefix.keys, full.prefix.values, state.next_pos, state.pending, state.ids)


def _grown(buffer: torch.Tensor, filled: int, capacity: int) -> torch.Tensor:
    dim = buffer.dim() - 2 if buffer.dim() == 4 else 1
    shape = list(buffer.shape)
    shape[dim] = capacity
    bigger = buffer.new_zeros(shape)
    bigger.narrow(dim, 0, filled).copy_(buffer.narrow(dim, 0, filled))
    return bigger
