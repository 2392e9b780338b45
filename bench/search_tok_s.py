"""The engine's tokens per second inside the bench's searches (`tts-explorer bench`'s settings:
beam width 4, 6 steps, the arithmetic scorer or `--scorer`, seed 0, each search started cold)
on the first K problems of `assets/problems/easy.jsonl`, engine only, after one short warm-up
search. To compare
two versions of the engine on the same sampled trees, run it from a checkout of each in turn
(`PYTHONPATH=CHECKOUT python CHECKOUT/bench/search_tok_s.py ...`), alternating, nothing else
running: when the tokens printed are the same, so are the trees, and the seconds compare the
engines alone. Where they differ the trees do, and tokens per second then move with the trees'
shapes too (how many rows a pass keeps), by more than a small change in the engine's speed.

    python bench/search_tok_s.py [--limit 20] [--scorer smollm-probe] [beam:16 dvts:64 best_of_n:64 ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from tts_explorer.benchmark.parts import engine_parts
from tts_explorer.benchmark.search_speed import SCORER, bench_config, measure, run_one
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=20, help="problems")
    parser.add_argument("--scorer", default=SCORER, help="the searches' step scorer")
    parser.add_argument("cells", nargs="*", default=["beam:16"], help="strategy:N")
    args = parser.parse_args()
    policy = load_policy()
    tokenizer = engine_parts(policy)[1]
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=args.limit)
    run_one(policy, tokenizer, problems[0], bench_config("beam", 4, 4, 2), scorer=args.scorer)  # warm-up
    for cell in args.cells:
        strategy, n = cell.split(":")
        for (row,) in measure({"engine": policy}, tokenizer, problems, [strategy], [int(n)], 4, 6, {}, args.scorer):
            print(
                f"{strategy} N={n}, {row.problems} problems: {row.tokens} tokens in {row.seconds:.2f} s = "
                f"{row.tokens_per_s:.1f} tok/s",
                flush=True,
            )


if __name__ == "__main__":
    main()
