"""Accuracy [95% CI], coverage and FLOPs of eval results files over the problems that every
strategy asked for has reached in the first file (an eval stopped part-way leaves its last problems
without some cells; comparing on the same problems keeps the rows paired). Then each cell's
generated tokens per problem and, with --paired S, how many problems each cell gets right where
S's row of the same model and budget is wrong, and the other way round; with --paired-main, each
cell of another file against the first file's cell of the same strategy and budget (and scorer,
where the first file has that strategy with several): two settings of one strategy, say
`--aggregation min` and `last`, or two scorers, one file each.

    python bench/heldout_report.py --strategies greedy,majority,best_of_n,beam \
        assets/scaling/set-b/smollm2-three_shot-n16.jsonl \
        assets/scaling/set-b/smollm2-default-prompt-greedy.jsonl=old-prompt \
        assets/scaling/set-b/gemma3-270m-greedy.jsonl
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict

from tts_explorer.scaling.grid import read_rows
from tts_explorer.scaling.stats import format_cells


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--strategies", required=True, help="comma-separated: the first file's strategies compared")
    parser.add_argument("main", help="the results whose complete problems are compared")
    parser.add_argument("others", nargs="*", help="more results files, FILE or FILE=LABEL (a label for its model)")
    parser.add_argument("--paired", help="a strategy every other cell is compared with problem by problem")
    parser.add_argument(
        "--paired-main",
        action="store_true",
        help="compare each other file's cell with the first file's of the same strategy and budget",
    )
    args = parser.parse_args()
    wanted = args.strategies.split(",")
    rows = [dict(r, main=True) for r in read_rows(args.main) if r["strategy"] in wanted]
    cells = {(r["strategy"], r["n"], r["scorer"]) for r in rows}
    per_problem = Counter(r["id"] for r in rows)
    ids = {i for i, count in per_problem.items() if count == len(cells)}
    for spec in args.others:
        path, _, label = spec.partition("=")
        rows += [dict(r, model=label or r["model"]) for r in read_rows(path)]
    print(f"{len(ids)} problems that every cell of {args.main} reached")
    rows = [r for r in rows if r["id"] in ids]
    print(format_cells(rows))
    cells_of = defaultdict(dict)  # (model, strategy, n, scorer) -> problem -> row
    main_cells = defaultdict(dict)  # (strategy, n, scorer) -> problem -> row, the first file's
    for r in rows:
        cells_of[r["model"], r["strategy"], r["n"], r["scorer"]][r["id"]] = r
        if r.get("main"):
            main_cells[r["strategy"], r["n"], r["scorer"]][r["id"]] = r
    base = {(m, n): c for (m, s, n, _), c in cells_of.items() if s == args.paired}
    for (model, strategy, n, scorer), cell in sorted(cells_of.items(), key=lambda kv: kv[0][1:]):
        tokens = sum(r["compute"]["generated_tokens"] for r in cell.values()) / len(cell)
        line = f"{model[:21]:<22}{strategy} ({scorer}) N={n}: {tokens:,.0f} generated tokens per problem"
        other = base.get((model, n))
        if other is not None and strategy != args.paired:
            line += f"; against {args.paired}: " + _wins_losses(cell, other)
        first = main_cells.get((strategy, n, scorer)) or _only_cell(main_cells, strategy, n)
        if args.paired_main and first is not None and not next(iter(cell.values())).get("main"):
            line += f"; against {args.main}'s: " + _wins_losses(cell, first)
        print(line)


def _only_cell(main_cells: dict, strategy: str, n: int) -> dict | None:
    """The first file's cell of this strategy and budget where it has one scorer for them, else None."""
    found = [cell for (s, budget, _), cell in main_cells.items() if (s, budget) == (strategy, n)]
    return found[0] if len(found) == 1 else None


def _wins_losses(cell: dict, other: dict) -> str:
    """Problems both cells have: how many `cell` gets right where `other` is wrong, and the other way."""
    shared = cell.keys() & other.keys()
    wins = sum(bool(cell[i]["correct"]) and not other[i]["correct"] for i in shared)
    losses = sum(bool(other[i]["correct"]) and not cell[i]["correct"] for i in shared)
    return f"right where it is wrong {wins}, the other way {losses}"


if __name__ == "__main__":
    main()
