"""Search strategies and their registry (registry.py): name -> Strategy.

greedy and majority sample independent chains without a scorer; best_of_n adds a PRM
and PRM-based selection; beam and dvts let the PRM steer the search; auto estimates the
problem's difficulty and runs the compute-optimal one of them (auto.py); particles
(particle filtering), rebase (reward-balanced search) and deepconf (confidence-filtered
voting with early stop) are the strategies the field added since; rollouts is the tree that
labels steps for training a PRM. A new strategy: a generator module here and one
line below.
"""

from __future__ import annotations

from .auto import auto
from .beam import beam_search
from .deepconf import deepconf
from .dvts import dvts
from .particles import particle_filter
from .rebase import rebase
from .registry import STRATEGIES, Strategy, configure, get_strategy, is_baseline, is_choosable
from .sampling import independent_chains, rollout_tree

STRATEGIES.update(
    {
        s.name: s
        for s in (
            Strategy(
                "greedy",
                independent_chains,
                False,
                (("n", 1), ("temperature", 0.0), ("selection", "majority")),
                "Greedy chain of thought",
                baseline=True,
                choosable=False,
            ),
            Strategy(
                "majority",
                independent_chains,
                False,
                (("selection", "majority"),),
                "Majority vote",
                from_chains=True,
                baseline=True,
            ),
            Strategy("best_of_n", independent_chains, True, label="Best-of-N", from_chains=True),
            Strategy("beam", beam_search, True, label="Beam search", width_divides=True),
            Strategy("dvts", dvts, True, label="DVTS", width_divides=True),
            Strategy("particles", particle_filter, True, label="Particle filtering"),
            Strategy("rebase", rebase, True, label="REBASE (reward-balanced)"),
            Strategy("deepconf", deepconf, False, label="DeepConf (confidence-filtered vote)", settles=False),
            Strategy("auto", auto, True, label="Auto (compute-optimal)", choosable=False, settles=False),
            Strategy(
                "rollouts",
                rollout_tree,
                False,
                (("selection", "majority"),),
                "Rollout tree (labels steps)",
                on_page=False,
                width_divides=True,
                choosable=False,
            ),
        )
    }
)

__all__ = ["STRATEGIES", "Strategy", "configure", "get_strategy", "is_baseline", "is_choosable"]
