"""Reading a result off a tree: step-score aggregation, voting, the chosen answer.

Aggregation (last / min / avg / prod) folds a path's step scores into one number.
Answer selection over the final pool: majority vote, PRM-Max (best aggregated score),
PRM-Vote (sum of aggregated scores per distinct answer). Answers are grouped and checked
against the reference by answers.py, in bounded time. A missing score is handled one
way everywhere: it ranks below every score (`rank_value`) and adds nothing to a sum.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

from .answers import Comparer
from .tree import Node, SearchTree


def aggregate(scores: Sequence[float | None], how: str) -> float | None:
    """Fold the step scores of one path; None when no step has a score."""
    values = [s for s in scores if s is not None]
    if not values:
        return None
    if how == "last":
        return values[-1]
    if how == "min":
        return min(values)
    if how == "avg":
        return sum(values) / len(values)
    if how == "prod":
        return math.prod(values)
    raise ValueError(f"unknown aggregation {how!r}; valid: last, min, avg, prod")


def rank_value(score: float | None) -> float:
    """A score for ranking: a missing one ranks below every score."""
    return float("-inf") if score is None else score


def by_score(node: Node) -> float:
    """Sort key of a node by its path score (missing scores last when sorted best first)."""
    return rank_value(node.agg_score)


def tally(tree: SearchTree, comparer: Comparer | None = None) -> list[dict]:
    """One row per distinct answer in the pool: answer, node ids, votes, PRM-Vote sum, best score."""
    pool = [n for n in tree.candidates() if n.answer is not None]
    groups = (comparer or Comparer()).group([n.answer for n in pool])
    rows = []
    for group in groups:
        nodes = [pool[i] for i in group]
        best = max(nodes, key=by_score)
        rows.append({
            "answer": nodes[0].answer,
            "ids": [n.id for n in nodes],
            "votes": len(nodes),
            "vote_sum": sum(n.agg_score for n in nodes if n.agg_score is not None),
            "best": rank_value(best.agg_score),
            "best_id": best.id,
        })
    return rows


def choose(tree: SearchTree, how: str, comparer: Comparer | None = None) -> tuple[str | None, int | None]:
    """The chosen answer and the leaf whose path shows it, by majority / prm_max / prm_vote."""
    rows = tally(tree, comparer)
    if not rows:
        return None, None
    key = {"majority": lambda r: (r["votes"], r["best"]),
           "prm_max": lambda r: (r["best"], r["votes"]),
           "prm_vote": lambda r: (r["vote_sum"], r["votes"])}.get(how)
    if key is None:
        raise ValueError(f"unknown selection {how!r}; valid: majority, prm_max, prm_vote")
    best = max(rows, key=key)  # max keeps the first of equals: the earliest answer wins ties
    return best["answer"], best["best_id"]


def apply_selection(tree: SearchTree, how: str) -> tuple[str | None, int | None]:
    """Choose the answer, record it and its leaf in the tree's meta, and each candidate's
    correctness; notes about answers that could not be compared go to meta "notes"."""
    comparer = Comparer()
    answer, leaf = choose(tree, how, comparer)
    if tree.reference is not None:
        for node in tree.candidates():
            node.correct = None if node.answer is None else comparer.equivalent(node.answer, tree.reference)
    tree.meta["answer"] = answer
    tree.meta["selected_leaf"] = leaf
    tree.meta["selection"] = how
    tree.meta["correct"] = (None if tree.reference is None or answer is None
                            else tree.nodes[leaf].correct)
    if comparer.notes:
        tree.meta["notes"] = comparer.notes[:20]
    else:
        tree.meta.pop("notes", None)
    return answer, leaf
