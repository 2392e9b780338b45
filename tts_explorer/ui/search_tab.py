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

from ..answers import MAX_ANSWER_CHARS
from ..config import (
    AGGREGATIONS,
    PAGE_DEFAULTS,
    SELECTIONS,
    SearchConfig,
    check_text,
    real_number,
    whole_number,
)
from ..data import read_problems
from ..errors import UserError, first_line
from ..events import Done, IterationDone
from ..assets import data_path
from ..diagnose import DISAGREEMENT_COLUMNS, disagreements, score_histogram
from ..render import DEFAULT_SCALE, SCALES, figure
from ..rescore import rescore
from ..scorers import SCORERS
from ..search import new_tree, search
from ..selection import apply_selection
from ..strategies import STRATEGIES
from ..tree import SearchTree
from .compare import COMPARE_COLUMNS, compare
from .panels import (
    CANDIDATE_COLUMNS,
    candidate_rows,
    compute_markdown,
    path_html,
    status_line,
)
from .session import Session
from .settings import (
    UI_MAX_BEAM_WIDTH,
    UI_MAX_N,
    UI_MAX_STEPS,
    UPLOAD_LIMIT_BYTES,
    Settings,
)
from .tree_view import as_value, tree_view

REDRAW_INTERVAL_S = 0.3  # at most ~3 redraws a second while a search runs
SEARCHES = ("run", "continue_from")  # the Search tab's events that run a search (its Stop cancels them)
SELECTION_CHOICES = [("Majority", "majority"), ("PRM-Max", "prm_max"), ("PRM-Vote", "prm_vote")]


def example_rows() -> list[list[str]]:
    easy, _ = read_problems(data_path("easy"), limit=6)
    harder, _ = read_problems(data_path("harder"), limit=3)
    return [[p.question, p.answer] for p in easy + harder]


def views(tree: SearchTree, state: str, scale: str, iteration: int | None = None):
    """Values for (tree view, status, candidates, compute, replay slider, disagreements, score histogram)."""
    last = max((n.iteration for n in tree), default=0)
    slider = gr.update(maximum=max(last, 1), value=last)
    return (as_value(figure(tree, scale=scale)), status_line(tree, state, iteration), candidate_rows(tree),
            compute_markdown(tree), slider, disagreements(tree), as_value(score_histogram(tree)))


def error(message: str):
    """Change nothing but the status line (of the outputs of a run: views and the export)."""
    return (gr.update(), f"⚠ {message}", *[gr.update()] * 6)


def _export(tree: SearchTree) -> str:
    out = Path(tempfile.mkdtemp(prefix="tts-tree-")) / "tree.json"
    out.write_text(tree.to_json(indent=1), encoding="utf-8")
    return str(out)


def _choice(value, name: str, valid) -> str:
    if not isinstance(value, str) or value not in valid:
        raise UserError(f"unknown {name}; valid: {', '.join(valid)}")
    return value


def run_request(settings: Settings, question, reference, strategy, n, m, temperature, max_steps, scorer,
                aggregation, selection, model) -> tuple[SearchConfig, str, dict, SearchTree]:
    """The checked settings of a Run from the page: (config, scorer name, scorer options, empty tree)."""
    if model not in settings.models or scorer not in settings.scorers:
        raise UserError("that model or scorer is not offered by this server")
    config = SearchConfig(strategy=_choice(strategy, "strategy", [s for s in STRATEGIES if STRATEGIES[s].on_page]),
                          n=whole_number(n, "N", 1, UI_MAX_N),
                          beam_width=whole_number(m, "the beam width M", 1, UI_MAX_BEAM_WIDTH),
                          max_steps=whole_number(max_steps, "max steps", 1, UI_MAX_STEPS),
                          step_tokens=PAGE_DEFAULTS.step_tokens, final_tokens=PAGE_DEFAULTS.final_tokens,
                          temperature=real_number(temperature, "the temperature", 0.0, 2.0),
                          aggregation=_choice(aggregation, "aggregation", AGGREGATIONS),
                          selection=_choice(selection, "selection", SELECTIONS), seed=PAGE_DEFAULTS.seed)
    scorer_name, scorer_options = settings.scorer(scorer)
    reference = check_text(reference, "the reference answer", MAX_ANSWER_CHARS, required=False)
    return config, scorer_name, scorer_options, new_tree(question, config, scorer_name, reference or None)


def run_search(session: Session, settings: Settings, *fields):
    """Generator behind the Run button: streams the views, then the export file."""
    try:
        config, scorer_name, scorer_options, tree = run_request(settings, *fields)
    except UserError as exc:
        yield error(str(exc))
        return
    tree.meta["run_id"] = f"run-{session.runs + 1}-{time.time():.0f}"
    yield from stream(session, settings, tree, config, scorer_name, scorer_options, fields[-1])


def stream(session: Session, settings: Settings, tree: SearchTree, config: SearchConfig, scorer_name: str,
           scorer_options: dict, model: str, start: int = 0):
    """Run a search on `tree` (from node `start`) as this session's run, streaming its views."""
    refused = session.start_run()
    if refused:
        yield error(refused)
        return
    try:
        yield from _stream(session, settings, tree, config, scorer_name, scorer_options, model, start)
    finally:
        session.end_run()


def _stream(session, settings, tree, config, scorer_name, scorer_options, model, start):
    from ..policy.loading import load_policy

    session.show(tree, live=True)
    yield (*views(tree, "Loading the model (the first run downloads and converts it: about 30 s)…", session.scale),
           gr.update(value=None))
    try:
        policy = load_policy(model)
    except UserError as exc:
        yield error(str(exc))
        return
    tree.meta["policy"] = policy.name
    last_draw, iteration = 0.0, 0
    try:
        for event in search(tree, policy, config, scorer_name, should_stop=session.should_stop,
                            scorer_options=scorer_options, limits=settings.limits, start=start):
            if isinstance(event, IterationDone):
                iteration = event.iteration + 1
            if isinstance(event, Done):
                session.show(tree, live=False)
                state = f"Stopped {event.stopped}" if event.stopped else "Done"
                yield (*views(tree, state, session.scale), _export(tree))
            elif time.monotonic() - last_draw >= REDRAW_INTERVAL_S:
                last_draw = time.monotonic()
                session.show(tree, live=True)
                yield (*views(tree, "Running…", session.scale, min(iteration, config.max_steps - 1)), gr.update())
    except UserError as exc:
        session.show(tree, live=False)
        yield (*views(tree, f"⚠ {first_line(exc)}", session.scale), _export(tree))
    except Exception as exc:  # a model or scorer failure: say so in one line, keep the partial tree
        session.show(tree, live=False)
        yield (*views(tree, f"⚠ the search failed: {first_line(exc)}", session.scale), _export(tree))


def import_tree(session: Session, file_path):
    """Load an exported tree (no model needed); a bad file changes nothing."""
    if session.running:
        return error("a search of this session is running: stop it before importing")
    if not isinstance(file_path, str) or not file_path:
        return error("no file")
    path = Path(file_path)
    try:
        if path.stat().st_size > UPLOAD_LIMIT_BYTES:
            raise UserError(f"the file is larger than {UPLOAD_LIMIT_BYTES // (1024 * 1024)} MB")
        tree = SearchTree.from_json(path.read_text(encoding="utf-8"))
        tree.meta["run_id"] = f"import-{time.time():.0f}"
        # the answer and its correctness are read from the nodes again, not taken from the file
        apply_selection(tree, tree.meta.get("selection") or PAGE_DEFAULTS.selection)
        shown = views(tree, f"Imported {path.name}", session.scale)  # built before the session changes
        export = _export(tree)
    except UserError as exc:
        return error(f"cannot import this tree: {first_line(exc)}")
    except (UnicodeDecodeError, OSError) as exc:
        return error(f"cannot import this tree: {type(exc).__name__}")
    session.show(tree, live=False)
    return (*shown, export)


def replay(session: Session, iteration):
    if session.view is None:
        return gr.update()
    try:
        upto = whole_number(iteration, "the replay iteration", 0, 100_000)
    except UserError:
        return gr.update()
    return as_value(figure(session.view, upto_iteration=upto, scale=session.scale))


def set_scale(session: Session, scale):
    """The colour scale of this session's trees; redraws the current one."""
    if scale in SCALES:
        session.scale = scale
    return gr.update() if session.view is None else as_value(figure(session.view, scale=session.scale))


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


def queued_runs(request: gr.Request | None, names: tuple[str, ...] = SEARCHES) -> int:
    """How many search events (by API name) of the requesting session wait in the queue. Read
    from Gradio's queue (internal structures, read defensively: 0 where they are not found)."""
    try:
        blocks = request.request.app.get_blocks()
        waiting = blocks._queue.event_queue_per_concurrency_id["search"].queue
        return sum(1 for event in list(waiting)
                   if event.session_hash == request.session_hash and event.fn.api_name in names)
    except (AttributeError, KeyError, TypeError):
        return 0


def request_stop(session: Session, request: gr.Request):
    return session.request_stop(queued_runs(request))


def rescore_tree(session: Session, settings: Settings, scorer_entry, aggregation, selection):
    """Re-score the session's tree without generating again; compare with the original."""
    before = session.view
    if before is None or not before.candidates():
        return gr.update(), "⚠ run a search or import a tree first", gr.update()
    if scorer_entry not in settings.scorers:
        return gr.update(), "⚠ that scorer is not offered by this server", gr.update()
    name, options = settings.scorer(scorer_entry)
    try:
        aggregation = _choice(aggregation, "aggregation", AGGREGATIONS)
        selection = _choice(selection, "selection", SELECTIONS)
        policy = None
        logprobs_known = all(n.mean_logprob is not None for n in before if n.id)
        if SCORERS[name].needs_policy_for(logprobs_known):
            from ..policy.loading import load_policy

            policy = load_policy(settings.models[0])
        after = rescore(before, name, aggregation, policy, scorer_options=options)
        apply_selection(after, selection)
    except UserError as exc:
        return gr.update(), f"⚠ {first_line(exc)}", gr.update()
    except Exception as exc:  # a scorer's model failing on these steps: one line
        return gr.update(), f"⚠ re-scoring failed: {first_line(exc)}", gr.update()
    after.meta["run_id"] = f"{before.meta.get('run_id', 'tree')}-rescored"
    rows, summary = compare(before, after)
    return rows, summary, as_value(figure(after, scale=session.scale))


def build(settings: Settings) -> None:
    """Lay out the tab inside the current Blocks and wire its events."""
    from . import edit_panel

    session = gr.State(Session())
    examples = example_rows()
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            question = gr.Textbox(label="Problem", lines=4, elem_id="question", value=examples[0][0])
            reference = gr.Textbox(label="Reference answer (optional)", elem_id="reference", value=examples[0][1])
            with gr.Row():
                run_btn = gr.Button("Run", variant="primary", elem_id="run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="stop")
            strategy = gr.Dropdown([(s.label, s.name) for s in STRATEGIES.values() if s.on_page],
                                   value=PAGE_DEFAULTS.strategy, label="Strategy", elem_id="strategy")
            n = gr.Slider(1, UI_MAX_N, value=PAGE_DEFAULTS.n, step=1, label="Budget N (generations)")
            m = gr.Slider(1, UI_MAX_BEAM_WIDTH, value=PAGE_DEFAULTS.beam_width, step=1,
                          label="Beam width M (beam, DVTS)")
            temperature = gr.Slider(0.0, 1.5, value=PAGE_DEFAULTS.temperature, step=0.05, label="Temperature")
            max_steps = gr.Slider(1, UI_MAX_STEPS, value=PAGE_DEFAULTS.max_steps, step=1, label="Max steps")
            scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer (PRM)")
            aggregation = gr.Radio(list(AGGREGATIONS), value=PAGE_DEFAULTS.aggregation, label="Step-score aggregation")
            selection = gr.Radio(SELECTION_CHOICES, value=PAGE_DEFAULTS.selection, label="Answer selection")
            model = gr.Dropdown(list(settings.models), value=settings.models[0], label="Policy model")
            scale = gr.Radio([("viridis (colour-blind safe)", "viridis"), ("cividis (colour-blind safe)", "cividis"),
                              ("red-green", "red-green")], value=DEFAULT_SCALE, label="Score colours",
                             elem_id="scale")
            gr.Examples(examples, inputs=[question, reference], label="Examples", examples_per_page=5)
        with gr.Column(scale=3):
            status = gr.Markdown("Press Run to start.", elem_id="status")
            view = tree_view()
            replay_slider = gr.Slider(0, 1, value=0, step=1, label="Replay: show the tree after iteration",
                                      elem_id="replay")
            candidates = gr.Dataframe(headers=CANDIDATE_COLUMNS, value=[], label="Finished candidates",
                                      interactive=False, elem_id="candidates")
            compute = gr.Markdown("No run yet.", elem_id="compute")
            with gr.Accordion("Where the PRM and the outcome disagree (with a reference answer)", open=False):
                disagree = gr.Dataframe(headers=DISAGREEMENT_COLUMNS, value=[], interactive=False,
                                        label="Candidates ranked against their correctness (click a row for its path)",
                                        elem_id="disagreements")
                histogram = tree_view(elem_id="score-histogram")
            with gr.Row():
                export_btn = gr.DownloadButton("Export tree (JSON)", value=None, elem_id="export")
                upload = gr.File(label="Import a tree (JSON)", file_types=[".json"], elem_id="import")
            with gr.Accordion("Re-score this tree with another scorer, aggregation or selection", open=False):
                with gr.Row():
                    re_scorer = gr.Dropdown(list(settings.scorers), value=settings.scorers[0], label="Scorer")
                    re_aggregation = gr.Radio(list(AGGREGATIONS), value=PAGE_DEFAULTS.aggregation,
                                              label="Aggregation")
                    re_selection = gr.Radio(SELECTION_CHOICES, value=PAGE_DEFAULTS.selection, label="Selection")
                rescore_btn = gr.Button("Re-score", elem_id="rescore")
                rescore_summary = gr.Markdown(elem_id="rescore-summary")
                rescore_table = gr.Dataframe(headers=COMPARE_COLUMNS, value=[], interactive=False,
                                             label="Finished candidates: before and after", elem_id="rescore-table")
                rescored_view = tree_view(elem_id="rescored-view")
        with gr.Column(scale=1, min_width=260):
            path_panel = gr.HTML(path_html(None, None), elem_id="path-box")
            selected = gr.Number(value=None, precision=0, label="Selected node", elem_id="selected-node")
            inputs = [question, reference, strategy, n, m, temperature, max_steps, scorer, aggregation, selection,
                      model]
            outputs = [view, status, candidates, compute, replay_slider, disagree, histogram, export_btn]
            edit_text = edit_panel.build(settings, session, selected, inputs, outputs, view, status, path_panel)

    run_btn.click(lambda s, *args: (yield from run_search(s, settings, *args)), inputs=[session, *inputs],
                  outputs=outputs, concurrency_id="search", concurrency_limit=settings.search_slots, api_name="run")
    stop_btn.click(request_stop, inputs=session, outputs=status, queue=False, api_name="stop")
    view.click(show_path, inputs=session, outputs=[path_panel, selected, edit_text], concurrency_limit=8,
               api_name=False)
    disagree.select(show_disagreement, inputs=session, outputs=path_panel, concurrency_limit=8, api_name=False)
    scale.change(set_scale, inputs=[session, scale], outputs=view, queue=False, api_name=False)
    replay_slider.release(replay, inputs=[session, replay_slider], outputs=view, concurrency_limit=8,
                          api_name="replay")
    upload.upload(import_tree, inputs=[session, upload], outputs=outputs, concurrency_limit=4, api_name="import_tree")
    rescore_btn.click(lambda s, *args: rescore_tree(s, settings, *args),
                      inputs=[session, re_scorer, re_aggregation, re_selection],
                      outputs=[rescore_table, rescore_summary, rescored_view], concurrency_id="search", concurrency_limit=settings.search_slots,
                      api_name="rescore")
