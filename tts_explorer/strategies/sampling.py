"""Sampling without pruning: independent chains (greedy chain of thought, majority vote,
best-of-N) and the rollout tree that labels steps Math-Shepherd style.

Independent chains grow N chains side by side, one step per iteration, each unfinished
chain getting exactly one child; nothing is pruned. They differ in N, temperature,
whether a scorer runs and how the answer is chosen (see strategies/__init__.py). The
rollout tree samples N/M first steps and M continuations of each, every one then run to
its end as a chain: each first step is backed by M rollouts, the N leaves are the budget.
"""

from __future__ import annotations

from ..events import IterationDone
from .base import SearchContext, expand_and_score


def independent_chains(ctx: SearchContext):
    cfg = ctx.config
    active = [ctx.start]
    counts = [cfg.n]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, counts, iteration, final)
        active = [n for n in new if not n.terminal]
        counts = [1] * len(active)
        yield IterationDone(iteration, cfg.max_steps, len(active))
        if not active:
            break


def rollout_tree(ctx: SearchContext):
    cfg = ctx.config
    m = cfg.beam_width
    active, counts = [ctx.start], [cfg.n // m]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, counts, iteration, final)
        active = [n for n in new if not n.terminal]
        counts = [m if iteration == 0 else 1] * len(active)
        yield IterationDone(iteration, cfg.max_steps, len(active))
        if not active:
            break
