"""Per-sequence KV states and how a batch is built from them and taken apart again.

A RowState is one sequence's cached context: the keys and values of the tokens already
fed, the position id of the next token, and the tokens not yet fed (`pending`: at least
the last sampled token, whose KV is only computed when the sequence is continued).
States are immutable once stored, so many children can share a parent's state.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from transformers import DynamicCache


@dataclass(frozen=True)
class RowState:
    keys: tuple[torch.Tensor, ...]  # per layer: [kv_heads, length, head_dim]
    values: tuple[torch.Tensor, ...]
    next_pos: int  # position id of the first pending token
    pending: tuple[int, ...]  # token ids not yet fed to the model

    @property
    def length(self) -> int:
        return self.keys[0].shape[1] if self.keys else 0


def empty_state(pending: list[int]) -> RowState:
    return RowState(keys=(), values=(), next_pos=0, pending=tuple(pending))


def batch_cache(states: list[RowState], like: torch.Tensor | None = None
                ) -> tuple[DynamicCache, torch.Tensor]:
    """Left-pad the states' caches to one length; return the cache and its 0/1 mask [B, L]."""
    lengths = [s.length for s in states]
    longest = max(lengths)
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, length in enumerate(lengths):
        mask[row, longest - length:] = 1
    if longest == 0:
        return DynamicCache(), mask
    ref = next(s for s in states if s.length)
    layers = []
    for layer in range(len(ref.keys)):
        heads, _, dim = ref.keys[layer].shape
        k = ref.keys[layer].new_zeros(len(states), heads, longest, dim)
        v = ref.values[layer].new_zeros(len(states), heads, longest, dim)
        for row, state in enumerate(states):
            if state.length:
                k[row, :, longest - state.length:] = state.keys[layer]
                v[row, :, longest - state.length:] = state.values[layer]
        layers.append((k, v))
    return DynamicCache(ddp_cache_data=layers), mask


def cache_tensors(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(layer.keys, layer.values) for layer in cache.layers]


def select_rows(cache: DynamicCache, rows: torch.Tensor) -> DynamicCache:
    """A new cache holding `rows` of `cache` (rows may repeat)."""
    return DynamicCache(ddp_cache_data=[(k.index_select(0, rows), v.index_select(0, rows))
                                        for k, v in cache_tensors(cache)])


def extract_row(cache: DynamicCache, mask: torch.Tensor, row: int, next_pos: int,
                pending: list[int]) -> RowState:
    """Copy one row's valid (unmasked) positions out of a batch cache."""
    valid = mask[row].nonzero().squeeze(1)
    keys, values = [], []
    for k, v in cache_tensors(cache):
        keys.append(k[row].index_select(1, valid))
        values.append(v[row].index_select(1, valid))
    return RowState(tuple(keys), tuple(values), next_pos, tuple(pending))
