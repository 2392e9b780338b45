"""The parts of a step's cache that rows share (a batch's prefix, its groups), laid out so that
one attention call per layer reads them for the rows of every batch stepped together.

A decode loop steps several calls' batches at once (several searches, several visitors): read
batch by batch, the attention costs a few calls and a dozen small operations per batch and
layer, whose fixed cost on a CPU outweighs their arithmetic. Here the batches' prefixes are stacked into one tensor
(padded to the longest, the padding masked), and so are their groups (right-aligned, as each
batch holds them); each unit of the stack (a prefix, a group) is read by its rows' queries at
once, gathered by index from the rows' queries. The stacked copies are kept while the loop
steps the same batches (their prefixes and groups never change), so a turn copies nothing,
and dropped when it steps others, one batch alone, or none (`forget`)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .kv import KVBatch, _copy_layers


def attend_part(q, k, v, mask, scale):
    """Attention output (q's dtype) and log-sum-exp (float) ([B, H, L, D], [B, H, L]) of q over k/v."""
    out, lse = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu(q, k, v, attn_mask=mask, scale=scale)
    return out, lse


@dataclass
class SharedPart:
    """Keys and values that units of rows read together, per layer [U, kv_heads, K, head_dim];
    `mask` [U, 1, M*width, K] additive (None: every key real); `gather` [U*M*width]: which of
    the rows' queries [rows*width] (per kv head) each unit's M members ask (padding members repeat
    a row, their results unused; None: the queries as they are); `back` [rows*width]: where
    each query's result lands (None: where it is); `empty` [rows]: rows that read nothing here."""

    keys: list[torch.Tensor] | torch.Tensor
    values: list[torch.Tensor] | torch.Tensor
    mask: torch.Tensor | None
    gather: torch.Tensor | None
    back: torch.Tensor | None
    empty: torch.Tensor | None
    width: int  # queries per row and kv head: query heads per kv head times tokens

    def attend(self, across: torch.Tensor, layer: int, scale: float):
        """Output [rows, kv_heads, width, D] and log-sum-exp [rows, kv_heads, width] (views) of
        the rows' queries `across` [kv_heads, rows*width, D] over this part (an empty row's:
        -inf). Queries and results stay laid out per kv head: picking a unit's queries and
        putting its results back are copies along one dimension, and a part that needs
        neither copies nothing."""
        kv_heads, _, dim = across.shape
        keys = self.keys[layer]
        q = across if self.gather is None else across.index_select(1, self.gather)
        q = q.view(kv_heads, keys.shape[0], -1, dim).transpose(0, 1)
        out, lse = attend_part(q, keys, self.values[layer], self.mask, scale)
        out = out.float().transpose(0, 1).reshape(kv_heads, -1, dim)
        lse = lse.transpose(0, 1).reshape(kv_heads, -1)
        if self.back is not None:
            out, lse = out.index_select(1, self.back), lse.index_select(1, self.back)
        out = out.view(kv_heads, -1, self.width, dim).transpose(0, 1)
        lse = lse.view(kv_heads, -1, self.width).transpose(0, 1)
        if self.empty is not None:
            lse = lse.masked_fill(self.empty[:, None, None], float("-inf"))
        return out, lse


def _spread(slots: torch.Tensor, slot_of: torch.Tensor, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Row slots [U, M] and each row's slot [rows] as indices of single queries (width per row)."""
    offsets = torch.arange(width)
    return (slots.reshape(-1, 1) * width + offsets).reshape(-1), (slot_of.reshape(-1, 1) * width + offsets).reshape(-1)


def _additive(allowed: torch.Tensor, queries: int, dtype: torch.dtype) -> torch.Tensor:
    """[U, K] allowed keys as an additive mask [U, 1, queries, K] (a broadcast view)."""
    mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)
    return mask[:, None, None, :].expand(allowed.shape[0], 1, queries, allowed.shape[1])


class Stacks:
    """Builds a step's SharedParts, keeping the stacked copies of the last batches it was given."""

    def __init__(self, layers: int, kv_heads: int, head_dim: int, dtype: torch.dtype):
        self.layers, self.kv_heads, self.head_dim, self.dtype = layers, kv_heads, head_dim, dtype
        self._kept: dict[str, tuple[list, tuple]] = {}

    def _stacked(self, kind: str, sources: list, build):
        """`build()` for these sources, or what it built for the same sources last time."""
        kept = self._kept.get(kind)
        if kept is not None and len(kept[0]) == len(sources) and all(a is b for a, b in zip(kept[0], sources)):
            return kept[1]
        self._kept.pop(kind, None)  # freed before the new copy is made
        built = build()
        self._kept[kind] = (sources, built)
        return built

    def forget(self) -> None:
        self._kept.clear()

    def _zeros(self, units: int, length: int) -> torch.Tensor:
        return torch.zeros(self.layers, units, self.kv_heads, length, self.head_dim, dtype=self.dtype)

    def prefixes(self, batches: list[KVBatch], starts: list[int], width: int) -> SharedPart | None:
        """Every row's queries against its batch's prefix: one unit per batch that has one
        (`starts`: each batch's first row among all their rows)."""
        owners = [(at, b) for at, b in zip(starts, batches) if b.prefix is not None]
        if not owners:
            return None
        if len(batches) == 1:
            prefix = batches[0].prefix
            keys = [prefix.keys[layer].unsqueeze(0) for layer in range(self.layers)]
            values = [prefix.values[layer].unsqueeze(0) for layer in range(self.layers)]
            return SharedPart(keys, values, None, None, None, None, width)
        lengths = [b.prefix_length for _, b in owners]
        longest = max(lengths)

        def build():
            keys, values = self._zeros(len(owners), longest), self._zeros(len(owners), longest)
            for unit, (_, b) in enumerate(owners):
                _copy_layers(keys[:, unit, :, : b.prefix_length], b.prefix.keys)
                _copy_layers(values[:, unit, :, : b.prefix_length], b.prefix.values)
            return keys, values

        keys, values = self._stacked("prefixes", [b.prefix for _, b in owners], build)
        members = max(b.rows for _, b in owners)
        rows = sum(b.rows for b in batches)
        slots = torch.zeros(len(owners), members, dtype=torch.long)
        slot_of = torch.zeros(rows, dtype=torch.long)
        empty = torch.ones(rows, dtype=torch.bool)
        for unit, (at, b) in enumerate(owners):
            slots[unit, : b.rows] = torch.arange(at, at + b.rows)
            slot_of[at : at + b.rows] = unit * members + torch.arange(b.rows)
            empty[at : at + b.rows] = False
        mask = None
        if min(lengths) < longest:
            allowed = torch.arange(longest) < torch.tensor(lengths).unsqueeze(1)
            mask = _additive(allowed, members * width, self.dtype)
        gather, back = _spread(slots, slot_of, width)
        return SharedPart(keys, values, mask, gather, back, empty if empty.any() else None, width)

    def groups(self, batches: list[KVBatch], starts: list[int], width: int) -> SharedPart | None:
        """Every row's queries against its group's chain below the prefix: one unit per group."""
        owners = [(at, b) for at, b in zip(starts, batches) if b.groups_k is not None]
        if not owners:
            return None
        if len(batches) == 1:
            b = batches[0]
            keys, values, allowed = b.groups_k, b.groups_v, b.group_mask
            slots, slot_of = b.slots, b.slot_of
        else:
            units = [b.groups_k.shape[1] for _, b in owners]
            longest = max(b.group_width for _, b in owners)

            def build():
                keys, values = self._zeros(sum(units), longest), self._zeros(sum(units), longest)
                allowed = torch.zeros(sum(units), longest, dtype=torch.bool)
                unit = 0
                for (_, b), count in zip(owners, units):
                    keys[:, unit : unit + count, :, longest - b.group_width :] = b.groups_k
                    values[:, unit : unit + count, :, longest - b.group_width :] = b.groups_v
                    allowed[unit : unit + count, longest - b.group_width :] = b.group_mask
                    unit += count
                return keys, values, allowed

            keys, values, allowed = self._stacked("groups", [b.groups_k for _, b in owners], build)
            members = max(b.slots.shape[1] for _, b in owners)
            slots = torch.zeros(sum(units), members, dtype=torch.long)
            slot_of = torch.zeros(sum(b.rows for b in batches), dtype=torch.long)
            unit = 0
            for (at, b), count in zip(owners, units):
                own_members = b.slots.shape[1]
                slots[unit : unit + count, :own_members] = b.slots + at
                slot_of[at : at + b.rows] = (unit + b.slot_of // own_members) * members + b.slot_of % own_members
                unit += count
        members = slots.shape[1]
        reads = allowed.any(dim=1)[slot_of // members]  # a row whose state is the prefix itself reads nothing
        for at, b in zip(starts, batches):
            if b.groups_k is None:
                reads[at : at + b.rows] = False
        gather, back = _spread(slots, slot_of, width)
        mask = _additive(allowed, members * width, self.dtype)
        return SharedPart(keys, values, mask, gather, back, None if reads.all() else ~reads, width)
