"""Reading a result off a tree: step-score aggregation, answer extraction, equivalence, voting.

Aggregation (last / min / avg / prod) folds a path's step scores into one number.
Answer selection over the final pool: majority vote, PRM-Max (best aggregated score),
PRM-Vote (sum of aggregated scores per distinct answer). Equivalence of answers is
decided by the math-verify library.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import threading
from collections.abc import Sequence

from math_verify import parse, verify

from .tree import SearchTree

logging.getLogger("math_verify").setLevel(logging.ERROR)

_ANSWER_IS = re.compile(
    r"(?:the\s+(?:final\s+)?answer\s+is|answer\s*[:=])\s*[:\s]*\$?\s*([^\n]*)", re.IGNORECASE
)
_LEADING_NUMBER = re.compile(r"[$\s]*(-?\d[\d,]*(?:\.\d+)?(?:/\d+)?)(?![\w+*/^-])")


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


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def extract_answer(text: str) -> str | None:
    """The final answer a solution states: the last \\boxed{...}, else 'The answer is ...'."""
    boxed = _last_boxed(text)
    if boxed is not None:
        return boxed.strip() or None
    matches = _ANSWER_IS.findall(text)
    if not matches:
        return None
    tail = matches[-1].strip().split(". ")[0]
    if "=" in tail:  # "The answer is 3 + 4 = 7 apples": the result
        tail = tail.rsplit("=", 1)[1].strip()
    number = _LEADING_NUMBER.match(tail)
    if number:
        return number.group(1).replace(",", "")
    tail = tail.rstrip(". ").strip("$ ").strip()
    # a short expression ("x+1", "\\frac{3}{4}"), not a sentence ("to add them up")
    if 0 < len(tail) <= 30 and re.search(r"[\d\\]", tail) and len(tail.split()) <= 3:
        return tail
    return None


def gold_answer(answer_field: str) -> str:
    """The reference answer of a GSM8K row ('... #### 42') or a MATH row ('42')."""
    if "####" in answer_field:
        return answer_field.rsplit("####", 1)[1].strip().replace(",", "")
    return answer_field.strip()


def _timeout() -> int | None:
    # math-verify's timeouts use signals, which only work in the main thread
    return 5 if threading.current_thread() is threading.main_thread() else None


@functools.lru_cache(maxsize=4096)
def _parsed(text: str):
    wrapped = text if "$" in text or "\\boxed" in text else f"${text}$"
    return tuple(parse(wrapped, parsing_timeout=_timeout()) or parse(text, parsing_timeout=_timeout()))


def equivalent(a: str | None, b: str | None) -> bool:
    """True when two answers are mathematically equal (math-verify), or equal as text."""
    if a is None or b is None:
        return False
    if a.strip() == b.strip():
        return True
    pa, pb = _parsed(a), _parsed(b)
    if not pa or not pb:
        return False
    return bool(verify(list(pa), list(pb), timeout_seconds=_timeout()))


def group_answers(answers: Sequence[str]) -> list[list[int]]:
    """Indices of `answers` grouped by equivalence, groups in order of first appearance."""
    groups: list[list[int]] = []
    for i, answer in enumerate(answers):
        for group in groups:
            if equivalent(answers[group[0]], answer):
                group.append(i)
                break
        else:
            groups.append([i])
    return groups


def tally(tree: SearchTree) -> list[dict]:
    """One row per distinct answer in the pool: answer, node ids, votes, PRM-Vote sum, best score."""
    pool = [n for n in tree.candidates() if n.answer is not None]
    groups = group_answers([n.answer for n in pool])
    rows = []
    for group in groups:
        nodes = [pool[i] for i in group]
        scores = [n.agg_score if n.agg_score is not None else 0.0 for n in nodes]
        rows.append({
            "answer": nodes[0].answer,
            "ids": [n.id for n in nodes],
            "votes": len(nodes),
            "vote_sum": sum(scores),
            "best": max(scores),
            "best_id": nodes[scores.index(max(scores))].id,
        })
    return rows


def choose(tree: SearchTree, how: str) -> tuple[str | None, int | None]:
    """The chosen answer and the leaf whose path shows it, by majority / prm_max / prm_vote."""
    rows = tally(tree)
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
    """Choose the answer, mark the chosen path 'selected', record correctness in the tree."""
    for node in tree.with_status("selected"):  # undo an earlier choice; pool nodes are leaves
        node.status = "active" if node.children else "finished"
    answer, leaf = choose(tree, how)
    if leaf is not None:
        for node in tree.path(leaf):
            node.status = "selected"
    if tree.reference is not None:
        for node in tree.candidates():
            node.correct = None if node.answer is None else equivalent(node.answer, tree.reference)
    tree.meta["answer"] = answer
    tree.meta["selected_leaf"] = leaf
    tree.meta["selection"] = how
    tree.meta["correct"] = None if tree.reference is None else equivalent(answer, tree.reference)
    return answer, leaf
