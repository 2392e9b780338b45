"""The Scaling tab: the embedded model's measured test-time scaling (results shipped in
assets/scaling, made by the command in the README), or a visitor's own eval results file
(checked row by row, size-capped): accuracy against the budget and against FLOPs per
difficulty, coverage, the table of cells with 95% intervals, and the compute-optimal choice."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from ..assets import asset
from ..errors import UserError, first_line
from ..scaling.grid import read_grid
from ..scaling.plot import figures
from ..scaling.results import read_results
from ..scaling.stats import cells, complete, compute_optimal
from ..settings import UPLOAD_LIMIT_BYTES
from .tree_view import as_value, tree_view

# held-out set B (README, "New strategies on set B"): every strategy at N = 1, 4, 16 with the current
# defaults, the larger Gemma 3 270M's greedy and majority votes (N = 4, 16, 64) as reference lines;
# the table `auto` reads (assets/scaling/compute_optimal.json) is made from the same files by `plot --table`
SHIPPED = tuple(
    asset("scaling", "set-b", name)
    for name in (
        "smollm2-three_shot-n16.jsonl",
        "smollm2-three_shot-n4.jsonl",
        "smollm2-new-strategies-n16.jsonl",
        "smollm2-new-strategies-n4.jsonl",
        "smollm2-n64.jsonl",
        "gemma3-270m-greedy.jsonl",
        "gemma3-270m-llama-server.jsonl",
    )
)
CELL_COLUMNS = [
    "model",
    "strategy (scorer)",
    "N",
    "difficulty",
    "problems",
    "accuracy",
    "95% CI",
    "coverage",
    "FLOPs per problem",
]
OPTIMAL_COLUMNS = ["difficulty", "N", "best strategy", "scorer", "aggregation", "selection", "accuracy", "95% CI"]


def views(rows: list[dict], note: str):
    """(note, three figures, cells table, compute-optimal table) for these rows."""
    figs = [as_value(f) for f in figures(rows)]
    table = [
        [
            c.model,
            c.label(),
            c.n,
            c.bin,
            c.problems,
            f"{100 * c.accuracy:.1f}%",
            f"{100 * c.interval[0]:.1f}–{100 * c.interval[1]:.1f}%",
            f"{100 * c.coverage:.1f}%",
            f"{c.flops:.3g}",
        ]
        for c in cells(rows)
    ]
    optimal = [
        [
            bin_,
            int(n),
            e["strategy"],
            e["scorer"],
            e["aggregation"] or "",
            e["selection"] or "",
            f"{100 * e['accuracy']:.1f}%",
            f"{100 * e['ci95'][0]:.1f}–{100 * e['ci95'][1]:.1f}%",
        ]
        for bin_, entries in compute_optimal(rows)["bins"].items()
        for n, e in sorted(entries.items(), key=lambda kv: int(kv[0]))
    ]
    return (note, *figs, table, optimal)


def _load(path: Path, name: str):
    rows, skipped = read_results(str(path))
    note = f"{len(rows)} result rows from {name}" + (
        f"; skipped {len(skipped)} bad rows (first: {skipped[0]})" if skipped else ""
    )
    return views(rows, note)


def shipped():
    rows = complete(read_grid([path for path in SHIPPED if path.is_file()]))
    if not rows:
        return ("No measured results are shipped with this copy.", *[gr.update()] * 5)
    problems = len({r["id"] for r in rows})
    note = (
        f"{len(rows)} result rows on the {problems} problems of held-out set B (`synthetic-s11`), measured with "
        "the commands in the README; only cells measured on every problem"
    )
    return views(rows, note)


def upload(file_path):
    unchanged = [gr.update()] * 5
    if not isinstance(file_path, str) or not file_path:
        return ("⚠ no file", *unchanged)
    path = Path(file_path)
    try:
        if path.stat().st_size > UPLOAD_LIMIT_BYTES:
            raise UserError(f"the file is larger than {UPLOAD_LIMIT_BYTES // (1024 * 1024)} MB")
        return _load(path, path.name)
    except UserError as exc:
        return (f"⚠ {first_line(exc)}", *unchanged)
    except OSError as exc:
        return (f"⚠ cannot read this file: {type(exc).__name__}", *unchanged)


def build() -> list:
    """Lay out the tab; returns its outputs, which the page fills with the shipped results on load."""
    gr.Markdown(
        "Which strategy wins depends on the budget and the problem's difficulty (the policy's own Pass@1: "
        "easy 50–100%, medium 10–50%, hard 0–10%). Coverage is the share of problems where any finished "
        "candidate is right: what a perfect verifier would reach. Every accuracy carries its 95% Wilson "
        "interval."
    )
    with gr.Row():
        note = gr.Markdown(elem_id="scaling-note")
        own = gr.File(
            label="Your eval results (JSONL from `python -m tts_explorer eval --out`)",
            file_types=[".jsonl"],
            elem_id="scaling-upload",
        )
    figs = [tree_view(elem_id=f"scaling-fig{i}") for i in range(3)]
    table = gr.Dataframe(headers=CELL_COLUMNS, value=[], interactive=False, label="Cells", elem_id="scaling-cells")
    optimal = gr.Dataframe(
        headers=OPTIMAL_COLUMNS,
        value=[],
        interactive=False,
        label="Compute-optimal choice (what --strategy auto reads)",
        elem_id="scaling-optimal",
    )
    load_btn = gr.Button("Show the shipped results", elem_id="scaling-shipped")
    outputs = [note, *figs, table, optimal]
    own.upload(upload, inputs=own, outputs=outputs, concurrency_limit=2, api_name="scaling_load")
    load_btn.click(shipped, outputs=outputs, api_name="scaling_shipped")
    return outputs
