"""Reward-balanced search, REBASE (Wu et al. 2024, "Inference Scaling Laws", arXiv 2408.00724):
each iteration's budget is shared among the frontier by a softmax of their scores, not by a
fixed top-k.

The first iteration samples N first steps. Then the budget left is N minus the paths
finished so far; every unfinished node of the last expansion gets its share
softmax(aggregated score / frontier_temperature) x budget, rounded by largest remainders so
the shares add up exactly (`budget`, with the share itself as `weight`); a node granted no
child is pruned. The last iteration lets every candidate run to the end.
"""

from __future__ import annotations

from ..events import IterationDone
from ..selection import rank_value
from .base import SearchContext, expand_and_score, prune
from .particles import softmax


def split_by_weight(weights: list[float], total: int) -> list[int]:
    """`total` children shared in proportion to `weights`: the floors, then one more each to the
    largest remainders (the earlier of equal ones first), so the shares add up to `total`."""
    exact = [w * total for w in weights]
    shares = [int(x) for x in exact]
    order = sorted(range(len(weights)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in order[: total - sum(shares)]:
        shares[i] += 1
    return shares


def rebase(ctx: SearchContext):
    cfg = ctx.config
    frontier, counts = [ctx.start], [cfg.n]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, frontier, counts, iteration, final)
        live = [n for n in new if not n.terminal]
        left = cfg.n - len(ctx.candidates())
        if not live or left < 1:
            yield from prune(live, iteration)
            yield IterationDone(iteration, cfg.max_steps, 0)
            break
        scores = [rank_value(n.agg_score) if n.agg_score is not None else 0.0 for n in live]
        weights = softmax(scores, cfg.frontier_temperature)
        shares = split_by_weight(weights, left)
        for node, weight, share in zip(live, weights, shares):
            node.weight, node.budget = round(weight, 4), share
        frontier = [n for n, k in zip(live, shares) if k]
        counts = [k for k in shares if k]
        yield from prune([n for n, k in zip(live, shares) if not k], iteration)
        yield IterationDone(iteration, cfg.max_steps, len(frontier))
