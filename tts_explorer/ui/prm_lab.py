"""The PRM lab tab: load ProcessBench-style data, score a sample's steps with a scorer, and
see the gold first-error step next to the steps the scorer flags at a chosen threshold.

Uploaded rows are checked row by row (processbench.SampleRow); a bad file, index or
threshold gets one line and changes nothing."""

from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from ..assets import asset
from ..config import real_number, whole_number
from ..diagnose import reliability, reliability_figure
from ..errors import UserError, first_line
from ..processbench import Sample, first_flagged, read_samples, roc_auc, step_labels
from ..render import figure
from ..runs import score_samples
from ..settings import UPLOAD_LIMIT_BYTES, Settings
from ..tree import SearchTree
from .tree_view import as_value, tree_view


class LabState:
    def __init__(self) -> None:
        self.samples: list[Sample] = []
        self.scores: list[float] | None = None
        self.index = 0

    def __deepcopy__(self, memo) -> LabState:
        return LabState()


def sample_tree(sample: Sample, scores: list[float] | None) -> SearchTree:
    """The sample's steps as one chain of nodes, scored when scores are given."""
    tree = SearchTree(sample.problem, sample.answer, meta={"run_id": "lab"})
    parent = 0
    for i, step in enumerate(sample.steps):
        score = None if scores is None else round(scores[i], 4)
        parent = tree.add(parent, text=step, score=score, agg_score=score).id
    return tree


def lab_view(state: LabState, threshold: float):
    """(figure, verdict html) for the current sample at this threshold."""
    sample = state.samples[state.index]
    tree = sample_tree(sample, state.scores)
    marks = {}
    if sample.label != -1:
        marks["gold first error"] = [sample.label + 1]  # node ids are step index + 1 in a chain
    verdict = f"<p>Sample {state.index}: gold label <b>{sample.label}</b> ({html.escape(sample.kind or '')})</p>"
    if state.scores is not None:
        flagged = first_flagged(state.scores, threshold)
        if flagged != -1:
            marks[f"first step below {threshold:.2f}"] = [flagged + 1]
        right = flagged == sample.label
        verdict += (
            f"<p>Scorer flags step <b>{flagged}</b> at threshold {threshold:.2f}: {'right' if right else 'wrong'}.</p>"
        )
    items = "".join(
        f"<li>{html.escape(step)} <span class='tts-meta'>"
        f"{'' if state.scores is None else f'score {state.scores[i]:.3f}'}</span></li>"
        for i, step in enumerate(sample.steps)
    )
    panel = (
        f"<div class='tts-path' id='lab-panel'><p class='tts-question'>{html.escape(sample.problem)}</p>"
        f"<ol start='0'>{items}</ol>{verdict}</div>"
    )
    return as_value(figure(tree, marks=marks)), panel


MAX_SAMPLES = 10_000


def load_data(state: LabState, file_path):
    unchanged = (gr.update(), gr.update(), gr.update())
    if not isinstance(file_path, str) or not file_path or Path(file_path).stat().st_size > UPLOAD_LIMIT_BYTES:
        return ("⚠ choose a ProcessBench JSONL file of at most 5 MB", *unchanged)
    try:
        samples, skipped = read_samples(file_path, limit=MAX_SAMPLES)
    except UserError as exc:
        return (f"⚠ {first_line(exc)}", *unchanged)
    if not samples:
        why = f" (first: {skipped[0]})" if skipped else ""
        return (f"⚠ no usable rows: each needs 'problem', a list 'steps' and a 'label'{why}", *unchanged)
    new = LabState()
    new.samples = samples
    fig, panel = lab_view(new, 0.5)  # built before the session's state changes
    state.samples, state.scores, state.index = samples, None, 0
    note = f"Loaded {len(samples)} samples" + (
        f"; skipped {len(skipped)} bad rows (first: {skipped[0]})" if skipped else ""
    )
    return note, gr.update(maximum=len(samples) - 1, value=0), fig, panel


def pick_sample(state: LabState, index, threshold):
    if not state.samples:
        return gr.update(), gr.update()
    try:
        chosen = whole_number(index, "the sample index", 0, len(state.samples) - 1)
        threshold = real_number(threshold, "the threshold", 0.0, 1.0)
    except UserError:
        return gr.update(), gr.update()
    state.index, state.scores = chosen, None
    return lab_view(state, threshold)


def redraw(state: LabState, threshold):
    try:
        threshold = real_number(threshold, "the threshold", 0.0, 1.0)
    except UserError:
        return gr.update(), gr.update()
    return lab_view(state, threshold) if state.samples else (gr.update(), gr.update())


def score_sample(state: LabState, settings: Settings, scorer_entry, threshold):
    if not state.samples:
        return "⚠ load a data file first", gr.update(), gr.update()
    if scorer_entry not in settings.scorers:
        return "⚠ that scorer is not offered by this server", gr.update(), gr.update()
    sample = state.samples[state.index]
    try:
        threshold = real_number(threshold, "the threshold", 0.0, 1.0)
        state.scores = score_samples(
            [sample], settings.scorer(scorer_entry), settings.models[0], reference=sample.answer, limits=settings.limits
        )[0]
    except UserError as exc:
        return f"⚠ {first_line(exc)}", gr.update(), gr.update()
    except Exception as exc:  # a scorer's model failing on these steps: one line
        return f"⚠ scoring failed: {first_line(exc)}", gr.update(), gr.update()
    fig, panel = lab_view(state, threshold)
    return f"Scored sample {state.index} with {scorer_entry}", fig, panel


RELIABILITY_SAMPLES = 100  # samples of the file scored for the reliability diagram (bounded work)


def file_reliability(state: LabState, settings: Settings, scorer_entry):
    """The chosen scorer's reliability diagram over the loaded file's first samples."""
    if not state.samples:
        return "⚠ load a data file first", gr.update()
    if scorer_entry not in settings.scorers:
        return "⚠ that scorer is not offered by this server", gr.update()
    samples = state.samples[:RELIABILITY_SAMPLES]
    try:
        scores = score_samples(samples, settings.scorer(scorer_entry), settings.models[0], limits=settings.limits)
    except UserError as exc:
        return f"⚠ {first_line(exc)}", gr.update()
    except Exception as exc:  # a scorer's model failing on these steps: one line
        return f"⚠ scoring failed: {first_line(exc)}", gr.update()
    flat = [v for row in scores for v in row]
    labels = [y for sample in samples for y in step_labels(sample)]
    table = reliability(flat, labels)
    auc = roc_auc(flat, [y > 0.5 for y in labels])
    ece = "n/a" if table["ece"] is None else f"{table['ece']:.3f}"
    note = f"{scorer_entry} on the first {len(samples)} samples ({table['steps']} steps): ECE {ece}, step ROC-AUC " + (
        "n/a" if auc is None else f"{auc:.3f}"
    )
    return note, as_value(reliability_figure(table, f"{scorer_entry}, {len(samples)} samples"))


def example_file() -> str:
    """A small built-in data file (from GSM8K-style gold steps in assets) to try the lab on."""
    return str(asset("processbench_sample.jsonl"))


def build(settings: Settings) -> None:
    state = gr.State(LabState())
    gr.Markdown(
        "Load ProcessBench-style data (`problem`, `steps`, `label` = index of the first wrong step or -1; "
        "`python -m tts_explorer prm-data` builds it from GSM8K), score a sample's steps, and compare the "
        "step the scorer flags with the gold first error."
    )
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            data = gr.File(label="ProcessBench JSONL", file_types=[".jsonl", ".json"], elem_id="lab-file")
            gr.Examples([[example_file()]], inputs=[data], label="Example data")
            index = gr.Number(value=0, precision=0, label="Sample", elem_id="lab-index")
            scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer")
            threshold = gr.Slider(
                0.0, 1.0, value=0.5, step=0.01, label="Threshold (a step below it is flagged)", elem_id="lab-threshold"
            )
            score_btn = gr.Button("Score this sample", variant="primary", elem_id="lab-score")
            calibration_btn = gr.Button(
                f"Reliability over the file (first {RELIABILITY_SAMPLES} samples)", elem_id="lab-reliability"
            )
        with gr.Column(scale=3):
            status = gr.Markdown("No data loaded.", elem_id="lab-status")
            view = tree_view(elem_id="lab-view")
            reliability_view = tree_view(elem_id="lab-reliability-view")
        with gr.Column(scale=1, min_width=260):
            panel = gr.HTML("", elem_id="lab-box")
    data.change(load_data, inputs=[state, data], outputs=[status, index, view, panel], api_name="lab_load")
    index.submit(pick_sample, inputs=[state, index, threshold], outputs=[view, panel], api_name=False)
    threshold.release(redraw, inputs=[state, threshold], outputs=[view, panel], api_name=False)
    calibration_btn.click(
        lambda s, *args: file_reliability(s, settings, *args),
        inputs=[state, scorer],
        outputs=[status, reliability_view],
        concurrency_id="search",
        concurrency_limit=settings.search_slots,
        api_name="lab_reliability",
    )
    score_btn.click(
        lambda s, *args: score_sample(s, settings, *args),
        inputs=[state, scorer, threshold],
        outputs=[status, view, panel],
        concurrency_id="search",
        concurrency_limit=settings.search_slots,
        api_name="lab_score",
    )
