"""The `auto` strategy: estimate the problem's difficulty with a few samples that count toward
the budget, then run the strategy a compute-optimal table names for that difficulty and
budget, with the rest of the budget.

The estimate is the policy's self-consistency on a quarter of the budget: the share of
pairs of sampled chains that reach the same answer (a chain without an answer agrees with
none), whose square root estimates Pass@1 when wrong answers scatter (two chains agree with
probability about p^2); binned as the paper bins the true one (easy 50-100%, medium
10-50%, hard 0-10%). Four chains that all differ read as hard, two of four agreeing as
medium, three as easy. (The share agreeing with the most common answer, the simpler proxy,
cannot go below 1/k once any chain answers, so with four samples it never reads hard.)
With a single probe chain the estimate is 1 when it answers, else 0.

The table (`plot --table` writes one from eval results) gives per bin and budget the
strategy, aggregation and selection with the best measured accuracy; without one, or for a
bin it lacks, the paper's rule for policies under 7B applies: beam search. Where every bin
the table measured on at least MIN_BIN_PROBLEMS problems names the same choice at the
budget, the difficulty cannot change it: no samples are spent on the estimate, and that
choice runs with the whole budget. What was chosen and why is recorded in the tree (meta
"auto").
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

from ..answers import Comparer
from ..assets import asset
from ..difficulty import difficulty_bin
from ..errors import UserError
from .registry import STRATEGIES, get_strategy
from .sampling import independent_chains

DEFAULT_TABLE = asset("scaling", "compute_optimal.json")
FALLBACK = {"strategy": "beam", "aggregation": None, "selection": None}
MIN_BIN_PROBLEMS = 10  # a bin measured on fewer problems does not decide that the difficulty is moot


def load_table(path: str | Path | None = None) -> dict:
    path = Path(path) if path else DEFAULT_TABLE
    if not path.is_file():
        return {"bins": {}, "source": None}
    try:
        table = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(table.get("bins"), dict):
            raise ValueError("no bins")
    except (OSError, ValueError, AttributeError) as exc:
        raise UserError(f"cannot read the compute-optimal table {str(path)!r}: {type(exc).__name__}") from None
    return {**table, "source": str(path)}


def choose(table: dict, bin_: str, budget: int) -> tuple[dict, int | None]:
    """The table's entry for a bin at the largest budget not above `budget` (else the smallest one),
    and that budget; the fallback rule when the table has nothing for the bin."""
    entries = table.get("bins", {}).get(bin_) or {}
    budgets = sorted(int(b) for b in entries)
    if not budgets:
        return FALLBACK, None
    fitting = [b for b in budgets if b <= budget] or budgets[:1]
    return entries[str(fitting[-1])], fitting[-1]


def estimate_pass1(answers: list[str | None], k: int) -> tuple[float, int]:
    """(estimated Pass@1, the largest number of the k samples that agree) from the samples' answers."""
    groups = Comparer().group([a for a in answers if a is not None])
    agreeing = max((len(g) for g in groups), default=0)
    pairs = sum(len(g) * (len(g) - 1) // 2 for g in groups)
    return (math.sqrt(pairs / (k * (k - 1) // 2)) if k > 1 else float(agreeing)), agreeing


def settled(table: dict, budget: int) -> tuple[dict, int] | None:
    """The table's entry and its budget where every bin measured on at least MIN_BIN_PROBLEMS
    problems names the same strategy, aggregation and selection at this budget; else None."""
    chosen = [choose(table, bin_, budget) for bin_ in table.get("bins", {})]
    measured = [(entry, at) for entry, at in chosen if at is not None and _problems(entry) >= MIN_BIN_PROBLEMS]
    choices = {(e.get("strategy"), e.get("aggregation"), e.get("selection")) for e, _ in measured}
    return measured[0] if len(choices) == 1 else None


def _problems(entry) -> float:
    value = entry.get("problems") if isinstance(entry, dict) else None
    return value if isinstance(value, (int, float)) else 0


def auto(ctx):
    cfg = ctx.config
    table = load_table(ctx.auto_table)
    same = settled(table, cfg.n)
    if same is not None:
        (entry, table_budget), k, estimate, bin_ = same, 0, None, None
        why = (
            f"at N={table_budget} {entry['strategy']} was best in the table for every difficulty measured on "
            f"at least {MIN_BIN_PROBLEMS} problems: no samples spent on estimating the difficulty"
        )
    else:
        k = max(1, cfg.n // 4)
        probe = dataclasses.replace(ctx, config=dataclasses.replace(cfg, n=k, strategy="best_of_n"))
        yield from independent_chains(probe)
        estimate, agreeing = estimate_pass1([n.answer for n in ctx.candidates()][:k], k)
        bin_ = difficulty_bin(estimate)
        entry, table_budget = choose(table, bin_, cfg.n)
        why = f"estimated Pass@1 {estimate:.2f} (at most {agreeing} of {k} samples agree): {bin_}; " + (
            f"at N={table_budget} {entry['strategy']} was best in the table "
            f"({100 * entry.get('accuracy', 0):.0f}% measured)"
            if table_budget
            else "no table entry for this difficulty: beam search, the rule for policies under 7B"
        )
    named = entry["strategy"] if entry["strategy"] in STRATEGIES else FALLBACK["strategy"]
    strategy = get_strategy(named if STRATEGIES[named].choosable else FALLBACK["strategy"])
    remaining = cfg.n - k
    width = min(cfg.beam_width, remaining) if remaining else 1
    if strategy.width_divides:
        remaining -= remaining % width
    reason = f"{why}; it runs with {'the remaining' if k else 'the whole'} budget N={remaining}"
    ctx.tree.meta["auto"] = {
        "estimated_pass1": None if estimate is None else round(estimate, 3),
        "bin": bin_,
        "probe_samples": k,
        "chosen": strategy.name,
        "n": remaining,
        "table_budget": table_budget,
        "reason": reason,
    }
    if remaining < 1:
        return
    sub = dataclasses.replace(
        cfg,
        strategy=strategy.name,
        n=remaining,
        beam_width=width,
        aggregation=entry.get("aggregation") or cfg.aggregation,
    )
    sub = strategy.adjust(sub)
    ctx.selection = entry.get("selection") or sub.selection
    yield from strategy.run(dataclasses.replace(ctx, config=sub))
