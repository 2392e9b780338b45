"""Sampling without pruning: independent chains (greedy chain of thought, majority vote,
best-of-N) and the rollout tree that labels steps Math-Shepherd style.

Independent chains grow N chains side by side, one step per iteration, each unfinished
chain getting exactly one child; nothing is pruned. They differ in N, temperature,
whether a scorer runs and how the answer is chosen (see strategies/__init__.py). Where the
policy serves several calls in one decode loop (it offers views of its own, `for_search`),
the chains part after their first step: each asks for its next step as soon as its last one
ends, on a thread and a random stream of its own, so no chain waits for the others' steps;
the tree is still written one iteration at a time in chain order, the same however the
chains' calls interleave. The
rollout tree samples N/M first steps and M continuations of each, every one then run to
its end as a chain: each first step is backed by M rollouts, the N leaves are the budget.
"""

from __future__ import annotations

import queue
import threading

from ..events import IterationDone, NodesAdded, NodesScored
from ..prompts import path_prompt
from ..tree import Node
from .base import SearchContext, add_step, continues, expand_and_score, sample_steps, score


def independent_chains(ctx: SearchContext):
    cfg = ctx.config
    active = [ctx.start]
    counts = [cfg.n]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, counts, iteration, final)
        active = [n for n in new if not n.terminal]
        counts = [1] * len(active)
        yield IterationDone(iteration, cfg.max_steps, len(active))
        if not active:
            break
        fork = getattr(ctx.policy, "for_search", None)
        if fork is not None and len(active) > 1:
            yield from _chains_apart(ctx, fork, active, iteration + 1)
            break


def chain_seed(seed: int | None, chain: int) -> int | None:
    """The random stream of one chain of a search seeded `seed` (None: unseeded)."""
    return None if seed is None else hash((seed, chain)) & (2**63 - 1)


def _chains_apart(ctx: SearchContext, fork, heads: list[Node], first: int):
    """The rest of each chain from its node in `heads` on, each on its own thread and view of
    the policy; the tree gets iteration `first`, then the next, ... as soon as every chain
    still running has its step of it."""
    cfg = ctx.config
    halt = threading.Event()
    out: queue.SimpleQueue = queue.SimpleQueue()

    def stop() -> bool:
        return halt.is_set() or (ctx.should_stop is not None and ctx.should_stop())

    threads = [
        threading.Thread(
            target=_chain,
            args=(ctx, fork(chain_seed(cfg.seed, c)), ctx.tree.steps(node.id), first, stop, c, out),
            name=f"chain-{c}",
            daemon=True,
        )
        for c, node in enumerate(heads)
    ]
    for thread in threads:
        thread.start()
    chains = dict(enumerate(heads))  # chain -> its last node, while it goes on
    running, got, error = set(chains), {}, None  # got: (chain, iteration) -> completion
    try:
        for iteration in range(first, cfg.max_steps):
            while any((c, iteration) not in got for c in chains.keys() & running):
                chain, at, item = out.get()
                if at is not None:
                    got[chain, at] = item
                    continue
                running.discard(chain)
                if item is not None and error is None:
                    error = item
                    halt.set()
            final = iteration == cfg.max_steps - 1
            new = {
                c: add_step(ctx, node, got.pop((c, iteration)), iteration, final, node.subtree)
                for c, node in chains.items()
                if (c, iteration) in got
            }
            chains = {c: node for c, node in new.items() if not node.terminal}
            if new:
                yield NodesAdded([n.id for n in new.values()], iteration)
                score(ctx, list(new.values()))
                yield NodesScored([n.id for n in new.values()], iteration)
            yield IterationDone(iteration, cfg.max_steps, len(chains))
            if error is not None:
                raise error
            if not chains:
                break
    finally:
        halt.set()
        for thread in threads:
            thread.join()


def _chain(ctx: SearchContext, view, steps: list[str], first: int, stop, chain: int, out) -> None:
    """One chain's steps from iteration `first` on, each put on `out` as (chain, iteration,
    completion) when it ends; then (chain, None, the error or None)."""
    error = None
    try:
        for iteration in range(first, ctx.config.max_steps):
            final = iteration == ctx.config.max_steps - 1
            [[completion]] = sample_steps(ctx, view, [path_prompt(ctx.root_prompt, steps)], [1], final, stop)
            out.put((chain, iteration, completion))
            step = continues(completion, final)
            if step is None:
                break
            steps.append(step)
    except BaseException as exc:  # a stop, a path too long, a failure: the search sees it
        error = exc
    finally:
        view.close()
        out.put((chain, None, error))


def rollout_tree(ctx: SearchContext):
    cfg = ctx.config
    m = cfg.beam_width
    active, counts = [ctx.start], [cfg.n // m]
    for iteration in range(cfg.max_steps):
        final = iteration == cfg.max_steps - 1
        new = yield from expand_and_score(ctx, active, counts, iteration, final)
        active = [n for n in new if not n.terminal]
        counts = [m if iteration == 0 else 1] * len(active)
        yield IterationDone(iteration, cfg.max_steps, len(active))
        if not active:
            break
