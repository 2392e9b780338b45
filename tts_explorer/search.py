"""Running one search: set up the context, drive the strategy, choose the answer.

`search()` is a generator of events over a tree the caller owns, so a CLI can print at
the end and a UI can redraw as it goes; a stop request, or a run limit (wall time,
tokens) set by an operator, ends it early with the partial tree kept and the answer
chosen from what finished.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from .config import SearchConfig, check_question
from .errors import UserError
from .events import Done, Event
from .policy.base import StopRequested
from .policy.compute import ComputeMeter
from .prompts import DEFAULT_TEMPLATE, load_template
from .scorers import ScorerEnv, check_scorer_name, make_scorer
from .selection import apply_selection
from .strategies import get_strategy
from .strategies.base import SearchContext
from .tree import SearchTree


def new_tree(
    question: str, config: SearchConfig, scorer: str, reference: str | None = None, policy_name: str = ""
) -> SearchTree:
    """An empty tree for a problem, with the settings recorded in its meta."""
    strategy = get_strategy(config.strategy)
    config = strategy.adjust(config)
    meta = {"config": vars(config).copy(), "scorer": scorer if strategy.uses_scorer else None, "policy": policy_name}
    return SearchTree(check_question(question), reference.strip() if reference else None, meta)


@dataclass(frozen=True)
class RunLimits:
    """Caps on one run, checked at every decoded token: wall seconds, and tokens (generated
    by the policy plus processed by the scorer's model). None: no cap."""

    seconds: float | None = None
    tokens: int | None = None


class _Guard:
    (
        """The stop check handed to the policy: the caller's request or a run limit; `cause` says
    which ("on request", "at this server's limit of ..."), None while neither happened."""
        ""
    )

    def __init__(self, should_stop: Callable[[], bool] | None, limits: RunLimits, meter: ComputeMeter):
        self.should_stop, self.limits, self.meter = should_stop, limits, meter
        self.started = time.monotonic()
        self.cause: str | None = None

    def __call__(self) -> bool:
        if self.cause is None:
            if self.should_stop is not None and self.should_stop():
                self.cause = "on request"
            elif self.limits.seconds is not None and time.monotonic() - self.started > self.limits.seconds:
                self.cause = f"at this server's limit of {self.limits.seconds:g} s per run"
            elif (
                self.limits.tokens is not None
                and self.meter.generated_tokens + self.meter.scorer_tokens > self.limits.tokens
            ):
                self.cause = f"at this server's limit of {self.limits.tokens} tokens per run"
        return self.cause is not None


def _continuation(tree: SearchTree, start: int, config: SearchConfig) -> tuple[SearchConfig, int]:
    """The config for a search grown from node `start` (the steps it has left) and its first iteration."""
    node = tree.nodes.get(start)
    if node is None:
        raise UserError(f"there is no node {start} in this tree")
    if node.terminal:
        raise UserError(f"node {start} ends its path: continue from a step that does not")
    steps_left = config.max_steps - node.depth
    if steps_left < 1:
        raise UserError(f"node {start} is at step {node.depth}, the step limit: raise max steps to continue")
    return replace(config, max_steps=steps_left), max(n.iteration for n in tree) + 1


def _added(before: dict | None, now: dict) -> dict:
    """Compute of a continuation added to what the tree had already cost."""
    if not before:
        return now
    return {
        k: (round(v + before.get(k, 0), 3) if isinstance(v, float) else v + before.get(k, 0)) for k, v in now.items()
    }


def search(
    tree: SearchTree,
    policy,
    config: SearchConfig,
    scorer: str,
    template: str = DEFAULT_TEMPLATE,
    should_stop: Callable[[], bool] | None = None,
    scorer_options: dict | None = None,
    limits: RunLimits = RunLimits(),
    auto_table: str | None = None,
    start: int = 0,
) -> Iterator[Event]:
    """Grow `tree` with the configured strategy, yielding events; ends with a Done event. With
    `start`, the search grows from that node (with the steps it has left) in a tree that already
    holds a search: the answer is then chosen from the whole tree, and compute adds up."""
    strategy = get_strategy(config.strategy)
    config = strategy.adjust(config)
    offset, before = 0, None
    if start:
        config, offset = _continuation(tree, start, config)
        before = tree.meta.get("compute")
    meter = ComputeMeter()
    guard = _Guard(should_stop, limits, meter)
    scorer_obj = None
    if strategy.uses_scorer:
        env = ScorerEnv(policy, meter, tree.reference, config.temperature, guard)
        scorer_obj = make_scorer(check_scorer_name(scorer), env, **(scorer_options or {}))
    root_prompt = policy.chat_prompt(load_template(template).messages(tree.question))
    ctx = SearchContext(
        tree, policy, scorer_obj, config, root_prompt, meter, guard, auto_table, start_id=start, iteration_offset=offset
    )
    policy.reseed(config.seed)
    try:
        for event in strategy.run(ctx):
            tree.meta["compute"] = _added(before, meter.snapshot())
            yield event
    except StopRequested:
        pass
    answer, leaf = apply_selection(tree, ctx.selection or config.selection)
    tree.meta["compute"] = _added(before, meter.snapshot())
    tree.meta["stopped"] = guard.cause
    yield Done(answer, [leaf] if leaf is not None else [], guard.cause)


def run_to_end(tree: SearchTree, policy, config: SearchConfig, scorer: str, **kwargs) -> Done:
    """search() without the events: the final Done."""
    last = None
    for event in search(tree, policy, config, scorer, **kwargs):
        last = event
    return last
