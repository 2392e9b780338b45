"""What every strategy shares: the search context, expanding nodes in one batch, scoring them.

A strategy is a generator that grows `ctx.tree` and yields events; nothing else keeps
search state. Candidates of one expansion are generated in a single policy call.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from ..answers import extract_answer
from ..config import SearchConfig
from ..events import IterationDone, NodesAdded, NodesPruned, NodesScored
from ..policy.base import PARK, Completion, Forks, StopRequested
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


def _limits(cfg: SearchConfig, final: bool) -> tuple[int, str | None]:
    """(max tokens, stop string) of a step: the last iteration's runs to the end."""
    return (cfg.final_tokens, None) if final else (cfg.step_tokens, STEP_SEPARATOR)


def _mean_logprob(completion: Completion) -> float:
    """A step's mean token log-prob as its node keeps it."""
    return round(completion.mean_logprob, 4)


def _add(ctx: SearchContext, parent: Node, completion: Completion, iteration: int, final: bool, subtree) -> Node:
    """The completion as a new child of `parent`, classified (a step, an answer, EOS, the limit)."""
    step, reason, answer = _classify(completion.text, completion.stop_reason, final)
    return ctx.tree.add(
        parent.id,
        text=step,
        n_tokens=completion.n_tokens,
        mean_logprob=_mean_logprob(completion),
        iteration=iteration + ctx.iteration_offset,
        stop_reason=reason,
        answer=answer,
        subtree=subtree,
        status="finished" if reason != "step" else "active",
    )


def _ended_rows(ctx: SearchContext, prompts: list[str], counts: list[int], final: bool, next_step=None, forks=None):
    """One policy call for `counts[i]` continuations of each prompt; yields lists of
    (row, completion): each row as it ends where the policy hands it over then (`streams_rows`;
    with forks, the rows that ended in one turn, the call resumed once they are handled), else
    all at the end. `next_step` goes to a policy that lets rows go on (`continues_rows`), `forks`
    to one that forks them (`forks_rows`: the caller checks)."""
    max_tokens, stop = _limits(ctx.config, final)
    call = dict(
        max_tokens=max_tokens,
        temperature=ctx.config.temperature,
        top_p=ctx.config.top_p,
        stop=stop,
        meter=ctx.meter,
        role="policy",
    )
    if not getattr(ctx.policy, "streams_rows", False):
        results = ctx.policy.generate(prompts, counts, should_stop=ctx.should_stop, **call)
        yield list(enumerate(c for completions in results for c in completions))
        return
    if next_step is not None and getattr(ctx.policy, "continues_rows", False):
        call["next_step"] = next_step
    if forks is not None:
        call["forks"] = forks
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
            if forks is not None:
                forks.ended()

    caller = threading.Thread(target=sample, name="expand", daemon=True)
    caller.start()
    try:
        while (done := ended.get()) is not None:
            rows = [done]
            if forks is not None:  # every row of the turn, the call waiting until they are handled
                forks.wait()
                while not ended.empty() and (done := ended.get()) is not None:
                    rows.append(done)
            yield rows
            if done is None:
                break
            if forks is not None:
                forks.resume()
    finally:
        abandoned.set()
        if forks is not None:
            forks.close()  # a call waiting for forks sees the stop
        caller.join()
    if "error" in outcome:
        raise outcome["error"]


def _in_row_order(ctx: SearchContext, added: dict[int, Node]) -> None:
    """Put each parent's new children (rows of one call: `added`, row -> node) back in row order:
    rows are exchangeable samples, and an order that does not depend on their lengths keeps
    "the first k chains" a fair sample; their ids stay in the order the rows ended."""
    by_parent: dict[int, list[int]] = {}
    for row in sorted(added):
        by_parent.setdefault(added[row].parent, []).append(added[row].id)
    for parent_id, ids in by_parent.items():  # each parent once, however many rows it had
        parent, mine = ctx.tree.nodes[parent_id], set(ids)
        parent.children = [c for c in parent.children if c not in mine] + ids


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
    before the call's longest row ends)."""
    prompts = [path_prompt(ctx.root_prompt, ctx.tree.steps(p.id)) for p in parents]
    rows = [parent for parent, k in zip(parents, counts) for _ in range(k)]
    new: dict[int, Node] = {}
    try:
        for ended in _ended_rows(ctx, prompts, counts, final):
            for row, completion in ended:
                subtree = rows[row].subtree if subtrees is None else subtrees[row]
                new[row] = _add(ctx, rows[row], completion, iteration, final, subtree)
            yield NodesAdded([new[row].id for row, _ in ended], iteration)
    finally:
        _in_row_order(ctx, new)
    return [new[row] for row in sorted(new)]


SCORE_AFTER_NODES = 16  # chains growing side by side: their new steps are scored this many at a time,
SCORE_AFTER_S = 0.5  # or once the oldest has waited this long (each scoring is a pass of its own)


def grow_chains(
    ctx: SearchContext,
    parents: list[Node],
    counts: list[int],
    iteration: int,
    last: int | None = None,
    keep: Callable[[list[float | None]], bool] | None = None,
):
    """Grow counts[i] chains from each parent, each step after step to its end (an answer, EOS,
    the token limit, iteration `last`, by default the config's last), independently of one
    another. Where the policy lets a row go on in place (`continues_rows`) one call serves every
    chain, and a chain starts its next step as soon as its last one ends instead of waiting for
    the slowest chain of the iteration (continuous batching); a chain the policy could not
    continue, and every chain elsewhere, waits for the next call, one per iteration. `keep`,
    given the mean token log-probs of a chain's path (its new step last), may stop a chain after
    a step that is not its last: that step is pruned. New steps are scored as they come
    (SCORE_AFTER_*); IterationDone(k) is yielded once no chain is at iteration k or before.
    Returns the new nodes."""
    cfg = ctx.config
    last = cfg.max_steps - 1 if last is None else last
    waiting = {iteration: list(zip(parents, counts))}  # iteration -> (parent, chains) for a next call
    growing = {iteration: sum(counts)}  # iteration -> chains at it or waiting for it
    reached, announced, new, unscored, since = iteration, iteration, [], [], None
    while waiting:
        depth = min(waiting)
        call = waiting.pop(depth)
        rows = [parent for parent, k in call for _ in range(k)]  # each row's last node
        # the policy's thread moves these on: each row's iteration and, for `keep`, its path's mean log-probs
        at = [depth] * len(rows)
        means = [[n.mean_logprob for n in ctx.tree.path(p.id)] for p in rows] if keep is not None else []
        went_on: set[tuple[int, int]] = set()

        def next_step(row: int, completion: Completion, at=at, means=means, went_on=went_on):
            if _classify(completion.text, completion.stop_reason, at[row] == last)[1] != "step":
                return None
            if keep is not None:
                means[row].append(_mean_logprob(completion))
                if not keep(means[row]):
                    return None
            went_on.add((row, at[row]))
            at[row] += 1
            return _limits(cfg, at[row] == last)

        prompts = [path_prompt(ctx.root_prompt, ctx.tree.steps(parent.id)) for parent, _ in call]
        seen = [depth] * len(rows)  # each row's iteration, as its steps arrive here
        first: dict[int, Node] = {}
        try:
            for ended in _ended_rows(ctx, prompts, [k for _, k in call], depth == last, next_step):
                added, stopped = [], []
                for row, completion in ended:
                    d = seen[row]
                    node = _add(ctx, rows[row], completion, d, d == last, rows[row].subtree)
                    first.setdefault(row, node)
                    added.append(node)
                    growing[d] -= 1
                    seen[row] = d + 1
                    if node.terminal:
                        continue
                    if (row, d) in went_on:
                        rows[row] = node
                    elif keep is None or keep([n.mean_logprob for n in ctx.tree.path(node.id)]):
                        waiting.setdefault(d + 1, []).append((node, 1))
                    else:
                        stopped.append(node)
                        continue
                    growing[d + 1] = growing.get(d + 1, 0) + 1
                    reached = max(reached, d + 1)
                new += added
                unscored += added
                yield NodesAdded([n.id for n in added], depth)
                yield from prune(stopped, depth)
                since = since or time.monotonic()
                if len(unscored) >= SCORE_AFTER_NODES or time.monotonic() - since >= SCORE_AFTER_S:
                    yield from _score_now(ctx, unscored, depth)
                    since = None
                while announced <= reached and growing.get(announced, 0) == 0:
                    yield from _score_now(ctx, unscored, announced)
                    yield IterationDone(announced, last + 1, sum(growing.values()))
                    announced += 1
        finally:
            _in_row_order(ctx, first)
    return new


def grow_subtrees(
    ctx: SearchContext,
    subtrees: int,
    width: int,
    choose: Callable[[list[Node]], tuple[Node | None, list[Node]]],
):
    """Grow `subtrees` subtrees from the start node where the policy forks rows (`forks_rows`),
    `width` candidate steps at a time: every subtree's candidates in one call; once a subtree's
    candidates have all ended they are scored, and `choose` (given them in row order) names the
    one its next candidates grow from (None: the subtree ends) and those to prune. That one's
    state starts the next `width` rows of the same call at once (Forks): a subtree expands again
    without waiting for the other subtrees' candidates (continuous batching across subtrees).
    One the engine could not park (its text does not end on a token of its own) goes on in a
    call of its own after this one. IterationDone(k) is yielded once no subtree is at
    iteration k or before."""
    cfg = ctx.config
    last = cfg.max_steps - 1
    calls = [(ctx.start, list(range(subtrees)), 0)]  # (node, its subtrees, their iteration): a call each
    growing, reached = {0: subtrees}, {0: subtrees}  # iteration -> subtrees expanding at it / that got to it
    announced = 0
    while calls:
        start, members, depth = calls.pop(0)
        rows = {r: (start, depth, s) for r, s in enumerate(s for s in members for _ in range(width))}
        candidates: dict[int, list[tuple[int, Node]]] = {s: [] for s in members}  # (row, node) ended so far
        active, added, forks = set(members), {}, Forks()

        def next_step(row: int, completion: Completion, rows=rows):
            final = rows[row][1] == last
            return PARK if _classify(completion.text, completion.stop_reason, final)[1] == "step" else None

        prompt = path_prompt(ctx.root_prompt, ctx.tree.steps(start.id))
        try:
            for ended in _ended_rows(ctx, [prompt], [len(rows)], depth == last, next_step, forks):
                for row, completion in ended:
                    parent, d, s = rows[row]
                    added[row] = _add(ctx, parent, completion, d, d == last, s)
                    candidates[s].append((row, added[row]))
                yield NodesAdded([added[row].id for row, _ in ended], min(rows[row][1] for row, _ in ended))
                complete = sorted(s for s in active if len(candidates[s]) == width)
                if not complete:
                    continue
                iteration = min(rows[candidates[s][0][0]][1] for s in complete)
                yield from _score_now(ctx, [node for s in complete for _, node in candidates[s]], iteration)
                pruned = []
                for s in complete:
                    siblings, candidates[s] = sorted(candidates[s]), []
                    d = rows[siblings[0][0]][1]
                    best, dropped = choose([node for _, node in siblings])
                    pruned += dropped
                    growing[d] -= 1
                    forks.drop([row for row, node in siblings if node is not best])
                    if best is None:
                        active.discard(s)
                        continue
                    growing[d + 1] = growing.get(d + 1, 0) + 1
                    reached[d + 1] = reached.get(d + 1, 0) + 1
                    row = next(row for row, node in siblings if node is best)
                    if row in forks.parked:
                        for new in range(forks.next_row, forks.next_row + width):
                            rows[new] = (best, d + 1, s)
                        forks.fork(row, width, _limits(cfg, d + 1 == last), key=s * cfg.max_steps + d + 1)
                    else:
                        calls.append((best, [s], d + 1))
                        active.discard(s)
                yield from prune(pruned, iteration)
                while announced < len(reached) and growing.get(announced) == 0:
                    yield IterationDone(announced, cfg.max_steps, reached.get(announced + 1, 0))
                    announced += 1
                if not active:
                    forks.close()
        finally:
            _in_row_order(ctx, added)


def _score_now(ctx: SearchContext, nodes: list[Node], iteration: int):
    """Score the nodes waiting for it (emptying the list) and yield NodesScored."""
    if nodes:
        score(ctx, nodes)
        yield NodesScored([n.id for n in nodes], iteration)
        nodes.clear()


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
