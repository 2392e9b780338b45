"""Diverse verifier tree search (DVTS), as in search-and-learn.

Budget N, beam width M: N/M independent subtrees. Each iteration, every live subtree's
single beam spawns M candidate steps (all subtrees in one batch); the best by aggregated
score continues and its siblings are pruned. A subtree ends when its best candidate is
finished; the finished candidates of its last expansion form its share of the answer pool.
"""

from __future__ import annotations

from ..events import IterationDone
from ..selection import by_score
from .base import SearchContext, expand_and_score, prune


def dvts(ctx: SearchContext):
    cfg = ctx.config
    m = cfg.beam_width
    subtrees = cfg.n // m
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
            siblings = sorted((n for n in new if n.subtree == subtree), key=by_score, reverse=True)
            if not siblings:
                continue
            best = siblings[0]
            if best.terminal:  # the subtree ends: its finished candidates stay in the pool
                dropped += [n for n in siblings if not n.terminal]
            else:
                beams.append(best)
                dropped += siblings[1:]
        yield from prune(dropped, iteration)
        yield IterationDone(iteration, cfg.max_steps, len(beams))
        if not beams:
            break
