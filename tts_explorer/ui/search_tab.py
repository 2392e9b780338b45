"""The Search tab: controls, the live tree, the panels around it, re-scoring.

No model is loaded at import or build time; the first Run loads the chosen policy (shared
by every session, read-only) and says so in the status line. Runs queue one at a time;
each browser session keeps its own tree in its Session.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import gradio as gr

from ..config import AGGREGATIONS, SearchConfig
from ..data import read_problems
from ..errors import UserError, first_line
from ..events import Done, IterationDone
from ..prompts import ASSETS
from ..render import figure
from ..rescore import rescore
from ..search import new_tree, search
from ..selection import apply_selection
from ..scorers import NEEDS_POLICY
from ..strategies import STRATEGIES
from ..tree import SearchTree, TreeFormatError
from .compare import COMPARE_COLUMNS, compare
from .panels import CANDIDATE_COLUMNS, candidate_rows, compute_markdown, path_html, status_line
from .session import Session
from .settings import UI_MAX_N, UPLOAD_LIMIT_BYTES, Settings
from .tree_view import as_value, tree_view

REDRAW_INTERVAL_S = 0.3  # at most ~3 redraws a second while a search runs
SELECTION_CHOICES = [("Majority", "majority"), ("PRM-Max", "prm_max"), ("PRM-Vote", "prm_vote")]
DEFAULTS = SearchConfig(strategy="beam", n=8, beam_width=2, max_steps=6, step_tokens=64, final_tokens=96)


def example_rows() -> list[list[str]]:
    easy, _ = read_problems(ASSETS / "problems" / "easy.jsonl", limit=6)
    harder, _ = read_problems(ASSETS / "problems" / "harder.jsonl", limit=3)
    return [[p.question, p.answer] for p in easy + harder]


def _views(tree: SearchTree, state: str, iteration: int | None = None):
    """Values for (tree view, status, candidates, compute, replay slider)."""
    last = max((n.iteration for n in tree), default=0)
    slider = gr.update(maximum=max(last, 1), value=last)
    return (as_value(figure(tree)), status_line(tree, state, iteration), candidate_rows(tree),
            compute_markdown(tree), slider)


def _error(message: str):
    """Change nothing but the status line."""
    return (gr.update(), f"⚠ {message}", gr.update(), gr.update(), gr.update(), gr.update())


def _export(tree: SearchTree) -> str:
    out = Path(tempfile.mkdtemp(prefix="tts-tree-")) / "tree.json"
    out.write_text(tree.to_json(indent=1), encoding="utf-8")
    return str(out)


def run_search(session: Session, settings: Settings, question, reference, strategy, n, m, temperature,
               max_steps, scorer, aggregation, selection, model):
    """Generator behind the Run button: streams (tree, status, table, compute, slider, export)."""
    try:
        if model not in settings.models or scorer not in settings.scorers:
            raise UserError("that model or scorer is not offered by this server")
        if int(n) > UI_MAX_N:
            raise UserError(f"N is capped at {UI_MAX_N} on this page")
        config = SearchConfig(strategy=strategy, n=int(n), beam_width=int(m), max_steps=int(max_steps),
                              step_tokens=DEFAULTS.step_tokens, final_tokens=DEFAULTS.final_tokens,
                              temperature=float(temperature), aggregation=aggregation, selection=selection)
        scorer_name, scorer_options = settings.scorer(scorer)
        tree = new_tree(question, config, scorer_name, reference or None)
    except UserError as exc:
        yield _error(str(exc))
        return
    from ..policy.loading import load_policy

    session.stop_flag.clear()
    session.runs += 1
    tree.meta["run_id"] = f"run-{session.runs}-{time.time():.0f}"
    session.tree = tree
    yield (as_value(figure(tree)), status_line(tree, "Loading the model (the first run downloads and "
                                                     "converts it: about 30 s)…"),
           [], compute_markdown(None), gr.update(), gr.update(value=None))
    try:
        policy = load_policy(model)
    except UserError as exc:
        yield _error(str(exc))
        return
    tree.meta["policy"] = policy.name
    last_draw, iteration = 0.0, 0
    try:
        for event in search(tree, policy, config, scorer_name, should_stop=session.should_stop,
                            scorer_options=scorer_options):
            if isinstance(event, IterationDone):
                iteration = event.iteration + 1
            if isinstance(event, Done):
                state = "Stopped" if event.stopped else "Done"
                yield (*_views(tree, state), _export(tree))
            elif time.monotonic() - last_draw >= REDRAW_INTERVAL_S:
                last_draw = time.monotonic()
                yield (*_views(tree, "Running…", min(iteration, config.max_steps - 1)), gr.update())
    except UserError as exc:
        yield _error(str(exc))
    except Exception as exc:  # a model or scorer failure: say so in one line, keep the partial tree
        yield (*_views(tree, f"⚠ the search failed: {first_line(exc)}"), _export(tree))


def import_tree(session: Session, file_path):
    """Load an exported tree (no model needed); bad files change nothing."""
    if not file_path:
        return _error("no file")
    path = Path(file_path)
    try:
        if path.stat().st_size > UPLOAD_LIMIT_BYTES:
            raise TreeFormatError(f"the file is larger than {UPLOAD_LIMIT_BYTES // (1024 * 1024)} MB")
        tree = SearchTree.from_json(path.read_text(encoding="utf-8"))
    except (TreeFormatError, UnicodeDecodeError, OSError) as exc:
        return _error(f"cannot import this tree: {first_line(exc)}")
    tree.meta["run_id"] = f"import-{time.time():.0f}"
    session.tree = tree
    return (*_views(tree, f"Imported {path.name}"), _export(tree))


def replay(session: Session, iteration):
    if session.tree is None:
        return gr.update()
    return as_value(figure(session.tree, upto_iteration=int(iteration)))


def show_path(session: Session, evt: gr.EventData):
    node = getattr(evt, "_data", None) or {}
    node_id = node.get("node") if isinstance(node, dict) else None
    return path_html(session.tree, node_id if isinstance(node_id, int) else None)


def request_stop(session: Session):
    session.stop_flag.set()
    return "Stopping…"


def rescore_tree(session: Session, settings: Settings, scorer_entry, aggregation, selection):
    """Re-score the session's tree without generating again; compare with the original."""
    if session.tree is None or not session.tree.candidates():
        return gr.update(), "⚠ run a search or import a tree first", gr.update()
    if scorer_entry not in settings.scorers:
        return gr.update(), "⚠ that scorer is not offered by this server", gr.update()
    name, options = settings.scorer(scorer_entry)
    try:
        policy = None
        logprobs_known = all(n.mean_logprob is not None for n in session.tree if n.id)
        if name in NEEDS_POLICY and not (name == "confidence" and logprobs_known):
            from ..policy.loading import load_policy

            policy = load_policy(settings.models[0])
        after = rescore(session.tree, name, aggregation, policy, scorer_options=options)
    except UserError as exc:
        return gr.update(), f"⚠ {exc}", gr.update()
    apply_selection(after, selection)
    after.meta["run_id"] = f"{session.tree.meta.get('run_id', 'tree')}-rescored"
    rows, summary = compare(session.tree, after)
    return rows, summary, as_value(figure(after))


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
            strategy = gr.Dropdown([(s.label, s.name) for s in STRATEGIES.values()], value=DEFAULTS.strategy,
                                   label="Strategy", elem_id="strategy")
            n = gr.Slider(1, UI_MAX_N, value=DEFAULTS.n, step=1, label="Budget N (generations)")
            m = gr.Slider(1, 16, value=DEFAULTS.beam_width, step=1, label="Beam width M (beam, DVTS)")
            temperature = gr.Slider(0.0, 1.5, value=DEFAULTS.temperature, step=0.05, label="Temperature")
            max_steps = gr.Slider(1, 12, value=DEFAULTS.max_steps, step=1, label="Max steps")
            scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer (PRM)")
            aggregation = gr.Radio(list(AGGREGATIONS), value=DEFAULTS.aggregation, label="Step-score aggregation")
            selection = gr.Radio(SELECTION_CHOICES, value=DEFAULTS.selection, label="Answer selection")
            model = gr.Dropdown(list(settings.models), value=settings.models[0], label="Policy model")
            gr.Examples(examples, inputs=[question, reference], label="Examples", examples_per_page=5)
        with gr.Column(scale=3):
            status = gr.Markdown("Press Run to start.", elem_id="status")
            view = tree_view()
            replay_slider = gr.Slider(0, 1, value=0, step=1, label="Replay: show the tree after iteration",
                                      elem_id="replay")
            candidates = gr.Dataframe(headers=CANDIDATE_COLUMNS, value=[], label="Finished candidates",
                                      interactive=False, elem_id="candidates")
            compute = gr.Markdown("No run yet.", elem_id="compute")
            with gr.Row():
                export_btn = gr.DownloadButton("Export tree (JSON)", value=None, elem_id="export")
                upload = gr.File(label="Import a tree (JSON)", file_types=[".json"], elem_id="import")
            with gr.Accordion("Re-score this tree with another scorer, aggregation or selection", open=False):
                with gr.Row():
                    re_scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer")
                    re_aggregation = gr.Radio(list(AGGREGATIONS), value="min", label="Aggregation")
                    re_selection = gr.Radio(SELECTION_CHOICES, value=DEFAULTS.selection, label="Selection")
                rescore_btn = gr.Button("Re-score", elem_id="rescore")
                rescore_summary = gr.Markdown(elem_id="rescore-summary")
                rescore_table = gr.Dataframe(headers=COMPARE_COLUMNS, value=[], interactive=False,
                                             label="Finished candidates: before and after", elem_id="rescore-table")
                rescored_view = tree_view(elem_id="rescored-view")
        with gr.Column(scale=1, min_width=260):
            path_panel = gr.HTML(path_html(None, None), elem_id="path-box")

    outputs = [view, status, candidates, compute, replay_slider, export_btn]
    inputs = [question, reference, strategy, n, m, temperature, max_steps, scorer, aggregation, selection, model]
    run_btn.click(lambda s, *args: (yield from run_search(s, settings, *args)), inputs=[session, *inputs],
                  outputs=outputs, concurrency_id="search", concurrency_limit=1, api_name="run")
    stop_btn.click(request_stop, inputs=session, outputs=status, queue=False, api_name="stop")
    view.click(show_path, inputs=session, outputs=path_panel, concurrency_limit=8, api_name=False)
    replay_slider.release(replay, inputs=[session, replay_slider], outputs=view, concurrency_limit=8,
                          api_name="replay")
    upload.upload(import_tree, inputs=[session, upload], outputs=outputs, concurrency_limit=4, api_name="import_tree")
    rescore_btn.click(lambda s, *args: rescore_tree(s, settings, *args),
                      inputs=[session, re_scorer, re_aggregation, re_selection],
                      outputs=[rescore_table, rescore_summary, rescored_view], concurrency_id="search",
                      api_name="rescore")
