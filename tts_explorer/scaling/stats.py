"""What eval results say: accuracy with 95% confidence intervals per (model, strategy,
budget, difficulty bin), coverage beside it, compute, the compute-optimal table, and how a
small model with search compares with a larger one at equal FLOPs.

Difficulty is the policy's own Pass@1 in absolute bins (Liu et al. 2025): easy 50-100%,
medium 10-50%, hard 0-10%. Intervals are Wilson score intervals. FLOPs are 2 x parameters
x tokens processed, policy and scorer both counted (policy/compute.py).
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass

from ..difficulty import BINS, difficulty_bin  # noqa: F401 (read from here by the plots and tests)
from ..strategies import is_baseline, is_choosable

ALL = "all"
Z95 = 1.959963984540054


def wilson(successes: int, total: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (0, 1 when there is no data)."""
    if total == 0:
        return 0.0, 1.0
    p = successes / total
    denominator = 1 + z * z / total
    centre = (p + z * z / (2 * total)) / denominator
    half = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass
class Cell:
    """One (model, strategy, scorer, budget, bin) cell of a results file."""

    model: str
    strategy: str
    scorer: str
    n: int
    bin: str
    problems: int
    correct: int
    covered: int
    flops: float  # mean total FLOPs per problem
    tokens: float  # mean policy-generated plus scorer tokens per problem
    n_params: int

    @property
    def accuracy(self) -> float:
        return self.correct / self.problems if self.problems else 0.0

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.correct, self.problems)

    @property
    def coverage(self) -> float:
        return self.covered / self.problems if self.problems else 0.0

    def label(self) -> str:
        return self.strategy if self.scorer in ("", "-") else f"{self.strategy} ({self.scorer})"


def cell_key(row: dict) -> tuple:
    """(model, strategy, scorer, budget): which cell a row belongs to, whatever its bin."""
    return row["model"], row["strategy"], row.get("scorer") or "-", row["n"]


def cells(rows: list[dict]) -> list[Cell]:
    """Rows grouped into cells, each over every problem (bin "all") and per difficulty bin."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in rows:
        key = cell_key(row)
        groups[(*key, ALL)].append(row)
        if row.get("bin"):
            groups[(*key, row["bin"])].append(row)
    out = []
    for (model, strategy, scorer, n, bin_), group in groups.items():
        out.append(
            Cell(
                model,
                strategy,
                scorer,
                n,
                bin_,
                len(group),
                sum(bool(r["correct"]) for r in group),
                sum(bool(r.get("covered")) for r in group),
                sum(r["compute"].get("total_flops", 0.0) for r in group) / len(group),
                sum(r["compute"]["generated_tokens"] + r["compute"]["scorer_tokens"] for r in group) / len(group),
                int(group[0].get("n_params", 0)),
            )
        )
    return sorted(out, key=lambda c: (c.model, c.label(), c.bin, c.n))


def complete(rows: list[dict]) -> list[dict]:
    """The rows of the cells measured on every problem some cell of their model reached (an eval
    stopped part-way leaves a cell over fewer problems, which does not compare with the others)."""
    problems = defaultdict(set)
    for r in rows:
        problems[cell_key(r)].add(str(r["id"]))
    most = defaultdict(int)
    for key, ids in problems.items():
        most[key[0]] = max(most[key[0]], len(ids))
    whole = {key for key, ids in problems.items() if len(ids) == most[key[0]]}
    return [r for r in rows if cell_key(r) in whole]


def compute_optimal(rows: list[dict], model: str | None = None) -> dict:
    """For each difficulty bin and budget, the (strategy, scorer, aggregation, selection) with the
    best accuracy (ties: fewer FLOPs) among those `auto` can run, from one model's complete cells.
    A JSON-ready table."""
    model = model or (rows[0]["model"] if rows else None)
    mine = [r for r in complete(rows) if r["model"] == model and is_choosable(r["strategy"])]
    settings = {(r["strategy"], r.get("scorer") or "-"): (r.get("aggregation"), r.get("selection")) for r in mine}
    table: dict[str, dict[str, dict]] = {}
    for cell in cells(mine):
        if cell.bin == ALL and any(r.get("bin") for r in mine):
            continue
        entry = table.setdefault(cell.bin, {}).get(str(cell.n))
        better = entry is None or (cell.accuracy, -cell.flops) > (entry["accuracy"], -entry["flops"])
        if better:
            aggregation, selection = settings[(cell.strategy, cell.scorer)]
            low, high = cell.interval
            table[cell.bin][str(cell.n)] = {
                "strategy": cell.strategy,
                "scorer": cell.scorer,
                "aggregation": aggregation,
                "selection": selection,
                "accuracy": round(cell.accuracy, 4),
                "ci95": [round(low, 4), round(high, 4)],
                "problems": cell.problems,
                "flops": cell.flops,
            }
    return {"model": model, "bins": table}


def matching_budget(rows: list[dict], small: str, large: str) -> list[dict]:
    """For the larger model's greedy and majority (at each of its budgets): the smallest budget at
    which the small model's best strategy reaches that accuracy, and the FLOPs ratio."""
    by_model = defaultdict(list)
    for cell in cells(rows):
        if cell.bin == ALL:
            by_model[cell.model].append(cell)
    out = []
    for reference in by_model[large]:
        if not is_baseline(reference.strategy):
            continue
        reached = [c for c in by_model[small] if c.accuracy >= reference.accuracy]
        best = min(reached, key=lambda c: (c.n, c.flops), default=None)
        out.append(
            {
                "reference": f"{large} {reference.label()} N={reference.n}",
                "accuracy": reference.accuracy,
                "match": None if best is None else f"{best.label()} N={best.n}",
                "match_accuracy": None if best is None else best.accuracy,
                "flops_ratio": None if best is None or not reference.flops else best.flops / reference.flops,
            }
        )
    return out


def format_cells(rows: list[dict]) -> str:
    """Accuracy [95% CI], coverage (Pass@N) and mean FLOPs per cell, one line each."""
    head = (
        f"{'model':<22}{'strategy (scorer)':<32}{'N':>4} {'bin':<7}{'problems':>9}  {'accuracy [95% CI]':<22}"
        f"{'coverage':>9}{'FLOPs':>11}"
    )
    lines = [head, "-" * len(head)]
    for c in cells(rows):
        low, high = c.interval
        lines.append(
            f"{c.model[:21]:<22}{c.label()[:31]:<32}{c.n:>4} {c.bin:<7}{c.problems:>9}  "
            f"{100 * c.accuracy:5.1f}% [{100 * low:4.1f}, {100 * high:4.1f}]{'':<3}"
            f"{100 * c.coverage:8.1f}%{c.flops:>11.3g}"
        )
    lines.append(
        "accuracy: chosen answer right; coverage (Pass@N): any finished candidate right, what a perfect "
        "verifier would reach; FLOPs: 2 x parameters x tokens, policy and scorer, mean per problem"
    )
    return "\n".join(lines)
