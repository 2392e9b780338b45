"""Accuracy [95% CI], coverage and FLOPs of eval results files over the problems that every
strategy asked for has reached in the first file (an eval stopped part-way leaves its last problems
without some cells; comparing on the same problems keeps the rows paired).

    python bench/heldout_report.py --strategies greedy,majority,best_of_n,beam \
        assets/scaling/set-b/smollm2-three_shot-n16.jsonl \
        assets/scaling/set-b/smollm2-default-prompt-greedy.jsonl=old-prompt \
        assets/scaling/set-b/gemma3-270m-greedy.jsonl
"""

from __future__ import annotations

import argparse
from collections import Counter

from tts_explorer.scaling.grid import read_rows
from tts_explorer.scaling.stats import format_cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategies", required=True, help="comma-separated: the first file's strategies compared")
    parser.add_argument("main", help="the results whose complete problems are compared")
    parser.add_argument("others", nargs="*", help="more results files, FILE or FILE=LABEL (a label for its model)")
    args = parser.parse_args()
    wanted = args.strategies.split(",")
    rows = [r for r in read_rows(args.main) if r["strategy"] in wanted]
    cells = {(r["strategy"], r["n"], r["scorer"]) for r in rows}
    per_problem = Counter(r["id"] for r in rows)
    ids = {i for i, count in per_problem.items() if count == len(cells)}
    for spec in args.others:
        path, _, label = spec.partition("=")
        rows += [dict(r, model=label or r["model"]) for r in read_rows(path)]
    print(f"{len(ids)} problems that every cell of {args.main} reached")
    print(format_cells([r for r in rows if r["id"] in ids]))


if __name__ == "__main__":
    main()
