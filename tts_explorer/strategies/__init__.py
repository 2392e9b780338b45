"""Search strategies and their registry: name -> Strategy. Unknown names list the valid ones.

greedy and majority sample independent chains without a scorer; best_of_n adds a PRM
and PRM-based selection; beam and dvts let the PRM steer the search; auto estimates the
problem's difficulty and runs the compute-optimal one of them (scaling/auto.py);
rollouts is the tree that labels steps for training a PRM.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

from ..config import SearchConfig
from ..errors import UserError
from ..scaling.auto import auto
from .beam import beam_search
from .dvts import dvts
from .sampling import independent_chains, rollout_tree


@dataclass(frozen=True)
class Strategy:
    name: str
    run: Callable  # generator function(ctx) -> events
    uses_scorer: bool
    fixed: tuple[tuple[str, object], ...] = ()  # settings this strategy always uses
    label: str = ""
    on_page: bool = True  # offered in the web page's strategy list
    width_divides: bool = False  # N must be a multiple of the beam width M
    from_chains: bool = False  # eval reads its rows at every budget off one set of independent chains
    baseline: bool = False  # no search: a larger model's rows of it are the reference lines to match
    choosable: bool = True  # the compute-optimal table may name it for a budget

    def adjust(self, config: SearchConfig) -> SearchConfig:
        return dataclasses.replace(config, **dict(self.fixed), strategy=self.name) if self.fixed else config


STRATEGIES: dict[str, Strategy] = {s.name: s for s in (
    Strategy("greedy", independent_chains, False, (("n", 1), ("temperature", 0.0), ("selection", "majority")),
             "Greedy chain of thought", baseline=True, choosable=False),
    Strategy("majority", independent_chains, False, (("selection", "majority"),), "Majority vote",
             from_chains=True, baseline=True),
    Strategy("best_of_n", independent_chains, True, label="Best-of-N", from_chains=True),
    Strategy("beam", beam_search, True, label="Beam search", width_divides=True),
    Strategy("dvts", dvts, True, label="DVTS", width_divides=True),
    Strategy("auto", auto, True, label="Auto (compute-optimal)", choosable=False),
    Strategy("rollouts", rollout_tree, False, (("selection", "majority"),), "Rollout tree (labels steps)",
             on_page=False, width_divides=True, choosable=False),
)}


def is_baseline(name: str) -> bool:
    """Whether a strategy named in a results file (maybe not one of ours) is a no-search baseline."""
    return name in STRATEGIES and STRATEGIES[name].baseline


def get_strategy(name: str) -> Strategy:
    if name not in STRATEGIES:
        raise UserError(f"unknown strategy {name!r}; valid: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]
