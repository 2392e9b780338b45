"""Beam search with a PRM, as in the TTS papers' reference code (search-and-learn).

Budget N, beam width M. Each iteration generates N candidate steps; finished candidates
(answer given, EOS, or the token limit) leave the active set and join the answer pool;
of the unfinished ones the N/M best by aggregated score survive and the rest are pruned;
each survivor then spawns its share of the next N candidates (M each when all N/M
survive). The last iteration lets every candidate run to the end. The pool is capped at
the N best finished candidates.
"""

from __future__ import annotations

from ..events import IterationDone
from ..selection import by_score
from .base import SearchContext, expand_and_score, prune


def split_budget(total: int, parents: int) -> list[int]:
    """total children shared out among parents, the first ones taking the remainder."""
    base, extra = divmod(total, parents)
    return [base + (1 if i < extra else 0) for i in range(parents)]


def beam_search(ctx: SearchContext):
    cfg = ctx.config
    keep = cfg.n // cfg.beam_width
    active = [ctx.start]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, split_budget(cfg.n, len(active)), iteration, final)
        candidates = sorted((n for n in new if not n.terminal), key=by_score, reverse=True)
        active = candidates[:keep]
        yield from prune(candidates[keep:], iteration)
        yield IterationDone(iteration, cfg.max_steps, len(active))
        if not active:
            break
    pool = sorted(ctx.candidates(), key=by_score, reverse=True)
    yield from prune(pool[cfg.n :], cfg.max_steps)
