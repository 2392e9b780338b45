"""What every strategy shares: the search context, expanding nodes in one batch, scoring them.

A strategy is a generator that grows `ctx.tree` and yields events; nothing else keeps
search state. Candidates of one expansion are generated in a single policy call.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..answers import extract_answer
from ..config import SearchConfig
from ..events import NodesAdded, NodesPruned, NodesScored
from ..policy.base import Completion, StopRequested
from ..policy.compute import ComputeMeter
from ..prompts import STEP_SEPARATOR, path_prompt
from ..scorers.base import Scorer, StepPath
from ..selection import aggregate
from ..tree import Node, SearchTree


@dataclass
class SearchContext:
    tree: SearchTree
    policy: object  # a Policy
    scorer: Scorer | None
    config: SearchConfig
    root_prompt: str
    meter: ComputeMeter = field(default_factory=ComputeMeter)
    should_stop: Callable[[], bool] | None = None
    auto_table: str | None = None  # the compute-optimal table the auto strategy reads (None: the shipped one)
    selection: str | None = None  # a selection rule the strategy chose itself (auto), else the config's
    start_id: int = 0  # the node the search grows from (a visitor's "continue from here"), else the root
    iteration_offset: int = 0  # iterations of the tree before this search began

    @property
    def start(self) -> Node:
        return self.tree.nodes[self.start_id]

    def candidates(self) -> list[Node]:
        """The answer pool of this search: finished paths through its start node."""
        return [
            n
            for n in self.tree.candidates()
            if self.start_id == 0 or any(p.id == self.start_id for p in self.tree.path(n.id))
        ]

    def step_path(self, node: Node) -> StepPath:
        path = self.tree.path(node.id)
        return StepPath(
            self.tree.question,
            self.root_prompt,
            tuple(n.text for n in path),
            tuple(n.mean_logprob for n in path),
            node.terminal,
        )


def _classify(text: str, reason: str, final: bool) -> tuple[str, str, str | None]:
    """(step text without separator, node stop_reason, answer) for one completion."""
    step = text[: -len(STEP_SEPARATOR)] if text.endswith(STEP_SEPARATOR) else text
    answer = extract_answer(step, complete=reason != "length")
    if reason == "eos" or not step.strip():
        return step, "eos", answer
    if answer is not None:
        return step, "answer", answer
    if reason == "length" or final:
        return step, "length", None
    return step, "step", None


def expand(
    ctx: SearchContext,
    parents: list[Node],
    counts: list[int],
    iteration: int,
    final: bool,
    subtrees: list[int | None] | None = None,
):
    """Sample counts[i] next steps for each parent in one batch and add them to the tree,
    yielding NodesAdded; returns the new nodes in row order. Where the policy hands over each
    row as it ends (`streams_rows`), its step is added at once (the page draws a first node
    before the call's longest row ends), and at the call's end each parent's new children are
    put back in row order (rows are exchangeable samples: an order that does not depend on
    their lengths keeps "the first k chains" a fair sample); their ids stay in the order the
    rows ended."""
    cfg = ctx.config
    prompts = [path_prompt(ctx.root_prompt, ctx.tree.steps(p.id)) for p in parents]
    rows = [parent for parent, k in zip(parents, counts) for _ in range(k)]
    call = dict(
        max_tokens=cfg.final_tokens if final else cfg.step_tokens,
        temperature=cfg.temperature,
        top_p=cfg.top_p,
        stop=None if final else STEP_SEPARATOR,
        meter=ctx.meter,
        role="policy",
    )

    def add(row: int, completion: Completion) -> Node:
        step, reason, answer = _classify(completion.text, completion.stop_reason, final)
        return ctx.tree.add(
            rows[row].id,
            text=step,
            n_tokens=completion.n_tokens,
            mean_logprob=round(completion.mean_logprob, 4),
            iteration=iteration + ctx.iteration_offset,
            stop_reason=reason,
            answer=answer,
            subtree=rows[row].subtree if subtrees is None else subtrees[row],
            status="finished" if reason != "step" else "active",
        )

    if not getattr(ctx.policy, "streams_rows", False):
        results = ctx.policy.generate(prompts, counts, should_stop=ctx.should_stop, **call)
        added = [add(row, c) for row, c in enumerate(c for completions in results for c in completions)]
        yield NodesAdded([n.id for n in added], iteration)
        return added
    ended: queue.SimpleQueue = queue.SimpleQueue()
    outcome: dict = {}
    abandoned = threading.Event()  # the search's consumer went away mid-call

    def stop() -> bool:
        return abandoned.is_set() or (ctx.should_stop is not None and ctx.should_stop())

    def sample() -> None:
        try:
            ctx.policy.generate(prompts, counts, should_stop=stop, on_row=lambda *done: ended.put(done), **call)
        except BaseException as exc:  # a stop, a path too long, a failure: the search sees it
            outcome["error"] = exc
        finally:
            ended.put(None)

    caller = threading.Thread(target=sample, name="expand", daemon=True)
    caller.start()
    new: dict[int, Node] = {}
    try:
        while (done := ended.get()) is not None:
            row, completion = done
            new[row] = add(row, completion)
            yield NodesAdded([new[row].id], iteration)
    finally:
        abandoned.set()
        caller.join()
    added = [new[row] for row in sorted(new)]
    by_parent: dict[int, list[int]] = {}
    for node in added:
        by_parent.setdefault(node.parent, []).append(node.id)
    for parent_id, ids in by_parent.items():  # each parent once, however many rows it had
        parent, mine = ctx.tree.nodes[parent_id], set(ids)
        parent.children = [c for c in parent.children if c not in mine] + ids
    if "error" in outcome:
        raise outcome["error"]
    return added


SCORE_CHUNK = 256  # nodes scored between two checks of the run's limits


def score(ctx: SearchContext, nodes: list[Node]) -> None:
    """Set each node's step score (when there is a scorer) and its aggregated path score; the
    run's stop check is asked between chunks (StopRequested ends it)."""
    if ctx.scorer is not None:
        for start in range(0, len(nodes), SCORE_CHUNK):
            if ctx.should_stop is not None and ctx.should_stop():
                raise StopRequested("stopped while scoring")
            chunk = nodes[start : start + SCORE_CHUNK]
            for node, value in zip(chunk, ctx.scorer.score_last([ctx.step_path(n) for n in chunk])):
                node.score = round(float(value), 4)
    for node in nodes:
        node.agg_score = aggregate([n.score for n in ctx.tree.path(node.id)], ctx.config.aggregation)


def expand_and_score(
    ctx: SearchContext,
    parents: list[Node],
    counts: list[int],
    iteration: int,
    final: bool,
    subtrees: list[int | None] | None = None,
):
    """expand() then score(), yielding the events; returns the new nodes."""
    new = yield from expand(ctx, parents, counts, iteration, final, subtrees)
    score(ctx, new)
    yield NodesScored([n.id for n in new], iteration)
    return new


def prune(nodes: list[Node], iteration: int):
    """Mark nodes pruned and yield the event (nothing when the list is empty)."""
    for node in nodes:
        node.status = "pruned"
    if nodes:
        yield NodesPruned([n.id for n in nodes], iteration)
