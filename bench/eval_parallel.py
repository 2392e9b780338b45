"""Problems searched one after another against several at once (`eval --parallel`), side by
side in one run on the same model: the same grid on the same problems into two results files,
then wall time, generated tokens per second and their ratio, and how many rows give the same
answer both ways (a seeded search draws the same stream alone or beside others; a matrix
product over more rows can round its last bits otherwise, so a sampled token can differ).

    python bench/eval_parallel.py [--problems 4] [--parallel 4] [--strategies majority,best_of_n] [--budget 64]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.scaling.grid import Grid, run_grid
from tts_explorer.scorers import default_scorer
from tts_explorer.strategies import get_strategy

ROOT = Path(__file__).resolve().parent.parent


def generated(rows: list[dict]) -> int:
    """Tokens the policy generated: each problem's shared chains once, every other search's own."""
    chains: dict[str, int] = {}
    searched = 0
    for row in rows:
        tokens = row["compute"]["generated_tokens"]
        if get_strategy(row["strategy"]).from_chains:
            chains[row["id"]] = max(chains.get(row["id"], 0), tokens)
        else:
            searched += tokens
    return searched + sum(chains.values())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--strategies", default="majority,best_of_n")
    parser.add_argument("--budget", type=int, default=64)
    parser.add_argument("--data", default=str(ROOT / "assets" / "problems" / "synthetic-s11.jsonl"))
    args = parser.parse_args()
    problems, _ = read_problems(args.data, args.problems)
    policy = load_policy()
    scorer = default_scorer(["embedded"])
    # the set-B settings of assets/scaling/README.md
    base = SearchConfig(beam_width=4, max_steps=6, step_tokens=64, final_tokens=96)
    grid = Grid(args.strategies.split(","), [args.budget], [scorer], base)
    print(
        f"{len(problems)} problems of {Path(args.data).name}, {args.strategies} at N={args.budget}, scorer {scorer}, "
        f"{policy.name}"
    )
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for parallel in (1, args.parallel):
            policy.forget()
            started = time.perf_counter()
            rows = run_grid(["embedded"], problems, grid, f"{tmp}/p{parallel}.jsonl", lambda _: policy, False, parallel)
            wall = time.perf_counter() - started
            tokens = generated(rows)
            results[parallel] = (wall, tokens, {(r["id"], r["strategy"]): r["answer"] for r in rows})
            right = sum(r["correct"] for r in rows)
            print(
                f"parallel {parallel:2d}: {wall:7.1f} s, {tokens} generated tokens, {tokens / wall:6.1f} tok/s, "
                f"{right} of {len(rows)} rows right"
            )
    (wall1, tok1, ans1), (wallk, tokk, ansk) = results[1], results[args.parallel]
    same = sum(ans1[key] == ansk.get(key) for key in ans1)
    print(
        f"parallel {args.parallel} against 1: {wall1 / wallk:.2f}x faster by wall time, "
        f"{(tokk / wallk) / (tok1 / wall1):.2f}x the tokens per second; same answer in {same} of {len(ans1)} rows"
    )


if __name__ == "__main__":
    main()
