"""Reading a result off a tree: step-score aggregation, voting, the chosen answer.

Two registries: AGGREGATIONS (last / min / avg / prod) fold a path's step scores into one
number; SELECTIONS choose the answer from the final pool: majority vote, PRM-Max (best
aggregated score), PRM-Vote (sum of aggregated scores per distinct answer). Each entry
has its label and help, which the page and the command line show. Answers are grouped and
checked against the reference by answers.py, in bounded time. A missing score is handled
one way everywhere: it ranks below every score (`rank_value`) and adds nothing to a sum.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .answers import Comparer
from .errors import UserError
from .tree import Node, SearchTree


@dataclass(frozen=True)
class Aggregation:
    name: str
    fold: Callable[[list[float]], float]  # step scores of a path (at least one) -> path score
    label: str
    help: str


@dataclass(frozen=True)
class Selection:
    name: str
    key: Callable[[dict], tuple]  # a tally row -> sort key; the largest wins
    label: str
    help: str


AGGREGATIONS: dict[str, Aggregation] = {
    a.name: a
    for a in (
        Aggregation("last", lambda v: v[-1], "last", "the last step's score"),
        Aggregation("min", min, "min", "the lowest step score: a path is as good as its weakest step"),
        Aggregation("avg", lambda v: sum(v) / len(v), "mean", "the mean step score"),
        Aggregation("prod", math.prod, "product", "the product of the step scores"),
    )
}
SELECTIONS: dict[str, Selection] = {
    s.name: s
    for s in (
        Selection("majority", lambda r: (r["votes"], r["best"]), "Majority", "the answer most candidates give"),
        Selection("prm_max", lambda r: (r["best"], r["votes"]), "PRM-Max", "the answer of the best path score"),
        Selection(
            "prm_vote",
            lambda r: (r["vote_sum"], r["votes"]),
            "PRM-Vote",
            "the answer with the largest sum of path scores",
        ),
        Selection(
            "confidence_vote",
            lambda r: (r["confidence_sum"], r["votes"]),
            "Confidence vote",
            "the answer with the largest sum of the policy's own path confidence (DeepConf)",
        ),
    )
}


def check_choice(name, registry: dict, what: str) -> str:
    """`name` when the registry holds it; else one line listing the valid names."""
    if not isinstance(name, str) or name not in registry:
        raise UserError(f"unknown {what} {str(name)[:40]!r}; valid: {', '.join(registry)}")
    return name


def aggregate(scores: Sequence[float | None], how: str) -> float | None:
    """Fold the step scores of one path; None when no step has a score."""
    fold = AGGREGATIONS[check_choice(how, AGGREGATIONS, "aggregation")].fold
    values = [s for s in scores if s is not None]
    return fold(values) if values else None


def rank_value(score: float | None) -> float:
    """A score for ranking: a missing one ranks below every score."""
    return float("-inf") if score is None else score


def by_score(node: Node) -> float:
    """Sort key of a node by its path score (missing scores last when sorted best first). Equal
    scores keep the order the nodes were made in; breaking such ties by the node's own step (siblings
    under `min` often share their prefix's weakest step) was measured and not adopted (README)."""
    return rank_value(node.agg_score)


def steps_confidence(steps: Sequence[Node]) -> float:
    """The policy's own confidence in a run of steps: exp of the mean of their mean token
    log-probs (0 when none is known)."""
    values = [n.mean_logprob for n in steps if n.mean_logprob is not None]
    return math.exp(min(0.0, sum(values) / len(values))) if values else 0.0


def path_confidence(tree: SearchTree, node: Node) -> float:
    """The policy's own confidence in the path to `node` (steps_confidence of its steps)."""
    return steps_confidence(tree.path(node.id))


def tally(tree: SearchTree, comparer: Comparer | None = None) -> list[dict]:
    """One row per distinct answer in the pool: answer, node ids, votes, PRM-Vote sum, best score."""
    pool = [n for n in tree.candidates() if n.answer is not None]
    groups = (comparer or Comparer()).group([n.answer for n in pool])
    rows = []
    for group in groups:
        nodes = [pool[i] for i in group]
        best = max(nodes, key=by_score)
        rows.append(
            {
                "answer": nodes[0].answer,
                "ids": [n.id for n in nodes],
                "votes": len(nodes),
                "vote_sum": sum(n.agg_score for n in nodes if n.agg_score is not None),
                "confidence_sum": sum(path_confidence(tree, n) for n in nodes),
                "best": rank_value(best.agg_score),
                "best_id": best.id,
            }
        )
    return rows


def choose(tree: SearchTree, how: str, comparer: Comparer | None = None) -> tuple[str | None, int | None]:
    """The chosen answer and the leaf whose path shows it, by majority / prm_max / prm_vote."""
    rows = tally(tree, comparer)
    if not rows:
        return None, None
    key = SELECTIONS[check_choice(how, SELECTIONS, "selection")].key
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
    tree.meta["correct"] = None if tree.reference is None or answer is None else tree.nodes[leaf].correct
    if comparer.notes:
        tree.meta["notes"] = comparer.notes[:20]
    else:
        tree.meta.pop("notes", None)
    return answer, leaf
