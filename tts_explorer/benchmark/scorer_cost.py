"""What each offline scorer costs per scored step, re-scoring one best-of-8 tree."""

from __future__ import annotations

import time
from dataclasses import replace

from ..config import PAGE_DEFAULTS
from ..data import Problem
from ..rescore import rescore
from ..search import new_tree, search
from .search_speed import SCORER


def scorer_costs(policy, problem: Problem, scorers: list[str]) -> dict[str, float]:
    """Seconds per scored step for each scorer."""
    config = replace(PAGE_DEFAULTS, strategy="majority", n=8, max_steps=6, seed=0)
    tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
    for _ in search(tree, policy, config, SCORER):
        pass
    steps = len(tree) - 1
    out = {}
    for name in scorers:
        started = time.perf_counter()
        rescore(tree, name, "min", policy, scorer_options={"rollouts": 2} if name.startswith("mc-") else None)
        out[name] = (time.perf_counter() - started) / max(steps, 1)
    return out


def format_costs(costs: dict[str, float]) -> str:
    return "scorer cost per step: " + (", ".join(f"{k} {v * 1000:.1f} ms" for k, v in costs.items()) or "-")
