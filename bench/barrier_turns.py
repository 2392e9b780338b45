"""How many decode turns a search's iteration barrier costs, read from the trees it grows: with
the barrier every iteration lasts as long as its longest step (the sum over iterations of the
longest step, in tokens: one token a turn); without it a search lasts as long as its longest
independent unit, a chain (best-of-N, majority: the longest root-to-leaf path) or a DVTS subtree
(the sum over iterations of its own longest step). The `tts-explorer bench` settings (beam width
4, 6 steps, the arithmetic scorer, seed 0) on the first K easy problems, engine only. What a
strategy that no longer waits could save at most, in turns; a turn without the barrier holds
more rows, so time falls by less.

Beam search keeps its iterations: which candidates survive is decided over the whole iteration.
But once enough of an iteration's candidates have ended, some survivors are certain: a candidate
that has ended, at most keep - 1 of whose rivals rank above it or have not ended yet, survives
whatever the others score (and with at least keep ended candidates that go on, as many survive
as always, each spawning N/keep children). For beam cells the bench also prints the turns of a
beam search whose certain survivors start their children at once, the rest at the barrier: the
same survivors, so the same search, in fewer turns (read from the same trees).

    python bench/barrier_turns.py [--limit 6] [dvts:64 best_of_n:64 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts_explorer.benchmark.search_speed import SCORER, bench_config
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, search
from tts_explorer.selection import by_score

ROOT = Path(__file__).resolve().parent.parent


def turns(tree) -> tuple[int, int]:
    """(turns with the barrier, turns of the longest unit alone): a unit is a subtree where the
    search has subtrees (DVTS), else a chain."""
    nodes = [n for n in tree if n.id]
    longest: dict[tuple, int] = {}  # (subtree, iteration) -> its longest step; subtree None: all
    for n in nodes:
        for key in {(None, n.iteration), (n.subtree, n.iteration)}:
            longest[key] = max(longest.get(key, 0), n.n_tokens)
    barrier = sum(v for (sub, _), v in longest.items() if sub is None)
    subtrees: dict = {}
    for (sub, _), v in longest.items():
        if sub is not None:
            subtrees[sub] = subtrees.get(sub, 0) + v
    if subtrees:
        return barrier, max(subtrees.values())
    return barrier, max((sum(p.n_tokens for p in tree.path(n.id)) for n in nodes if not n.children), default=0)


def early_start_turns(tree, keep: int, n: int) -> int:
    """Turns of the tree's beam search when each certain survivor (module docstring) starts its
    children as soon as it is certain, the others at their iteration's end."""
    active, start, end = [tree.nodes[0]], {0: 0}, 0
    while active:
        rows = [tree.nodes[c] for parent in active for c in parent.children]  # the iteration's row order
        if not rows:
            break
        ends = {r.id: start[r.parent] + r.n_tokens for r in rows}
        rank = {r.id: k for k, r in enumerate(sorted(rows, key=by_score, reverse=True))}  # ties: row order
        barrier = max(ends.values())
        survivors = sorted((r for r in rows if not r.terminal), key=by_score, reverse=True)[:keep]
        certain: dict[int, int] = {}
        for t in sorted(set(ends.values())) if n % keep == 0 else []:  # unequal shares: not before the end
            ended = sorted((r for r in rows if ends[r.id] <= t and not r.terminal), key=lambda r: rank[r.id])
            waiting = sum(ends[r.id] > t for r in rows)
            if len(ended) >= keep:
                for above, r in enumerate(ended):
                    if above + waiting <= keep - 1:
                        certain.setdefault(r.id, t)
        for survivor in survivors:
            start[survivor.id] = certain.get(survivor.id, barrier)
        end, active = max(end, barrier), survivors
    return end


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=6, help="problems")
    parser.add_argument("cells", nargs="*", default=["dvts:64"], help="strategy:N")
    args = parser.parse_args()
    policy = load_policy()
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=args.limit)
    for cell in args.cells:
        strategy, n = cell.split(":")
        config = bench_config(strategy, int(n), 4, 6)
        totals = [0, 0, 0]
        for problem in problems:
            policy.forget()
            tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
            for _ in search(tree, policy, config, SCORER):
                pass
            early = early_start_turns(tree, config.n // config.beam_width, config.n) if strategy == "beam" else 0
            totals = [t + x for t, x in zip(totals, (*turns(tree), early))]
        barrier, alone, early = totals
        if strategy == "beam":
            print(
                f"beam N={n}, {len(problems)} problems: {barrier} turns with the barrier, {early} with certain "
                f"survivors started at once ({1 - early / max(barrier, 1):.0%} fewer)",
                flush=True,
            )
            continue
        print(
            f"{strategy} N={n}, {len(problems)} problems: {barrier} turns with the barrier, {alone} "
            f"without it ({1 - alone / max(barrier, 1):.0%} fewer)",
            flush=True,
        )


if __name__ == "__main__":
    main()
