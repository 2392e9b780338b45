"""The Search tab: controls, the live tree, the panels around it, import, replay, re-scoring.

No model is loaded at import or build time; the first Run loads the chosen policy (shared
by every session, read-only) and says so in the status line. Runs queue one at a time;
each browser session keeps its own tree in its Session. The actions are the application
layer's (runs.py); this module reads the fields and shows the results.
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from ..config import PAGE_DEFAULTS, whole_number
from ..diagnose import DISAGREEMENT_COLUMNS
from ..errors import UserError, first_line
from ..render import DEFAULT_SCALE, SCALES, Colours
from ..runs import rescore_tree
from ..selection import apply_selection
from ..settings import UPLOAD_LIMIT_BYTES, Settings
from ..treefile import read_tree
from . import edit_panel
from .panels import CANDIDATE_COLUMNS, path_html
from .queue import enqueued_at, queued_runs
from .rescore_table import COMPARE_COLUMNS, compare
from .run_views import (
    AGGREGATION_CHOICES,
    BASIC_FIELDS,
    SELECTION_CHOICES,
    TUNING,
    RunViews,
    example_rows,
    page_request,
    search_controls,
)
from .session import Session
from .tree_view import as_value, tree_view

SEARCHES = ("run", "continue_from")  # the Search tab's events that run a search (its Stop cancels them)


def run_search(session: Session, settings: Settings, views: RunViews, fields: list, enqueued: float | None = None):
    """Generator behind the Run button: streams the views, then the export file."""
    try:
        request = page_request(settings, *fields)
    except UserError as exc:
        yield views.error(str(exc))
        return
    tree = request.new_tree()
    tree.meta["run_id"] = f"run-{session.runs + 1}-{time.time():.0f}"
    yield from views.stream(session, tree, request, enqueued=enqueued)


def import_tree(session: Session, views: RunViews, file_path):
    """Load an exported tree (no model needed); a bad file changes nothing."""
    session.touch()
    if session.running:
        return views.error("a search of this session is running: stop it before importing")
    if not isinstance(file_path, str) or not file_path:
        return views.error("no file")
    path = Path(file_path)
    try:
        if path.stat().st_size > UPLOAD_LIMIT_BYTES:
            raise UserError(f"the file is larger than {UPLOAD_LIMIT_BYTES // (1024 * 1024)} MB")
        tree = read_tree(path.read_text(encoding="utf-8"))
        tree.meta["run_id"] = f"import-{time.time():.0f}"
        # the answer and its correctness are read from the nodes again, not taken from the file
        apply_selection(tree, tree.meta.get("selection") or PAGE_DEFAULTS.selection)
    except UserError as exc:
        return views.error(f"cannot import this tree: {first_line(exc)}")
    except (UnicodeDecodeError, OSError) as exc:
        return views.error(f"cannot import this tree: {type(exc).__name__}")
    session.show(tree, live=False, focus=None)
    return views.show(tree, f"Imported {path.name}", session, export=True)


def set_focus(session: Session, node_id):
    """Draw only the subtree of the selected node (None, or the root: the whole tree)."""
    session.touch()
    tree = session.view
    if tree is None:
        return gr.update(), "⚠ run a search or import a tree first"
    try:
        node = whole_number(node_id, "the node", 0, 10**9) if node_id is not None else None
    except UserError:
        node = None
    node = node if node in tree.nodes else None
    session.focus = node or None
    where = f"the subtree of node {node}" if node else "the whole tree"
    return as_value(session.figure(tree)), f"Showing {where}."


def replay(session: Session, iteration):
    session.touch()
    if session.view is None:
        return gr.update()
    try:
        upto = whole_number(iteration, "the replay iteration", 0, 100_000)
    except UserError:
        return gr.update()
    return as_value(session.figure(session.view, upto_iteration=upto))


def set_colours(session: Session, scale, relative):
    """How this session's trees are coloured (scale; raw scores or ranks); redraws the current one."""
    session.colours = Colours(scale if scale in SCALES else session.colours.scale, relative is True)
    return gr.update() if session.view is None else as_value(session.figure(session.view))


def _node_id(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def show_path(session: Session, evt: gr.EventData):
    """The clicked node's path; the edit panel takes the node and its text."""
    node = getattr(evt, "_data", None) or {}
    node_id = _node_id(node.get("node") if isinstance(node, dict) else None)
    tree = session.view
    if tree is None or node_id not in tree.nodes:
        return path_html(None, None), gr.update(), gr.update()
    return path_html(tree, node_id), node_id, tree.nodes[node_id].text


def show_disagreement(session: Session, evt: gr.SelectData):
    """A row of the disagreements table clicked: that candidate's path."""
    row = getattr(evt, "row_value", None) or []
    node_id = int(row[0]) if row and str(row[0]).isdigit() and len(str(row[0])) < 9 else None
    return path_html(session.view, node_id)


def request_stop(session: Session, request: gr.Request):
    return session.request_stop(queued_runs(request, SEARCHES))


def rescore_view(
    session: Session, settings: Settings, scorer_entry, aggregation, selection, enqueued: float | None = None
):
    """Re-score the session's tree without generating again (a run of the session, under the
    operator's caps, that Stop ends); compare with the original."""
    before = session.view
    if before is None or not before.candidates():
        return gr.update(), "⚠ run a search or import a tree first", gr.update()
    if scorer_entry not in settings.scorers:
        return gr.update(), "⚠ that scorer is not offered by this server", gr.update()
    try:
        with session.run(enqueued):
            after = rescore_tree(
                before,
                settings.scorer(scorer_entry),
                aggregation,
                selection,
                settings.models,
                limits=settings.limits,
                should_stop=session.should_stop,
            )
    except UserError as exc:
        return gr.update(), f"⚠ {first_line(exc)}", gr.update()
    except Exception as exc:  # a scorer's model failing on these steps: one line
        return gr.update(), f"⚠ re-scoring failed: {first_line(exc)}", gr.update()
    after.meta["run_id"] = f"{before.meta.get('run_id', 'tree')}-rescored"
    rows, summary = compare(before, after)
    return rows, summary, as_value(session.figure(after))


def build(settings: Settings) -> None:
    """Lay out the tab inside the current Blocks and wire its events."""
    session = gr.State(Session())
    examples = example_rows()
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            question = gr.Textbox(label="Problem", lines=4, elem_id="question", value=examples[0][0])
            reference = gr.Textbox(label="Reference answer (optional)", elem_id="reference", value=examples[0][1])
            with gr.Row():
                run_btn = gr.Button("Run", variant="primary", elem_id="run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
            controls = search_controls()
            scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer (PRM)")
            aggregation = gr.Radio(AGGREGATION_CHOICES, value=PAGE_DEFAULTS.aggregation, label="Step-score aggregation")
            selection = gr.Radio(SELECTION_CHOICES, value=PAGE_DEFAULTS.selection, label="Answer selection")
            model = gr.Dropdown(list(settings.models), value=settings.models[0], label="Policy model")
            scale = gr.Radio(
                [
                    ("viridis (colour-blind safe)", "viridis"),
                    ("cividis (colour-blind safe)", "cividis"),
                    ("red-green", "red-green"),
                ],
                value=DEFAULT_SCALE,
                label="Score colours",
                elem_id="scale",
            )
            relative = gr.Checkbox(
                False,
                label="Relative colours: rank the scores within this tree (for a PRM "
                "whose scores sit close together; the hover keeps the raw score)",
                elem_id="relative-colours",
            )
            gr.Examples(examples, inputs=[question, reference], label="Examples", examples_per_page=5)
        with gr.Column(scale=3):
            status = gr.Markdown("Press Run to start.", elem_id="status")
            view = tree_view()
            replay_slider = gr.Slider(
                0, 1, value=0, step=1, label="Replay: show the tree after iteration", elem_id="replay"
            )
            candidates = gr.Dataframe(
                headers=CANDIDATE_COLUMNS,
                value=[],
                label="Finished candidates",
                interactive=False,
                elem_id="candidates",
            )
            compute = gr.Markdown("No run yet.", elem_id="compute")
            with gr.Accordion("Where the PRM and the outcome disagree (with a reference answer)", open=False):
                disagree = gr.Dataframe(
                    headers=DISAGREEMENT_COLUMNS,
                    value=[],
                    interactive=False,
                    label="Candidates ranked against their correctness (click a row for its path)",
                    elem_id="disagreements",
                )
                histogram = tree_view(elem_id="score-histogram")
            with gr.Row():
                export_btn = gr.DownloadButton("Export tree (JSON)", value=None, elem_id="export")
                upload = gr.File(label="Import a tree (JSON)", file_types=[".json"], elem_id="import")
            with gr.Accordion("Re-score this tree with another scorer, aggregation or selection", open=False):
                with gr.Row():
                    re_scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer")
                    re_aggregation = gr.Radio(AGGREGATION_CHOICES, value=PAGE_DEFAULTS.aggregation, label="Aggregation")
                    re_selection = gr.Radio(SELECTION_CHOICES, value=PAGE_DEFAULTS.selection, label="Selection")
                rescore_btn = gr.Button("Re-score", elem_id="rescore")
                rescore_summary = gr.Markdown(elem_id="rescore-summary")
                rescore_table = gr.Dataframe(
                    headers=COMPARE_COLUMNS,
                    value=[],
                    interactive=False,
                    label="Finished candidates: before and after",
                    elem_id="rescore-table",
                )
                rescored_view = tree_view(elem_id="rescored-view")
        with gr.Column(scale=1, min_width=260):
            path_panel = gr.HTML(path_html(None, None), elem_id="path-box")
            selected = gr.Number(value=None, precision=0, label="Selected node", elem_id="selected-node")
            with gr.Row():
                focus_btn = gr.Button("Focus on this node's subtree", size="sm", elem_id="focus")
                whole_btn = gr.Button("Whole tree", size="sm", elem_id="whole-tree")
            views = RunViews(view, status, candidates, compute, replay_slider, disagree, histogram, export_btn)
            named = dict(
                controls,
                question=question,
                reference=reference,
                scorer=scorer,
                aggregation=aggregation,
                selection=selection,
                model=model,
            )
            inputs = [named[name] for name in (*BASIC_FIELDS, *TUNING)]
            edit_text = edit_panel.build(settings, session, selected, inputs, views, path_panel, scorer, aggregation)

    search_slot = {"concurrency_id": "search", "concurrency_limit": settings.search_slots}

    def on_run(
        s,
        question,
        reference,
        strategy,
        n,
        m,
        temperature,
        max_steps,
        scorer,
        aggregation,
        selection,
        model,
        resample_temperature,
        frontier_temperature,
        confidence_quantile,
        warmup,
        request: gr.Request,
    ):
        fields = [question, reference, strategy, n, m, temperature, max_steps, scorer, aggregation, selection, model]
        fields += [resample_temperature, frontier_temperature, confidence_quantile, warmup]
        yield from run_search(s.touch(request), settings, views, fields, enqueued_at(request))

    def on_rescore(s, scorer, aggregation, selection, request: gr.Request):
        return rescore_view(s.touch(request), settings, scorer, aggregation, selection, enqueued_at(request))

    run_btn.click(on_run, inputs=[session, *inputs], outputs=views.all, api_name="run", **search_slot)
    stop_btn.click(request_stop, inputs=session, outputs=status, queue=False, api_name="stop")
    view.click(
        show_path, inputs=session, outputs=[path_panel, selected, edit_text], concurrency_limit=8, api_name=False
    )
    disagree.select(show_disagreement, inputs=session, outputs=path_panel, concurrency_limit=8, api_name=False)
    for control in (scale, relative):
        control.change(set_colours, inputs=[session, scale, relative], outputs=view, queue=False, api_name=False)
    focus_btn.click(
        set_focus, inputs=[session, selected], outputs=[view, status], concurrency_limit=8, api_name="focus"
    )
    whole_btn.click(
        lambda s: set_focus(s, None), inputs=session, outputs=[view, status], concurrency_limit=8, api_name=False
    )
    replay_slider.release(replay, inputs=[session, replay_slider], outputs=view, concurrency_limit=8, api_name="replay")
    upload.upload(
        lambda s, f: import_tree(s, views, f),
        inputs=[session, upload],
        outputs=views.all,
        concurrency_limit=4,
        api_name="import_tree",
    )
    rescore_btn.click(
        on_rescore,
        inputs=[session, re_scorer, re_aggregation, re_selection],
        outputs=[rescore_table, rescore_summary, rescored_view],
        api_name="rescore",
        **search_slot,
    )
