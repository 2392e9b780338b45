"""Where a PRM and the outcome disagree: in one tree, finished candidates whose rank by path
score contradicts their correctness (a wrong one above right ones, a right one below wrong
ones) and the spread of step scores by depth, as a figure; over labelled steps, how well the
scores read as probabilities (a reliability diagram and the expected calibration error)."""

from __future__ import annotations

import bisect
import math

from .render import plotly_text
from .report import fmt_score
from .selection import by_score
from .tree import SearchTree

DISAGREEMENT_COLUMNS = ["node", "answer", "path score", "rank", "correct", "disagreement"]


def disagreements(tree: SearchTree) -> list[list]:
    """Rows for the candidates the PRM ranks against the outcome, the strongest disagreement first
    (needs a reference answer; none otherwise). Counted by binary search over sorted scores:
    O(n log n) in the candidates, never pairwise."""
    if tree.reference is None:
        return []
    ranked = sorted(tree.candidates(), key=by_score, reverse=True)
    wrong_scores = sorted(by_score(n) for n in ranked if n.correct is False)
    right_scores = sorted(by_score(n) for n in ranked if n.correct)
    rows = []
    for rank, node in enumerate(ranked, start=1):
        if node.correct is None:
            continue
        score = by_score(node)
        if node.correct:
            above = len(wrong_scores) - bisect.bisect_right(wrong_scores, score)  # wrong ones scored higher
            if above:
                rows.append(
                    (
                        above,
                        [
                            node.id,
                            node.answer,
                            fmt_score(node.agg_score),
                            rank,
                            "yes",
                            f"low score, right: {above} wrong candidate(s) scored higher",
                        ],
                    )
                )
        else:
            below = bisect.bisect_left(right_scores, score)  # right ones scored lower
            if below:
                answer = node.answer if node.answer is not None else "(none)"
                rows.append(
                    (
                        below,
                        [
                            node.id,
                            answer,
                            fmt_score(node.agg_score),
                            rank,
                            "no",
                            f"high score, wrong: above {below} right candidate(s)",
                        ],
                    )
                )
    return [row for _, row in sorted(rows, key=lambda r: -r[0])]


def score_counts(scores, bins: int = 10) -> list[int]:
    """How many scores fall in each of `bins` equal bins of [0, 1] (1.0 in the last; a score
    that is not a finite number is not counted)."""
    counts = [0] * bins
    for score in scores:
        if math.isfinite(score):
            counts[max(0, min(int(score * bins), bins - 1))] += 1
    return counts


def reliability(scores: list[float], labels: list[float], bins: int = 10) -> dict:
    """Calibration of scores against 0/1 labels: per bin of [0, 1] (as score_counts bins), the
    count, the mean score and the share of positives; and the expected calibration error (the
    count-weighted mean gap between the two)."""
    sums, hits = [0.0] * bins, [0.0] * bins
    counts = [0] * bins
    for score, label in zip(scores, labels):
        b = min(max(int(score * bins), 0), bins - 1)
        counts[b] += 1
        sums[b] += score
        hits[b] += float(label > 0.5)
    rows = [
        {"count": c, "score": round(sums[b] / c, 4) if c else None, "positives": round(hits[b] / c, 4) if c else None}
        for b, c in enumerate(counts)
    ]
    total = sum(counts)
    ece = sum(abs(sums[b] - hits[b]) for b in range(bins)) / total if total else None
    return {"bins": rows, "ece": None if ece is None else round(ece, 4), "steps": total}


def reliability_figure(table: dict, title: str) -> dict:
    """A plotly figure of a reliability table: share of right steps against mean score per bin,
    the diagonal, and the bins' step counts on a second axis."""
    bins = len(table["bins"])
    full = [r for r in table["bins"] if r["count"]]
    centres = [(i + 0.5) / bins for i in range(bins)]
    data = [
        {
            "type": "bar",
            "x": centres,
            "y": [r["count"] for r in table["bins"]],
            "name": "steps",
            "yaxis": "y2",
            "marker": {"color": "rgba(120,120,120,0.25)"},
            "hovertemplate": "%{y} steps<extra></extra>",
        },
        {
            "type": "scatter",
            "mode": "lines",
            "x": [0, 1],
            "y": [0, 1],
            "name": "calibrated",
            "line": {"dash": "dot", "color": "#888"},
            "hoverinfo": "skip",
        },
        {
            "type": "scatter",
            "mode": "lines+markers",
            "x": [r["score"] for r in full],
            "y": [r["positives"] for r in full],
            "name": "this scorer",
            "hovertemplate": "mean score %{x:.2f}: %{y:.0%} right<extra></extra>",
        },
    ]
    ece = "n/a" if table["ece"] is None else f"{table['ece']:.3f}"
    return {
        "data": data,
        "layout": {
            "height": 320,
            "margin": {"l": 50, "r": 50, "t": 40, "b": 40},
            "plot_bgcolor": "white",
            "title": {"text": plotly_text(f"{title}: ECE {ece} over {table['steps']} steps")},
            "xaxis": {"title": {"text": "step score"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "share of right steps"}, "range": [0, 1]},
            "yaxis2": {"title": {"text": "steps"}, "overlaying": "y", "side": "right", "showgrid": False},
            "legend": {"orientation": "h", "y": -0.2},
        },
    }


def score_histogram(tree: SearchTree, bins: int = 10) -> dict:
    """Counts of step scores in `bins` equal bins of [0, 1], one bar trace per depth."""
    scores_by_depth: dict[int, list[float]] = {}
    for node in tree:
        if node.id and node.score is not None:
            scores_by_depth.setdefault(node.depth, []).append(node.score)
    centres = [(i + 0.5) / bins for i in range(bins)]
    data = [
        {
            "type": "bar",
            "name": plotly_text(f"step {depth}"),
            "x": centres,
            "y": score_counts(scores, bins),
            "hovertemplate": "%{y} steps scored %{x:.2f} ± 0.05<extra>step " + str(depth) + "</extra>",
        }
        for depth, scores in sorted(scores_by_depth.items())
    ]
    return {
        "data": data,
        "layout": {
            "barmode": "stack",
            "height": 300,
            "margin": {"l": 50, "r": 10, "t": 30, "b": 40},
            "title": {"text": "step scores in this tree, by depth"},
            "plot_bgcolor": "white",
            "xaxis": {"title": {"text": "step score"}, "range": [0, 1]},
            "yaxis": {"title": {"text": "steps"}},
            "uirevision": str(tree.meta.get("run_id", "tree")),
        },
    }
