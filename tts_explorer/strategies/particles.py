"""Particle filtering (Puri et al. 2025, arXiv 2502.01618; its_hub): N particles advance one
step at a time and are resampled in proportion to their PRM score.

Each iteration every live particle takes one step (a node with k particles on it spawns k
children); finished particles leave for the answer pool; the unfinished ones get weights
softmax(step score / resample_temperature) and are drawn with replacement, as many draws as
particles, from the run's seeded generator. A node drawn k times carries k particles into
the next step (its `budget`), a node never drawn is pruned; so a low-scored path can survive,
unlike beam search's top-k. Each node keeps its weight (`weight`) for the drawing.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from ..events import IterationDone
from .base import SearchContext, expand_and_score, prune


def softmax(values: list[float], temperature: float) -> list[float]:
    top = max(values)
    exps = [math.exp((v - top) / temperature) for v in values]
    total = sum(exps)
    return [e / total for e in exps]


def resample(scores: list[float], temperature: float, rng: random.Random) -> tuple[list[float], Counter]:
    """(weights, index -> draws) of one resampling: as many draws as scores."""
    weights = softmax(scores, temperature)
    return weights, Counter(rng.choices(range(len(scores)), weights=weights, k=len(scores)))


def particle_filter(ctx: SearchContext):
    cfg = ctx.config
    rng = random.Random(cfg.seed)
    active, counts = [ctx.start], [cfg.n]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, counts, iteration, final)
        live = [n for n in new if not n.terminal]
        if not live:
            yield IterationDone(iteration, cfg.max_steps, 0)
            break
        weights, draws = resample([n.score or 0.0 for n in live], cfg.resample_temperature, rng)
        for i, node in enumerate(live):
            node.weight, node.budget = round(weights[i], 4), draws.get(i, 0)
        active = [live[i] for i in sorted(draws)]
        counts = [draws[i] for i in sorted(draws)]
        yield from prune([n for i, n in enumerate(live) if i not in draws], iteration)
        yield IterationDone(iteration, cfg.max_steps, len(active))
