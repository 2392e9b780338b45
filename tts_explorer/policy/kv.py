"""Per-sequence KV states as a tree of segments, and the batch one decode loop reads them in.

A Segment holds the keys and values of consecutive positions of a sequence and refers to
its parent segment (the positions before them): a node of the search keeps only the keys
and values of its own tokens, and every child shares its parent's segment instead of a
copy of its ancestors'. Segments are immutable, so a branch's memory is freed as soon as
no kept state refers to it (Python's reference counts). A RowState is one sequence's
cached context: its last segment, the position id of the next token, and the tokens not
yet fed (`pending`: at least the last sampled token, whose KV is only computed when the
sequence is continued).

A KVBatch reads a batch's states in three parts, so that nothing shared is copied per row:
`prefix`, the chain every row shares (the problem's prompt and any steps all rows have in
common), read once per step for all rows; `groups`, each distinct state's chain below that
prefix (a beam's M children read their parent's once); and each row's own tokens, in a
buffer with room for the tokens still to be decoded, so feeding a token writes one slot in
place. Where every state has one row, a state's chain below the prefix is copied into the
start of its row's own buffer instead (one attention call fewer). A finished row's new state
is its own tokens, copied once, under its state's segment. Rows may join a batch later
(`add_rows`: a subtree's next candidates, from the state of a row of the same batch): the
joining chain below the prefix is copied to the end of their own positions so far and what
lies before it is masked.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass(frozen=True, eq=False)
class Segment:
    """Keys and values after `parent`'s positions; per layer [kv_heads, length, head_dim]
    (a tuple of one tensor per layer, or one tensor [layers, kv_heads, length, head_dim])."""

    keys: tuple[torch.Tensor, ...] | torch.Tensor
    values: tuple[torch.Tensor, ...] | torch.Tensor
    parent: Segment | None = None
    start: int = field(init=False)  # position of the first key: the parent chain's length

    def __post_init__(self):
        object.__setattr__(self, "start", self.parent.end if self.parent is not None else 0)

    @property
    def length(self) -> int:
        return self.keys[0].shape[1]

    @property
    def end(self) -> int:
        return self.start + self.length

    @property
    def nbytes(self) -> int:
        """This segment's own keys and values (not its ancestors')."""
        return sum(t.numel() * t.element_size() for t in (*self.keys, *self.values))  # per layer

    def chain(self) -> list[Segment]:
        """The segments from the root to this one."""
        out, segment = [], self
        while segment is not None:
            out.append(segment)
            segment = segment.parent
        return out[::-1]

    def head(self, tokens: int) -> Segment:
        """The chain's first `tokens` positions as one root segment (views when they lie in the
        root segment): a causal model's keys and values of a sequence's first tokens do not
        depend on what follows them."""
        return _joined([s for s in self.chain() if s.start < tokens], tokens)

    def flattened(self) -> Segment:
        """The whole chain as one root segment."""
        return self if self.parent is None else _joined(self.chain(), self.end)


def _joined(segments: list[Segment], tokens: int) -> Segment:
    """Positions [0, tokens) of a chain (root first) as one root segment."""
    if len(segments) == 1:
        s = segments[0]
        return Segment(tuple(k[:, :tokens] for k in s.keys), tuple(v[:, :tokens] for v in s.values))
    layers = range(len(segments[0].keys))
    keys = tuple(torch.cat([s.keys[i] for s in segments], dim=1)[:, :tokens] for i in layers)
    values = tuple(torch.cat([s.values[i] for s in segments], dim=1)[:, :tokens] for i in layers)
    return Segment(keys, values)


def kept_bytes(segments) -> int:
    """Bytes held by the given segments and their ancestors, each counted once."""
    seen, total = set(), 0
    for segment in segments:
        while segment is not None and id(segment) not in seen:
            seen.add(id(segment))
            total += segment.nbytes
            segment = segment.parent
    return total


@dataclass(frozen=True)
class RowState:
    cache: Segment | None  # the last segment of the sequence's cached positions; None when none
    next_pos: int  # position id of the first pending token
    pending: tuple[int, ...]  # token ids not yet fed to the model
    ids: tuple[int, ...] = ()  # every token of the sequence, fed or pending (what the state stands for)

    @property
    def length(self) -> int:
        """Tokens cached."""
        return self.cache.end if self.cache is not None else 0

    def as_root(self) -> RowState:
        """The same state with its whole chain in one segment (a kept prompt: its own tensors)."""
        if self.cache is None:
            return self
        return RowState(self.cache.flattened(), self.next_pos, self.pending, self.ids)


def common_prefix_length(a, b) -> int:
    """How many leading tokens two token sequences share."""
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def empty_state(pending: list[int]) -> RowState:
    return RowState(cache=None, next_pos=0, pending=tuple(pending), ids=tuple(pending))


class KVBatch:
    """A batch's cache in three parts.

    prefix: a root Segment every row shares, or None. groups: [layers, U, kv_heads, G,
    head_dim] keys and values, each of the U distinct states' chain below the prefix,
    right-aligned (None when G is 0), `group_mask` [U, G] its real positions, `bases` [U]
    each state's last segment (the parent of what its rows add). Per row: `row_group` [B],
    and own keys and values [layers, B, kv_heads, capacity, head_dim], filled up to `length`,
    the same for every row (all rows start together). Each part is one tensor: a large one
    is its own memory mapping, returned to the system when freed, and rows leaving the batch
    are compacted in place (`keep`), so a decode loop allocates its buffers once."""

    def __init__(
        self,
        prefix,
        groups_k,
        groups_v,
        group_mask,
        bases,
        row_group,
        keys,
        values,
        length,
        inlined=None,
        source=None,
        first_valid=None,
    ):
        self.prefix, self.groups_k, self.groups_v, self.group_mask = prefix, groups_k, groups_v, group_mask
        self.bases, self._keys, self._values, self.length = bases, keys, values, length
        # [B, start]: real positions of the chains inlined at the start of the own buffers
        self.inlined = inlined if inlined is not None else torch.zeros(len(row_group), 0, dtype=torch.bool)
        self.start = self.inlined.shape[1]  # where this batch's own tokens begin
        self.source = source  # the segment the prefix was made from (None: none): joining states descend from it
        # [B]: each row's first real own position (above 0 for a row that joined later: `add_rows`)
        self.first_valid = first_valid if first_valid is not None else torch.zeros(len(row_group), dtype=torch.long)
        self.late = bool(self.first_valid.any())
        self.set_rows(row_group)

    @classmethod
    def gather(
        cls,
        states: list[RowState],
        layers: int,
        kv_heads: int,
        head_dim: int,
        dtype: torch.dtype,
        spare: int,
        inline: bool = False,
    ) -> KVBatch:
        """One row per state, with room for `spare` own tokens. The chain every state shares is
        the prefix (the root segment itself, no copy, when that is all they share); each
        state's chain below it is copied once into its group, or with `inline` (each state
        will have one row: a group would be read by one row only) into the start of its row's
        own buffer, so that the row's attention reads both in one call."""
        chains = [s.cache.chain() if s.cache is not None else [] for s in states]
        shared = 0
        while all(len(c) > shared for c in chains) and all(c[shared] is chains[0][shared] for c in chains):
            shared += 1
        source = chains[0][shared - 1] if shared else None
        prefix = source.flattened() if shared else None
        below = [c[shared:] for c in chains]
        sizes = [sum(s.length for s in chain) for chain in below]
        width = max(sizes)
        groups_k = groups_v = None
        group_mask = torch.zeros(len(states), width, dtype=torch.bool)
        if width:
            groups_k = torch.zeros(layers, len(states), kv_heads, width, head_dim, dtype=dtype)
            groups_v = torch.zeros_like(groups_k)
            for row, (chain, size) in enumerate(zip(below, sizes)):
                at = width - size
                group_mask[row, at:] = True
                for segment in chain:
                    _copy_layers(groups_k[:, row, :, at : at + segment.length], segment.keys)
                    _copy_layers(groups_v[:, row, :, at : at + segment.length], segment.values)
                    at += segment.length
        bases = [s.cache for s in states]
        rows = torch.arange(len(states))
        if inline and width:
            own_k = torch.zeros(layers, len(states), kv_heads, width + spare, head_dim, dtype=dtype)
            own_k[:, :, :, :width] = groups_k
            own_v = torch.zeros_like(own_k)
            own_v[:, :, :, :width] = groups_v
            return cls(prefix, None, None, group_mask[:, :0], bases, rows, own_k, own_v, width, group_mask, source)
        own_k = torch.zeros(layers, len(states), kv_heads, spare, head_dim, dtype=dtype)
        return cls(prefix, groups_k, groups_v, group_mask, bases, rows, own_k, own_k.clone(), 0, source=source)

    @property
    def keys(self) -> torch.Tensor:
        """Own keys [layers, B, kv_heads, capacity, head_dim] of the live rows (a view)."""
        return self._keys[:, : self.rows]

    @property
    def values(self) -> torch.Tensor:
        return self._values[:, : self.rows]

    def set_rows(self, row_group: torch.Tensor) -> None:
        """Which group each row reads, and the slots grouping the rows by group ([U, C] row
        indices, padded with row 0, whose results there are dropped) with each row's slot; the
        slots only where there are groups to read (they are rebuilt whenever rows leave)."""
        self.row_group = row_group
        self.slots = self.slot_of = None
        if self.groups_k is None:
            return
        members: dict[int, list[int]] = {}
        for row, group in enumerate(row_group.tolist()):
            members.setdefault(group, []).append(row)
        width = max((len(m) for m in members.values()), default=0)
        slots = torch.zeros(len(self.bases), max(width, 1), dtype=torch.long)
        slot_of = torch.zeros(len(row_group), dtype=torch.long)
        for group, rows in members.items():
            slots[group, : len(rows)] = torch.tensor(rows)
            for index, row in enumerate(rows):
                slot_of[row] = group * slots.shape[1] + index
        self.slots, self.slot_of = slots, slot_of

    @property
    def rows(self) -> int:
        return len(self.row_group)

    def own_valid(self) -> torch.Tensor:
        """[B, length]: which own positions hold a row's keys (all but an inlined chain's padding
        and the positions before a late row's chain)."""
        valid = torch.cat([self.inlined, torch.ones(self.rows, self.length - self.start, dtype=torch.bool)], dim=1)
        if self.late:
            valid &= torch.arange(self.length) >= self.first_valid.unsqueeze(1)
        return valid

    @property
    def masked(self) -> bool:
        """Whether some own positions hold no keys of their row (own_valid is not all True)."""
        return self.start > 0 or self.late

    @property
    def prefix_length(self) -> int:
        return self.prefix.length if self.prefix is not None else 0

    @property
    def group_width(self) -> int:
        return self.group_mask.shape[1]

    def advance(self, tokens: int) -> None:
        """Take the next `tokens` own positions of every row (growing the buffers when needed:
        the live rows only, so rows that left free their room); a forward then stores their keys
        and values with `write`."""
        need = self.length + tokens
        if need > self._keys.shape[3]:
            self._keys, self._values = (_grown(b, self.rows, self.length, 2 * need) for b in (self._keys, self._values))
        self.length = need

    def own_views(self, tokens: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """After `advance(tokens)`: the live rows' own keys and values [layers, B, kv_heads,
        length, head_dim] and their last `tokens` positions, where a forward stores the new
        keys and values (views, taken once per forward rather than sliced per layer)."""
        keys, values = self.keys[:, :, :, : self.length], self.values[:, :, :, : self.length]
        return keys, values, keys[:, :, :, -tokens:], values[:, :, :, -tokens:]

    def write(self, layer: int, keys: torch.Tensor, values: torch.Tensor) -> None:
        """Store keys/values [B, kv_heads, T, head_dim] of the T positions taken by the last advance."""
        start = self.length - keys.shape[2]
        self._keys[layer, : self.rows, :, start : self.length] = keys
        self._values[layer, : self.rows, :, start : self.length] = values

    def select(self, rows: torch.Tensor) -> KVBatch:
        """A batch of `rows` of this one (rows may repeat); the prefix and groups are shared."""
        return KVBatch(
            self.prefix,
            self.groups_k,
            self.groups_v,
            self.group_mask,
            self.bases,
            self.row_group.index_select(0, rows),
            self.keys.index_select(1, rows),
            self.values.index_select(1, rows),
            self.length,
            self.inlined.index_select(0, rows),
            self.source,
            self.first_valid.index_select(0, rows),
        )

    @torch.inference_mode()
    def keep(self, rows: list[int]) -> None:
        """Keep only `rows`, row i of the result being rows[i], moved in place (no new buffer);
        a source row must not be an earlier target (compaction, see `compacted`)."""
        for to, source in enumerate(rows):
            if to != source:
                self._keys[:, to, :, : self.length] = self._keys[:, source, :, : self.length]
                self._values[:, to, :, : self.length] = self._values[:, source, :, : self.length]
        self.inlined = self.inlined[rows]
        self.first_valid = self.first_valid[rows]
        self.late = bool(self.first_valid.any())
        self.set_rows(self.row_group[rows])

    @torch.inference_mode()
    def add_rows(self, cache: Segment | None, count: int) -> None:
        """`count` new rows after the live ones, continuing the state whose last segment is
        `cache`: a state whose chain runs through this batch's prefix (one extracted from a row of
        it). Its chain below the prefix is copied once per row to the end of the own positions
        so far, and the positions before it are masked: the rows join a batch `length` positions
        in, and take the next ones with the others. For a batch without groups, and a chain
        below the prefix of at most `length` positions (true of any state made in this batch:
        its tokens took positions of it)."""
        if self.groups_k is not None:
            raise ValueError("rows join only a batch without groups")
        below, segment = [], cache
        while segment is not None and segment is not self.source:
            below.append(segment)
            segment = segment.parent
        if segment is not self.source:
            raise ValueError("a joining state must descend from the batch's prefix")
        size = sum(s.length for s in below)
        if size > self.length:
            raise ValueError(f"a joining chain of {size} positions does not fit the batch's {self.length}")
        rows, first = self.rows, self.length - size
        if rows + count > self._keys.shape[1]:
            self._keys, self._values = (
                _grown(b, rows, self.length, b.shape[3], room=2 * (rows + count)) for b in (self._keys, self._values)
            )
        for buffer in (self._keys, self._values):
            buffer[:, rows, :, :first].zero_()
        at = first
        for segment in reversed(below):
            _copy_layers(self._keys[:, rows, :, at : at + segment.length], segment.keys)
            _copy_layers(self._values[:, rows, :, at : at + segment.length], segment.values)
            at += segment.length
        for buffer in (self._keys, self._values):
            buffer[:, rows + 1 : rows + count, :, : self.length] = buffer[:, rows : rows + 1, :, : self.length]
        self.inlined = torch.cat([self.inlined, torch.ones(count, self.start, dtype=torch.bool)])
        self.first_valid = torch.cat([self.first_valid, torch.full((count,), first, dtype=torch.long)])
        self.late = self.late or first > 0
        self.set_rows(torch.cat([self.row_group, torch.zeros(count, dtype=self.row_group.dtype)]))

    def extract(
        self,
        row: int,
        next_pos: int,
        pending: list[int],
        ids: tuple[int, ...] = (),
        since: int | None = None,
        parent: Segment | None = None,
    ) -> RowState:
        """One row's state: its own tokens copied into a segment under its group's state
        (`ids`: every token the state stands for); with `since`, its own tokens from that
        position on, under `parent` (a row that went on past an earlier state of its own)."""
        start, end = self.start if since is None else since, self.length
        base = self.bases[int(self.row_group[row])] if since is None else parent
        if end == start:
            return RowState(base, next_pos, tuple(pending), ids)
        own = Segment(self._keys[:, row, :, start:end].clone(), self._values[:, row, :, start:end].clone(), base)
        return RowState(own, next_pos, tuple(pending), ids)


def compacted(rows: int, gone: set[int]) -> list[int]:
    """The rows left when `gone` leave, in the order that moves fewest: each gap below the new
    end is filled by a row from above it (one row moved per row gone, at most)."""
    end = rows - len(gone)
    order = list(range(end))
    above = [r for r in range(end, rows) if r not in gone]
    for gap, source in zip([r for r in range(end) if r in gone], above):
        order[gap] = source
    return order


def _copy_layers(target: torch.Tensor, source) -> None:
    """Copy per-layer keys or values (one tensor, or a tuple of one per layer) into target."""
    if isinstance(source, torch.Tensor):
        target.copy_(source)
    else:
        for layer, part in enumerate(source):
            target[layer].copy_(part)


def _grown(buffer: torch.Tensor, rows: int, filled: int, capacity: int, room: int | None = None) -> torch.Tensor:
    """The first `rows` rows of an own buffer, their `filled` positions copied, with room for
    `capacity` positions (and `room` rows: by default `rows`)."""
    shape = list(buffer.shape)
    shape[1], shape[3] = room or rows, capacity
    bigger = buffer.new_zeros(shape)
    bigger[:, :rows, :, :filled].copy_(buffer[:, :rows, :, :filled])
    return bigger
