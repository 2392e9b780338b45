"""Running one search: set up the context, drive the strategy, choose the answer.

`search()` is a generator of events over a tree the caller owns, so a CLI can print at
the end and a UI can redraw as it goes; a stop request ends it early with the partial
tree kept and the answer chosen from what finished.
"""
from __future__ import annotations

from typing import Callable, Iterator

from .config import SearchConfig, check_question
from .events import Done, Event
from .policy.base import StopRequested
from .policy.compute import ComputeMeter
from .prompts import load_template
from .scorers import ScorerEnv, check_scorer_name, make_scorer
from .selection import apply_selection
from .strategies import get_strategy
from .strategies.base import SearchContext
from .tree import SearchTree


def new_tree(question: str, config: SearchConfig, scorer: str, reference: str | None = None,
             policy_name: str = "") -> SearchTree:
    """An empty tree for a problem, with the settings recorded in its meta."""
    strategy = get_strategy(config.strategy)
    config = strategy.adjust(config)
    meta = {"config": vars(config).copy(), "scorer": scorer if strategy.uses_scorer else None,
            "policy": policy_name}
    return SearchTree(check_question(question), reference.strip() if reference else None, meta)


def search(tree: SearchTree, policy, config: SearchConfig, scorer: str, template: str = "default",
           should_stop: Callable[[], bool] | None = None, scorer_options: dict | None = None
           ) -> Iterator[Event]:
    """Grow `tree` with the configured strategy, yielding events; ends with a Done event."""
    strategy = get_strategy(config.strategy)
    config = strategy.adjust(config)
    meter = ComputeMeter()
    scorer_obj = None
    if strategy.uses_scorer:
        env = ScorerEnv(policy, meter, tree.reference, config.temperature, should_stop)
        scorer_obj = make_scorer(check_scorer_name(scorer), env, **(scorer_options or {}))
    root_prompt = policy.chat_prompt(load_template(template).messages(tree.question))
    ctx = SearchContext(tree, policy, scorer_obj, config, root_prompt, meter, should_stop)
    policy.reseed(config.seed)
    stopped = False
    try:
        for event in strategy.run(ctx):
            tree.meta["compute"] = meter.snapshot()
            yield event
    except StopRequested:
        stopped = True
    answer, leaf = apply_selection(tree, config.selection)
    tree.meta["compute"] = meter.snapshot()
    tree.meta["stopped"] = stopped
    yield Done(answer, [leaf] if leaf is not None else [], stopped)


def run_to_end(tree: SearchTree, policy, config: SearchConfig, scorer: str, **kwargs) -> Done:
    """search() without the events: the final Done."""
    last = None
    for last in search(tree, policy, config, scorer, **kwargs):
        pass
    return last
