"""Independent chains with and without iteration barriers, side by side on the embedded
engine: the same seeded searches (majority and best-of-N), once with every chain's step of an
iteration asked in one call (the chains wait for the iteration's longest step, as a backend
without per-search views runs them) and once with the chains apart (each asks for its next
step as soon as its last one ends; strategies/sampling.py). Prints generated tokens, decode
turns, wall time and tokens per second of each, and the ratios.

    python bench/chains_apart.py [--problems 4] [--n 16]
"""

from __future__ import annotations

import argparse
import time

from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import EMBEDDED, load_policy
from tts_explorer.runs import RunRequest, ScorerChoice, search_events
from tts_explorer.scorers import DEFAULT_SCORER

STRATEGIES = [("majority", "-"), ("best_of_n", DEFAULT_SCORER)]


class InStep:
    """The engine without per-search views: a search's chains keep to its iterations."""

    def __init__(self, policy):
        self._policy = policy

    def __getattr__(self, name: str):
        if name == "for_search":
            raise AttributeError(name)
        return getattr(self._policy, name)


def run(policy, engine, problem, strategy: str, scorer: str, n: int) -> tuple[int, int, float]:
    """(generated tokens, decode turns, wall seconds) of one search."""
    config = SearchConfig(strategy=strategy, n=n, max_steps=6, step_tokens=64, final_tokens=96, seed=0)
    request = RunRequest(problem.question, problem.answer, config, ScorerChoice(scorer))
    tree = request.new_tree(engine.name)
    turns, started = engine.turns, time.perf_counter()
    for _ in search_events(tree, policy, request):
        pass
    return tree.meta["compute"]["generated_tokens"], engine.turns - turns, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    problems = read_problems("synthetic-s11", args.problems)[0]
    engine = load_policy(EMBEDDED)
    modes = {"in step": InStep(engine), "apart": engine}
    totals = {(s, m): [0, 0, 0.0] for s, _ in STRATEGIES for m in modes}
    run(engine, engine, problems[0], "best_of_n", DEFAULT_SCORER, 2)  # loads the scorer
    for problem in problems:
        for strategy, scorer in STRATEGIES:
            for mode, policy in modes.items():  # the two modes back to back on each problem
                engine.forget()
                measured = run(policy, engine, problem, strategy, scorer, args.n)
                totals[strategy, mode][:] = [t + v for t, v in zip(totals[strategy, mode], measured)]
    print(f"{len(problems)} problems of synthetic-s11, N={args.n}, 6 steps of 64 tokens (96 in the last), seed 0")
    columns = (("tokens", 8), ("turns", 7), ("wall s", 8), ("tok/s", 7), ("turns ratio", 13), ("speed-up", 10))
    print(f"{'strategy':<11}{'mode':<9}" + "".join(f"{h:>{w}}" for h, w in columns))
    for strategy, _ in STRATEGIES:
        base = totals[strategy, "in step"]
        for mode in modes:
            tokens, turns, wall = totals[strategy, mode]
            print(
                f"{strategy:<11}{mode:<9}{tokens:>8}{turns:>7}{wall:>8.1f}{tokens / wall:>7.1f}"
                f"{base[1] / turns:>12.2f}x{(tokens / wall) / (base[0] / base[2]):>9.2f}x"
            )


if __name__ == "__main__":
    main()
