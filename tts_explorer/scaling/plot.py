"""Scaling curves from eval results, as plotly figures and as one self-contained HTML file
(plotly.js inside: it opens offline).

Figures: accuracy against the budget N (log scale) per strategy with 95% intervals, the
larger models' greedy and majority accuracy as reference lines; accuracy against FLOPs
(policy and scorer) per difficulty bin; coverage (Pass@N), the ceiling a perfect verifier
would reach, against N. Then tables: the compute-optimal choice per bin and budget, and
where the small model with search matches each larger model. Every name from the file is
escaped once (plotly reads an HTML subset in labels).
"""

from __future__ import annotations

import html
from collections import defaultdict

import plotly

from ..render import plotly_text
from ..standalone import page, script_json
from ..strategies import is_baseline
from .stats import ALL, BINS, cells, compute_optimal, matching_budget

COLORS = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]  # Okabe-Ito


def _models(rows: list[dict]) -> list[str]:
    """Models, smallest first (by parameter count)."""
    sizes = {r["model"]: int(r.get("n_params") or 0) for r in rows}
    return sorted(sizes, key=lambda m: (sizes[m], m))


def _line(cell_list, x_of, name: str, color: str, dash: str = "solid", errors: bool = True) -> dict:
    cell_list = sorted(cell_list, key=x_of)
    trace = {
        "type": "scatter",
        "mode": "lines+markers",
        "name": plotly_text(name),
        "x": [x_of(c) for c in cell_list],
        "y": [100 * c.accuracy for c in cell_list],
        "line": {"color": color, "dash": dash},
        "marker": {"color": color},
        "hovertemplate": "%{y:.1f}%<extra>" + plotly_text(name) + "</extra>",
    }
    if errors:
        trace["error_y"] = {
            "type": "data",
            "symmetric": False,
            "array": [100 * (c.interval[1] - c.accuracy) for c in cell_list],
            "arrayminus": [100 * (c.accuracy - c.interval[0]) for c in cell_list],
        }
    return trace


def _layout(title: str, x_title: str, log_base: int = 2, **extra) -> dict:
    xaxis = {"title": {"text": x_title}, "type": "log"}
    if log_base == 2:
        xaxis["dtick"] = 0.30102999566  # one tick per doubling
    return {
        "title": {"text": title},
        "xaxis": xaxis,
        "yaxis": {"title": {"text": "accuracy (%)"}, "rangemode": "tozero"},
        "legend": {"orientation": "h", "y": -0.25},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 40},
        "height": 460,
        "plot_bgcolor": "white",
        **extra,
    }


def figures(rows: list[dict]) -> list[dict]:
    """The three figures, as plotly JSON dicts."""
    all_cells = cells(rows)
    models = _models(rows)
    small = models[0] if models else ""
    colors = defaultdict(lambda: COLORS[len(colors) % len(COLORS)])
    mine = [c for c in all_cells if c.model == small and c.bin == ALL]
    by_label = defaultdict(list)
    for cell in mine:
        by_label[cell.label()].append(cell)
    curves = [
        _line(group, lambda c: c.n, label, colors[label])
        for label, group in by_label.items()
        if len({c.n for c in group}) > 1 or len(by_label) == 1
    ]
    singles = [
        _line(group, lambda c: c.n, label, colors[label])
        for label, group in by_label.items()
        if len({c.n for c in group}) == 1 and len(by_label) > 1
    ]
    for single in singles:
        single["mode"] = "markers"

    references = []
    for model in models[1:]:
        baselines = (c for c in all_cells if c.model == model and c.bin == ALL and is_baseline(c.strategy))
        for cell in baselines:
            references.append(
                {
                    "type": "scatter",
                    "mode": "lines",
                    "x": [1, max([c.n for c in mine] + [2])],
                    "y": [100 * cell.accuracy] * 2,
                    "name": plotly_text(f"{model}: {cell.label()} N={cell.n}"),
                    "line": {"dash": "dash", "color": "#888888"},
                }
            )
    scaling = {
        "data": curves + singles + references,
        "layout": _layout(plotly_text(f"{small}: accuracy against the budget N"), "budget N (generations)"),
    }
    per_bin = []
    bins = [b for b in BINS if any(c.bin == b for c in all_cells)] or [ALL]
    for i, bin_ in enumerate(bins):
        group = defaultdict(list)
        for cell in all_cells:
            if cell.model == small and cell.bin == bin_:
                group[cell.label()].append(cell)
        for label, cell_list in group.items():
            trace = _line(cell_list, lambda c: c.flops, label, colors[label], errors=False)
            trace.update(xaxis=f"x{i + 1}", yaxis=f"y{i + 1}", showlegend=i == 0, legendgroup=plotly_text(label))
            trace["customdata"] = [c.problems for c in sorted(cell_list, key=lambda c: c.flops)]
            trace["hovertemplate"] = (
                "%{y:.1f}% of %{customdata} problems, %{x:.3g} FLOPs<extra>" + plotly_text(label) + "</extra>"
            )
            per_bin.append(trace)
    width = 1.0 / len(bins)
    flops_layout = {
        "title": {"text": plotly_text(f"{small}: accuracy against FLOPs (policy + scorer), by difficulty")},
        "legend": {"orientation": "h", "y": -0.25},
        "height": 460,
        "plot_bgcolor": "white",
        "margin": {"l": 60, "r": 20, "t": 70, "b": 40},
        "annotations": [],
    }
    for i, bin_ in enumerate(bins):
        flops_layout[f"xaxis{i + 1}"] = {
            "type": "log",
            "domain": [i * width + 0.03, (i + 1) * width - 0.03],
            "title": {"text": "FLOPs per problem"},
            "anchor": f"y{i + 1}",
        }
        flops_layout[f"yaxis{i + 1}"] = {
            "range": [0, 100],
            "anchor": f"x{i + 1}",
            "title": {"text": "accuracy (%)" if i == 0 else ""},
        }
        count = max((c.problems for c in all_cells if c.model == small and c.bin == bin_), default=0)
        flops_layout["annotations"].append(
            {
                "text": f"{bin_} ({count} problems)",
                "showarrow": False,
                "xref": "paper",
                "yref": "paper",
                "x": (i + 0.5) * width,
                "y": 1.06,
            }
        )
    flops = {"data": per_bin, "layout": flops_layout}
    coverage_traces = []
    for label, group in by_label.items():
        group = sorted(group, key=lambda c: c.n)
        coverage_traces.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plotly_text(label + ": coverage"),
                "x": [c.n for c in group],
                "y": [100 * c.coverage for c in group],
                "line": {"dash": "dot", "color": colors[label]},
            }
        )
        coverage_traces.append({**_line(group, lambda c: c.n, label + ": accuracy", colors[label], errors=False)})
    coverage = {
        "data": coverage_traces,
        "layout": _layout(
            plotly_text(f"{small}: coverage (any finished candidate right) and accuracy"), "budget N (generations)"
        ),
    }
    return [scaling, flops, coverage]


def tables_html(rows: list[dict]) -> str:
    """The compute-optimal table and the small-against-large comparison, escaped."""
    table = compute_optimal(rows)
    parts = [
        "<h2>Compute-optimal choice per difficulty and budget</h2><table><tr><th>difficulty</th><th>N</th>"
        "<th>best strategy (scorer)</th><th>accuracy [95% CI]</th><th>problems</th></tr>"
    ]
    for bin_, entries in table["bins"].items():
        for n, entry in sorted(entries.items(), key=lambda kv: int(kv[0])):
            low, high = entry["ci95"]
            parts.append(
                f"<tr><td>{html.escape(bin_)}</td><td>{html.escape(n)}</td>"
                f"<td>{html.escape(entry['strategy'])} ({html.escape(str(entry['scorer']))})</td>"
                f"<td>{100 * entry['accuracy']:.1f}% [{100 * low:.1f}, {100 * high:.1f}]</td>"
                f"<td>{entry['problems']}</td></tr>"
            )
    parts.append("</table>")
    models = _models(rows)
    for large in models[1:]:
        parts.append(
            f"<h2>{html.escape(models[0])} with search against {html.escape(large)}</h2><table><tr>"
            "<th>reference</th><th>its accuracy</th><th>smallest matching budget</th><th>FLOPs ratio</th></tr>"
        )
        for match in matching_budget(rows, models[0], large):
            ratio = "–" if match["flops_ratio"] is None else f"{match['flops_ratio']:.2f}"
            parts.append(
                f"<tr><td>{html.escape(match['reference'])}</td><td>{100 * match['accuracy']:.1f}%</td>"
                f"<td>{html.escape(match['match'] or 'not reached')}</td><td>{ratio}</td></tr>"
            )
        parts.append("</table><p>FLOPs: 2 × parameters × tokens, policy and scorer both counted.</p>")
    return "".join(parts)


def write_html(rows: list[dict], path: str, title: str = "TTS Explorer: scaling") -> None:
    """One self-contained HTML file: plotly.js inlined, the figures, the tables."""
    divs = "".join(f"<div id='fig{i}'></div>" for i in range(3))
    script = "".join(
        f"Plotly.newPlot('fig{i}', {script_json(fig['data'])}, {script_json(fig['layout'])}, {{responsive: true}});"
        for i, fig in enumerate(figures(rows))
    )
    body = (
        f"<h1>{html.escape(title)}</h1><p>{len(rows)} result rows; plotly {html.escape(plotly.__version__)}."
        f"</p>{divs}{tables_html(rows)}"
    )
    with open(path, "w", encoding="utf-8") as out:
        out.write(page(title, body, script))
