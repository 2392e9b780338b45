"""Re-scoring a finished tree with another scorer or aggregation, without generating again.

The copy gets every step's score and path score anew; answer selection can then be
applied to it with any rule and compared with the original.
"""

from __future__ import annotations

import time

from .config import SearchConfig
from .policy.compute import ComputeMeter
from .prompts import DEFAULT_TEMPLATE, load_template
from .scorers import ScorerEnv, make_scorer
from .selection import aggregate
from .strategies.base import SearchContext, score
from .tree import SearchTree


def rescore(
    tree: SearchTree,
    scorer: str,
    aggregation: str,
    policy=None,
    template: str = DEFAULT_TEMPLATE,
    scorer_options: dict | None = None,
    guard=None,
) -> SearchTree:
    """A copy of `tree` scored by `scorer` and aggregated by `aggregation`; `guard` (a run's stop
    check) is asked between batches, and StopRequested ends it with `tree` unchanged."""
    new = tree.copy()
    settings = dict(new.meta.get("config") or {})
    # only the aggregation and the sampling temperature (for rollouts) matter when re-scoring
    config = SearchConfig(
        strategy="best_of_n",
        aggregation=aggregation,
        temperature=float(settings.get("temperature", SearchConfig.temperature)),
    )
    meter = ComputeMeter()
    if guard is not None:
        guard.watch(meter)
    env = ScorerEnv(policy, meter, new.reference, config.temperature, guard)
    root_prompt = load_template(template).prompt(policy, new.question) if policy else ""
    ctx = SearchContext(
        new, policy, make_scorer(scorer, env, **(scorer_options or {})), config, root_prompt, meter, guard
    )
    started = time.perf_counter()
    score(ctx, sorted((n for n in new if n.id != 0), key=lambda n: n.depth))
    new.meta.update(
        scorer=scorer,
        config={**settings, "aggregation": aggregation},
        rescore={
            "from_scorer": tree.meta.get("scorer"),
            "compute": meter.snapshot(),
            "seconds": round(time.perf_counter() - started, 3),
        },
    )
    return new


def reaggregate(tree: SearchTree, aggregation: str) -> None:
    """Recompute every path score in place from the step scores already in the tree."""
    for node in tree:
        if node.id != 0:
            node.agg_score = aggregate([n.score for n in tree.path(node.id)], aggregation)
    tree.meta.setdefault("config", {})["aggregation"] = aggregation
