"""The Search tab's tools for questioning a tree: a visitor's own version of a step, scored
beside the original (and the steps below it scored again as if the edit stood there); a
search continued from the edited step, growing live in the same tree; the tree as one
self-contained HTML file to share.

All of it acts on this session's tree only: an edit adds a node (marked as written by a
visitor) and never changes a model or another session. Each action is also an API
endpoint: /edit_step, /continue_from, /export_html. The actions are runs.py's.
"""

from __future__ import annotations

import time

import gradio as gr

from ..config import whole_number
from ..errors import UserError, first_line
from ..report import fmt_score
from ..runs import continued, edit
from ..settings import Settings
from ..standalone import tree_page
from .panels import markdown_text, path_html, status_line
from .queue import enqueued_at
from .run_views import RunViews, page_request
from .session import Session
from .tree_view import as_value

EDIT_COLUMNS = ["node", "step", "score before", "score with the edit", "change"]


def apply_edit(session: Session, settings: Settings, node_id, text, scorer_entry, aggregation, enqueued=None):
    """Outputs: (tree view, status, edit summary, before/after table, selected node, path panel)."""
    unchanged = (gr.update(), gr.update(), gr.update(), gr.update(), gr.update())
    tree = session.tree
    try:
        if tree is None:
            raise UserError("run a search or import a tree first")
        node_id = whole_number(node_id, "the node", 0, 10**9)
        if scorer_entry not in settings.scorers:
            raise UserError("that scorer is not offered by this server")
        choice = settings.scorer(scorer_entry)
        with session.run(enqueued):
            result = edit(
                tree,
                node_id,
                text,
                choice,
                aggregation,
                settings.models,
                limits=settings.limits,
                should_stop=session.should_stop,
            )
    except UserError as exc:
        return (gr.update(), f"⚠ {first_line(exc)}", *unchanged)
    except Exception as exc:  # a scorer's model failing on the text: one line, the tree unchanged
        return (gr.update(), f"⚠ scoring the edit failed: {first_line(exc)}", *unchanged)
    session.show(tree, live=False)
    new = result.node
    rows = [
        [
            r["node"],
            r["step"][:120],
            fmt_score(r["old"]),
            fmt_score(r["new"]),
            "–" if r["old"] is None else f"{r['new'] - r['old']:+.3f}",
        ]
        for r in result.rows
    ]
    paths = " · ".join(f"{how} {fmt_score(old)} → {fmt_score(now)}" for how, (old, now) in result.paths.items())
    summary = (
        f"Your step is node {new.id} (scored {fmt_score(new.score)} by {markdown_text(choice.name)}"
        + (f"; it ends its path with the answer {markdown_text(new.answer)}" if new.answer else "")
        + f"). Path score, original → edited: {paths}."
        + (f" {len(rows)} step(s) at and below node {node_id} scored again as if the edit stood there:" if rows else "")
    )
    state = f"Node {new.id} added: a visitor's step"
    return (
        as_value(session.figure(tree)),
        status_line(tree, state),
        summary,
        rows,
        new.id,
        path_html(tree, new.id),
    )


def continue_from(session: Session, settings: Settings, views: RunViews, node_id, fields: list, enqueued=None):
    """Generator: the page's search settings, grown from a node of this session's tree."""
    tree = session.tree
    try:
        if tree is None:
            raise UserError("run a search or import a tree first")
        start = whole_number(node_id, "the node", 1, 10**9)
        _question, _reference, *search_fields = fields  # the tree's own problem and reference are kept
        request = continued(tree, page_request(settings, tree.question, tree.reference or "", *search_fields))
    except UserError as exc:
        yield views.error(str(exc))
        return
    tree.meta.setdefault("run_id", f"continued-{time.time():.0f}")
    yield from views.stream(session, tree, request, start=start, enqueued=enqueued)


def export_html(session: Session):
    """The session's tree as one self-contained HTML file (in the session's folder), written
    again only when the tree or its colours changed since the last one."""
    if session.touch().view is None:
        raise gr.Error("run a search or import a tree first")
    out = session.folder() / "tree.html"
    key = (id(session.view), len(session.view), session.colours)
    if session.exported.get("html") != key or not out.exists():
        out.write_text(tree_page(session.view, session.colours), encoding="utf-8")
        session.exported["html"] = key
    return str(out)


def build(settings: Settings, session, selected, inputs: list, views: RunViews, path_panel, scorer, aggregation):
    """The edit panel under the path panel, wired to the Search tab's controls and views."""
    gr.Markdown(
        "**Question the PRM**: click a node, write your own version of its step (or, on the problem, a "
        "new first step), and see how it scores; then continue the search from it."
    )
    text = gr.Textbox(label="Your version of the step", lines=3, max_length=2000, elem_id="edit-text")
    with gr.Row():
        edit_btn = gr.Button("Score my step", elem_id="edit-step")
        continue_btn = gr.Button("Continue from here", elem_id="continue-from")
    summary = gr.Markdown(elem_id="edit-summary")
    table = gr.Dataframe(
        headers=EDIT_COLUMNS, value=[], interactive=False, label="Before and after the edit", elem_id="edit-table"
    )
    html_btn = gr.DownloadButton("Download as HTML", elem_id="export-html")
    search_slot = {"concurrency_id": "search", "concurrency_limit": settings.search_slots}

    def on_edit(s, node, text_value, scorer_entry, aggregation_value, request: gr.Request):
        return apply_edit(
            s.touch(request), settings, node, text_value, scorer_entry, aggregation_value, enqueued_at(request)
        )

    def on_continue(
        s,
        node,
        question,
        reference,
        strategy,
        n,
        m,
        temperature,
        max_steps,
        scorer_entry,
        aggregation_value,
        selection,
        model,
        resample_temperature,
        frontier_temperature,
        confidence_quantile,
        warmup,
        request: gr.Request,
    ):
        fields = [question, reference, strategy, n, m, temperature, max_steps, scorer_entry, aggregation_value]
        fields += [selection, model, resample_temperature, frontier_temperature, confidence_quantile, warmup]
        yield from continue_from(s.touch(request), settings, views, node, fields, enqueued_at(request))

    edit_btn.click(
        on_edit,
        inputs=[session, selected, text, scorer, aggregation],
        outputs=[views.view, views.status, summary, table, selected, path_panel],
        api_name="edit_step",
        **search_slot,
    )
    continue_btn.click(
        on_continue, inputs=[session, selected, *inputs], outputs=views.all, api_name="continue_from", **search_slot
    )
    html_btn.click(export_html, inputs=session, outputs=html_btn, concurrency_limit=4, api_name="export_html")
    return text
