"""Which prompt template: greedy accuracy, majority@16, best-of-16 by the policy's own
confidence and coverage@16 (any of the 16 chains right) of the embedded policy, per shipped
template, on a development split (the first 40 problems of synthetic seed 13, none of it
used for training or for the held-out measurements), with 95% Wilson intervals. Each
template's rows go to their own resumable eval results file.

    python bench/prompt_choice.py [--data synthetic-s13] [--limit 40] [--out assets/scaling/prompts]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tts_explorer.cli import main as cli
from tts_explorer.data import read_problems
from tts_explorer.scaling.stats import wilson

TEMPLATES = ("zero_shot", "one_shot", "two_shot", "three_shot", "default", "eight_shot")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="synthetic-s13")
    parser.add_argument("--out", default="assets/scaling/prompts")
    parser.add_argument("--templates", default=",".join(TEMPLATES))
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--limit", type=int, default=40, help="the first problems of the split")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = []
    for template in args.templates.split(","):
        results = out / f"{template}.jsonl"
        code = cli(
            [
                "eval",
                "--data",
                args.data,
                "--limit",
                str(args.limit),
                "--strategies",
                "greedy,majority,best_of_n",
                "--budgets",
                str(args.n),
                "--scorers",
                "confidence",
                "--template",
                template,
                "--max-steps",
                "6",
                "--step-tokens",
                "64",
                "--final-tokens",
                "96",
                "--out",
                str(results),
            ]
        )
        if code:
            raise SystemExit(code)
        ids = {p.id for p in read_problems(args.data, args.limit)[0]}
        rows = [r for r in map(json.loads, results.read_text().splitlines()) if str(r["id"]) in ids]
        by = {s: [r for r in rows if r["strategy"] == s] for s in ("greedy", "majority", "best_of_n")}
        table.append(
            (
                template,
                {s: (sum(r["correct"] for r in v), len(v)) for s, v in by.items()},
                (sum(r["covered"] for r in by["majority"]), len(by["majority"])),
            )
        )
    print(f"\n{'template':<12}{'greedy':>20}{'majority@N':>20}{'best-of-N (conf.)':>20}{'coverage@N':>20}")
    for template, cells, covered in table:
        line = f"{template:<12}"
        for right, total in [*cells.values(), covered]:
            low, high = wilson(right, total)
            line += f"{100 * right / max(total, 1):>7.1f}% [{100 * low:4.1f}, {100 * high:4.1f}]"
        print(line)


if __name__ == "__main__":
    main()
