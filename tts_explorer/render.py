"""Pure drawing: SearchTree -> a plotly figure (as a JSON-ready dict) for plotly.js.

Tidy tree layout (igraph's Reingold-Tilford, root at the top); node colour = PRM step
score on a fixed 0..1 scale, or with relative colours its rank among the tree's step
scores (for a PRM whose scores sit in a narrow range; the hover keeps the raw score),
colour-blind safe by default (viridis; cividis, or the old red-yellow-green, on request);
pruned nodes grey; finished nodes diamonds; the chosen path
drawn thick (dark on viridis and cividis, gold on red-green); steps a visitor wrote ringed
in orange; DVTS subtrees told apart by outline colour. Scores are also in the hover, so
colour is never the only way to read them. WebGL traces keep thousands of nodes
responsive. Hover text is escaped once and truncated.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

import igraph
import plotly

from .report import fmt_score
from .tree import Node, SearchTree

# colour scale name -> (plotly colorscale, colour of the chosen path)
SCALES = {
    "viridis": ("Viridis", "#111111"),
    "cividis": ("Cividis", "#b2182b"),
    "red-green": (
        [[0.0, "#d73027"], [0.25, "#fc8d59"], [0.5, "#fee08b"], [0.75, "#91cf60"], [1.0, "#1a9850"]],
        "#f2b600",
    ),  # ColorBrewer RdYlGn, the old scale: unreadable with red-green colour blindness
}
DEFAULT_SCALE = "viridis"
SUBTREE_COLORS = ["#1f77b4", "#9467bd", "#17becf", "#e377c2", "#8c564b", "#bcbd22", "#7f7f7f", "#ff7f0e"]
EDITED = "#E69F00"  # the ring around a visitor's step (Okabe-Ito orange)
HOVER_CHARS = 160
MAX_DRAWN = 3000  # nodes in one figure
# plotly.js from the installed plotly package: the page serves it, exported files embed it (no internet)
PLOTLY_JS = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"


@dataclass(frozen=True)
class Colours:
    """How a visitor wants step scores coloured: the scale, and raw scores or ranks in the tree."""

    scale: str = DEFAULT_SCALE
    relative: bool = False

    def of(self, scores: list[float | None]) -> list[float]:
        """Colour values in [0, 1]: the scores (0.5 where none), or each score's rank among the
        scored ones (ties share their mean rank; 0.5 for a lone score or none)."""
        if not self.relative:
            return [0.5 if s is None else s for s in scores]
        scored = sorted(s for s in scores if s is not None)
        if len(scored) < 2:
            return [0.5] * len(scores)
        first: dict[float, int] = {}
        last: dict[float, int] = {}
        for i, s in enumerate(scored):
            first.setdefault(s, i)
            last[s] = i
        return [0.5 if s is None else (first[s] + last[s]) / 2 / (len(scored) - 1) for s in scores]

    @property
    def title(self) -> str:
        return "rank of the step score in this tree" if self.relative else "step score"


DEFAULT_COLOURS = Colours()


def layout_positions(tree: SearchTree, nodes: list[Node]) -> dict[int, tuple[float, float]]:
    """node id -> (x, y) with the root at (.., 0) and depth growing downwards."""
    index = {node.id: i for i, node in enumerate(nodes)}
    edges = [(index[n.parent], index[n.id]) for n in nodes if n.parent is not None and n.parent in index]
    graph = igraph.Graph(n=len(nodes), edges=edges, directed=True)
    coords = graph.layout_reingold_tilford(mode="out", root=[index[0]]).coords
    return {node.id: (coords[i][0], -float(node.depth)) for i, node in enumerate(nodes)}


def finite(value):
    """`value` with every NaN or infinite float replaced by None: JSON has neither, and the
    browser's JSON.parse refuses Python's NaN and Infinity literals."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return value


def to_json(value) -> str:
    """Compact JSON of a figure (or any value) for the browser: finite numbers only."""
    return json.dumps(finite(value), separators=(",", ":"), allow_nan=False, ensure_ascii=False)


def plotly_text(text: str) -> str:
    """Text for plotly's labels, escaped once: plotly reads a small HTML subset and decodes
    only &lt; &gt; &amp; (html.escape's &quot; would be shown as it is)."""
    return html.escape(text, quote=False)


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= HOVER_CHARS else text[: HOVER_CHARS - 1] + "…"


def hover_text(node: Node, chosen: bool = False, question: str = "") -> str:
    """Escaped, truncated hover label for one node (the root shows the problem)."""
    if node.id == 0:
        return f"<b>problem</b><br>{plotly_text(_short(question))}"
    text = _short(node.text)
    lines = [
        f"<b>node {node.id}</b> · {node.status}{' · chosen path' if chosen else ''}"
        f"{' · written by a visitor' if node.edited else ''} · step {node.depth}",
        plotly_text(text),
        f"step score {fmt_score(node.score)} · path score {fmt_score(node.agg_score)} · {node.n_tokens} tokens",
    ]
    if node.subtree is not None:
        lines.append(f"subtree {node.subtree}")
    if node.weight is not None or node.budget is not None:  # particle filtering, REBASE
        share = "" if node.weight is None else f"weight {node.weight:.3f} · "
        lines.append(f"{share}granted {node.budget} of the next step's budget")
    if node.confidence is not None:  # DeepConf
        stopped = " · stopped: below the warm-up threshold" if node.status == "pruned" else ""
        lines.append(f"running confidence {node.confidence:.3f}{stopped}")
    if node.answer is not None:
        verdict = "" if node.correct is None else (" ✓" if node.correct else " ✗")
        lines.append(f"answer: {plotly_text(node.answer)}{verdict}")
    return "<br>".join(lines)


def _size(node: Node) -> float:
    """A node's marker size: larger when it ends a path; with a particle weight, by that weight."""
    base = 13 if node.terminal else 10
    return base if node.weight is None else round(7 + 16 * math.sqrt(node.weight), 2)


def _node_trace(
    nodes: list[Node], pos, name: str, chosen: set[int] = frozenset(), question: str = "", **marker
) -> dict:
    return {
        "type": "scattergl",
        "mode": "markers",
        "name": name,
        "x": [pos[n.id][0] for n in nodes],
        "y": [pos[n.id][1] for n in nodes],
        "customdata": [n.id for n in nodes],
        "hovertext": [hover_text(n, n.id in chosen, question) for n in nodes],
        "hoverinfo": "text",
        "marker": marker,
    }


def _edge_trace(tree: SearchTree, nodes: list[Node], pos, name: str, color: str, width: float) -> dict:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for node in nodes:
        if node.parent is None:
            continue
        (x0, y0), (x1, y1) = pos[node.parent], pos[node.id]
        xs += [x0, x1, None]
        ys += [y0, y1, None]
    return {
        "type": "scattergl",
        "mode": "lines",
        "name": name,
        "x": xs,
        "y": ys,
        "hoverinfo": "skip",
        "line": {"color": color, "width": width},
        "showlegend": False,
    }


MARK_STYLES = [("x", "#000000"), ("circle-open", "#d62728"), ("star", "#1f77b4")]


def drawn_nodes(tree: SearchTree, nodes: list[Node], focus: int | None, chosen: set[int]) -> tuple[list[Node], str]:
    """The nodes to draw, at most MAX_DRAWN of them, and a note when some are left out: the
    subtree of `focus` (with its path from the root) when given; of a larger set, the
    shallowest nodes (breadth first) and the chosen path."""
    if focus is not None and focus in tree.nodes and focus != 0:
        below, stack = set(), [focus]
        while stack:
            current = stack.pop()
            below.add(current)
            stack.extend(tree.nodes[current].children)
        above = {0} | {n.id for n in tree.path(focus)}
        nodes = [n for n in nodes if n.id in below or n.id in above]
    if len(nodes) <= MAX_DRAWN:
        return nodes, ""
    order = sorted(nodes, key=lambda n: (n.depth, n.id))  # breadth first: every kept node's parent is kept
    keep = {n.id for n in order[:MAX_DRAWN]} | (chosen & {n.id for n in nodes})
    drawn = [n for n in nodes if n.id in keep]
    where = f"of the subtree of node {focus}" if focus else "of the tree"
    return drawn, (
        f"showing {len(drawn)} of {len(nodes)} nodes {where} (the shallowest and the chosen path): "
        "focus on a node to see its subtree"
    )


def figure(
    tree: SearchTree,
    upto_iteration: int | None = None,
    highlight: int | None = None,
    marks: dict[str, list[int]] | None = None,
    colours: Colours = DEFAULT_COLOURS,
    focus: int | None = None,
) -> dict:
    """The whole figure; with upto_iteration, only what existed after that iteration; with
    focus, the subtree of that node; marks: legend label -> node ids to mark (e.g. a data
    set's gold first error). At most MAX_DRAWN nodes are drawn (the layout of a larger tree
    would hold the server for a second), and the figure says so."""
    colorscale, path_color = SCALES.get(colours.scale, SCALES[DEFAULT_SCALE])
    final = upto_iteration is None or upto_iteration >= max((n.iteration for n in tree), default=0)
    chosen = tree.chosen_path() if final else set()  # replay of an earlier iteration: nothing chosen yet
    nodes = [n for n in tree if n.id == 0 or upto_iteration is None or n.iteration <= upto_iteration]
    nodes, note = drawn_nodes(tree, nodes, focus, chosen)
    pos = layout_positions(tree, nodes)

    steps = [n for n in nodes if n.id != 0]
    pruned = [n for n in steps if n.status == "pruned"]
    live = [n for n in steps if n.status != "pruned"]
    selected = [n for n in steps if n.id in chosen]
    colors = colours.of([n.score for n in live])
    outline = [
        path_color
        if n.id in chosen
        else SUBTREE_COLORS[n.subtree % len(SUBTREE_COLORS)]
        if n.subtree is not None
        else "#333"
        for n in live
    ]
    # particles resampled onto a node (or REBASE's shares): its children drawn from it in a heavier line
    resampled = [n for n in steps if n.parent in pos and (tree.nodes[n.parent].budget or 0) > 1]
    data = [
        _edge_trace(tree, steps, pos, "edges", "#c8c8c8", 1),
        _edge_trace(tree, resampled, pos, "drawn again (particles, REBASE)", "#8c8c8c", 2.5),
        _edge_trace(tree, selected, pos, "selected path", path_color, 4),
        _node_trace([tree.root], pos, "problem", question=tree.question, size=14, color="#222", symbol="square"),
        _node_trace(pruned, pos, "pruned", size=7, color="#bbbbbb", opacity=0.45),
        _node_trace(
            live,
            pos,
            "steps (colour = PRM score)",
            chosen,
            size=[_size(n) for n in live],
            symbol=["diamond" if n.terminal else "circle" for n in live],
            color=colors,
            colorscale=colorscale,
            cmin=0.0,
            cmax=1.0,
            showscale=True,
            colorbar={"title": {"text": colours.title}, "thickness": 12, "len": 0.8},
            line={"color": outline, "width": [3 if n.id in chosen else 1.5 for n in live]},
        ),
    ]
    edited = [n for n in steps if n.edited]
    if edited:
        data.append(
            _node_trace(
                edited,
                pos,
                "written by a visitor",
                chosen,
                size=20,
                symbol="circle-open",
                color=EDITED,
                line={"color": EDITED, "width": 3},
            )
        )
    for (label, ids), (symbol, color) in zip((marks or {}).items(), MARK_STYLES):
        marked = [tree.nodes[i] for i in ids if i in pos]
        data.append(
            _node_trace(marked, pos, label, size=22, symbol=symbol, color=color, line={"color": color, "width": 3})
        )
    if highlight is not None and highlight in pos:
        data.append(
            _node_trace(
                [tree.nodes[highlight]],
                pos,
                "clicked",
                size=20,
                color="rgba(0,0,0,0)",
                line={"color": "#000", "width": 3},
            )
        )
    layout = {
        "uirevision": str(tree.meta.get("run_id", "tree")),  # zoom and pan survive updates of one run
        "margin": {"l": 10, "r": 10, "t": 30, "b": 10},
        "xaxis": {"visible": False},
        "yaxis": {"visible": False},
        "hovermode": "closest",
        "dragmode": "pan",
        "showlegend": True,
        "legend": {"orientation": "h", "y": 1.06, "x": 0},
        "plot_bgcolor": "white",
        "paper_bgcolor": "white",
        "height": 560,
    }
    if note:
        layout["annotations"] = [
            {
                "text": plotly_text(note),
                "xref": "paper",
                "yref": "paper",
                "x": 0,
                "y": -0.02,
                "showarrow": False,
                "xanchor": "left",
                "font": {"size": 12, "color": "#555"},
            }
        ]
        layout["uirevision"] += f"-focus-{focus}"
    return {"data": data, "layout": layout}
