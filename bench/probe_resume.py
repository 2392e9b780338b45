"""The probe PRM with and without its kept paths (scorers/probe_model.ScoredPaths), side by
side in one run: the same seeded searches with the shipped probe, each path read whole at
every step (`keep_paths_mb=0`, the scorer before) and each new step fed alone. Prints per
strategy the scorer's tokens, wall time and their ratios, and how far the two runs' step
scores are apart on the steps both trees hold (a search whose choices are the same grows the
same tree; scores that differ in their last bits can tip a close choice).

    python bench/probe_resume.py [--problems 2] [--strategies beam,dvts,rebase] [--n 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, run_to_end

ROOT = Path(__file__).resolve().parent.parent
SCORER = "smollm-probe"


def one(policy, problem, strategy: str, n: int, options: dict):
    config = SearchConfig(strategy=strategy, n=n, beam_width=4, max_steps=6, step_tokens=64, final_tokens=96, seed=0)
    tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
    started = time.perf_counter()
    run_to_end(tree, policy, config, SCORER, scorer_options=options)
    return tree, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--strategies", default="beam,dvts,rebase")
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    problems, _ = read_problems(ROOT / "assets" / "problems" / "synthetic-s11.jsonl", args.problems)
    policy = load_policy()
    one(policy, problems[0], "best_of_n", 2, {})  # warm: the template prefilled, the probe loaded
    print(f"{len(problems)} problems of set B, N={args.n}, M=4, 6 steps, scorer {SCORER}, each search cold")
    print(
        f"{'strategy':10} {'scorer':>14} {'scorer tokens':>14} {'wall s':>8} {'same steps':>11} {'max |d score|':>14}"
    )
    for strategy in args.strategies.split(","):
        totals = {}
        for label, options in (("whole paths", {"keep_paths_mb": 0}), ("kept paths", {})):
            tokens, wall, trees = 0, 0.0, []
            for problem in problems:
                policy.forget()
                tree, seconds = one(policy, problem, strategy, args.n, options)
                tokens += tree.meta["compute"]["scorer_tokens"]
                wall += seconds
                trees.append(tree)
            totals[label] = (tokens, wall, trees)
        (t0, w0, trees0), (t1, w1, trees1) = totals["whole paths"], totals["kept paths"]
        same, diff = 0, 0.0
        for a, b in zip(trees0, trees1):
            steps = {(n.parent, n.text): n.score for n in a if n.id and n.score is not None}
            for node in b:
                key = (node.parent, node.text)
                if node.id and node.score is not None and key in steps:
                    same += 1
                    diff = max(diff, abs(steps[key] - node.score))
        total = sum(1 for t in trees1 for n in t if n.id)
        print(f"{strategy:10} {'whole paths':>14} {t0:>14} {w0:>8.1f}")
        print(f"{strategy:10} {'kept paths':>14} {t1:>14} {w1:>8.1f} {same:>5}/{total:<5} {diff:>14.2e}")
        print(f"{strategy:10} {'ratio':>14} {t0 / max(t1, 1):>13.2f}x {w0 / max(w1, 1e-9):>7.2f}x")


if __name__ == "__main__":
    main()
