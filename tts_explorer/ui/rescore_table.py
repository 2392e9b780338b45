"""Re-scoring a tree in the page: which finished candidates change rank, whether the answer flips."""

from __future__ import annotations

from ..answers import equivalent
from ..report import fmt_score
from ..selection import by_score
from ..tree import SearchTree
from .panels import markdown_text

COMPARE_COLUMNS = ["node", "answer", "score before", "rank before", "score after", "rank after", "change"]


def _ranks(tree: SearchTree) -> dict[int, int]:
    """node id -> rank (1 = best path score) among the finished candidates."""
    pool = sorted(tree.candidates(), key=by_score, reverse=True)
    return {node.id: rank for rank, node in enumerate(pool, start=1)}


def compare(before: SearchTree, after: SearchTree) -> tuple[list[list], str]:
    """(table rows, one-line summary) of a tree and its re-scored copy."""
    old, new = _ranks(before), _ranks(after)
    rows = []
    for node_id in sorted(new, key=new.get):
        a, b = before.nodes[node_id], after.nodes[node_id]
        shift = old.get(node_id, 0) - new[node_id]
        rows.append(
            [
                node_id,
                b.answer if b.answer is not None else "(none)",
                fmt_score(a.agg_score),
                old.get(node_id, "–"),
                fmt_score(b.agg_score),
                new[node_id],
                "=" if shift == 0 else (f"↑{shift}" if shift > 0 else f"↓{-shift}"),
            ]
        )
    moved = sum(1 for row in rows if row[-1] != "=")
    was, now = before.meta.get("answer"), after.meta.get("answer")
    flipped = not (was == now or equivalent(was, now))
    shown = [markdown_text(str(a)) if a is not None else "no answer" for a in (was, now)]
    summary = (
        f"Chosen answer: {shown[0]} → {shown[1]}"
        + (" — **the answer flips**" if flipped else " (unchanged)")
        + f"; {moved} of {len(rows)} finished candidates change rank."
    )
    return rows, summary
