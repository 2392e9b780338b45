"""Diverse verifier tree search (DVTS), as in search-and-learn.

Budget N, beam width M: N/M independent subtrees. Each iteration, every live subtree's
single beam spawns M candidate steps; the best by aggregated score continues and its
siblings are pruned. A subtree ends when its best candidate is finished; the finished
candidates of its last expansion form its share of the answer pool. Where the engine forks
rows, every subtree grows in one call and expands again as soon as its own candidates are
scored (grow_subtrees); elsewhere all subtrees expand together, one call per iteration.
"""

from __future__ import annotations

from ..events import IterationDone
from ..selection import by_score
from ..tree import Node
from .base import SearchContext, expand_and_score, grow_subtrees, prune


def choose(siblings: list[Node]) -> tuple[Node | None, list[Node]]:
    """A subtree's candidates: the best by aggregated score to go on from (None when it is
    finished: the subtree ends, its finished candidates staying in the pool), and those to prune."""
    ranked = sorted(siblings, key=by_score, reverse=True)
    if ranked[0].terminal:
        return None, [n for n in ranked if not n.terminal]
    return ranked[0], ranked[1:]


def dvts(ctx: SearchContext):
    cfg = ctx.config
    m = cfg.beam_width
    subtrees = cfg.n // m
    if getattr(ctx.policy, "forks_rows", False):  # each subtree expands again as soon as it has chosen
        yield from grow_subtrees(ctx, subtrees, m, choose)
        return
    beams = [ctx.start]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        if iteration == 0:
            ids = [i // m for i in range(cfg.n)]
            new = yield from expand_and_score(ctx, beams, [cfg.n], iteration, final, subtrees=ids)
        else:
            new = yield from expand_and_score(ctx, beams, [m] * len(beams), iteration, final)
        beams, dropped = [], []
        for subtree in range(subtrees):
            siblings = [n for n in new if n.subtree == subtree]
            if not siblings:
                continue
            best, pruned = choose(siblings)
            dropped += pruned
            if best is not None:
                beams.append(best)
        yield from prune(dropped, iteration)
        yield IterationDone(iteration, cfg.max_steps, len(beams))
        if not beams:
            break
