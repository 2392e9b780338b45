"""Sampling without pruning: independent chains (greedy chain of thought, majority vote,
best-of-N) and the rollout tree that labels steps Math-Shepherd style.

Independent chains grow N chains side by side, each unfinished step getting exactly one
child, nothing pruned; a chain goes on as soon as its step ends (grow_chains). They differ
in N, temperature, whether a scorer runs and how the answer is chosen (see
strategies/__init__.py). The
rollout tree samples N/M first steps and M continuations of each, every one then run to
its end as a chain: each first step is backed by M rollouts, the N leaves are the budget.
"""

from __future__ import annotations

from ..events import IterationDone
from .base import SearchContext, expand_and_score, grow_chains


def independent_chains(ctx: SearchContext):
    yield from grow_chains(ctx, [ctx.start], [ctx.config.n], 0)


def rollout_tree(ctx: SearchContext):
    cfg = ctx.config
    m = cfg.beam_width
    new = yield from expand_and_score(ctx, [ctx.start], [cfg.n // m], 0, cfg.max_steps == 1)
    active = [n for n in new if not n.terminal]
    yield IterationDone(0, cfg.max_steps, len(active))
    if active:
        yield from grow_chains(ctx, active, [m] * len(active), 1)
