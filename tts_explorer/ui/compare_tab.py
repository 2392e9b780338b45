"""The Compare tab: two to four searches on the same problem with the same budget and seed,
drawn next to each other as they grow: strategies against each other, or two scorers, or
two aggregations. Each panel says its answer, whether it is right (with a reference), its
tokens and FLOPs; the chosen paths are drawn as in the Search tab.

Several models can be compared too (a larger model's greedy answer beside a smaller one's
beam search), each panel with its own model, answer, tokens and FLOPs.

The searches advance in turn, one step each, so all trees grow at once (the model serves
one call at a time). Also the API endpoint /compare.
"""

from __future__ import annotations

import time

import gradio as gr

from ..config import PAGE_DEFAULTS
from ..errors import UserError, first_line
from ..events import Done
from ..policy.loading import load_policy
from ..render import figure
from ..runs import search_events
from ..search import RunGuard
from ..settings import Settings
from ..strategies import STRATEGIES
from .panels import answer_line, markdown_text
from .queue import enqueued_at, queued_runs
from .run_views import (
    AGGREGATION_CHOICES,
    PAGE_STRATEGIES,
    SELECTION_CHOICES,
    TUNING,
    example_rows,
    page_request,
    search_controls,
)
from .session import Session
from .tree_view import as_value, tree_view

PANELS = 4
REDRAW_INTERVAL_S = 0.4


def plan(strategies, scorers, aggregations, models=None) -> list[tuple[str, str, str, str | None]]:
    """(strategy, scorer entry, aggregation, model) per panel: what varies is what has two or more
    values. Two or more models may come each with its own strategy (as many strategies as models,
    in order: a larger model's greedy beside a smaller one's beam search) or all with one."""
    for values in (strategies, scorers, aggregations, models):
        if values is not None and not (
            isinstance(values, list) and len(values) <= 16 and all(isinstance(v, str) for v in values)
        ):
            raise UserError("choose the strategies, scorers, aggregations and models from the page's lists")
    strategies, scorers, aggregations, models = (
        list(dict.fromkeys(v or [])) for v in (strategies, scorers, aggregations, models)
    )
    if not strategies or not scorers or not aggregations:
        raise UserError("choose at least one strategy, one scorer and one aggregation")
    models = models or [None]  # None: the tab's model
    if len(models) > 1:
        if len(models) > PANELS or len(scorers) > 1 or len(aggregations) > 1:
            raise UserError("compare at most four models, with one scorer and one aggregation")
        if len(strategies) not in (1, len(models)):
            raise UserError("with several models, choose one strategy for all, or one for each model in order")
        paired = strategies if len(strategies) == len(models) else strategies * len(models)
        return [(s, scorers[0], aggregations[0], m) for s, m in zip(paired, models)]
    varying = [
        name
        for name, values in (("strategies", strategies), ("scorers", scorers), ("aggregations", aggregations))
        if len(values) > 1
    ]
    if len(varying) != 1:
        raise UserError(
            "compare one thing at a time: two to four strategies, or two scorers, or two aggregations, or models"
        )
    if len(strategies) > PANELS or len(scorers) > 2 or len(aggregations) > 2:
        raise UserError("at most four strategies, two scorers or two aggregations")
    if varying == ["strategies"]:
        return [(s, scorers[0], aggregations[0], None) for s in strategies]
    if varying == ["scorers"]:
        return [(strategies[0], s, aggregations[0], None) for s in scorers]
    return [(strategies[0], scorers[0], a, None) for a in aggregations]


def caption(tree, label: str, done: bool) -> str:
    compute = tree.meta.get("compute") or {}
    answer = answer_line(tree) if done else "running…"
    return (
        f"**{markdown_text(label)}** · {answer or 'no answer'} · {len(tree) - 1} nodes · "
        f"{compute.get('generated_tokens', 0) + compute.get('scorer_tokens', 0)} tokens · "
        f"{compute.get('total_flops', 0):.3g} FLOPs"
    )


def compare_runs(
    session: Session,
    settings: Settings,
    question,
    reference,
    strategies,
    scorers,
    aggregations,
    n,
    m,
    temperature,
    max_steps,
    selection,
    model,
    enqueued: float | None = None,
    models=None,
    tuning=(),
):
    """Generator: (status, four figures, four captions), the trees growing side by side, all of
    them one run of the session under one budget (the operator's caps hold for the whole).
    `models`: the models compared (each panel its own), else every panel runs `model`;
    `tuning`: the newer strategies' parameters (run_views.TUNING), else their defaults."""
    empty = ["" for _ in range(PANELS)]
    try:
        panels = plan(strategies, scorers, aggregations, models)
        runs = []
        for strategy, scorer, aggregation, panel_model in panels:
            request = page_request(
                settings,
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
                panel_model or model,
                *tuning,
            )
            tree = request.new_tree()
            tree.meta["run_id"] = f"compare-{len(runs)}-{time.time():.0f}"
            label = f"{STRATEGIES[strategy].label}, {scorer}, {aggregation}"
            runs.append((request, tree, label + (f", {panel_model}" if panel_model else "")))
    except UserError as exc:
        yield (f"⚠ {first_line(exc)}", *[gr.update()] * (2 * PANELS))
        return
    refused = session.start_run(enqueued)
    if refused:
        yield (f"⚠ {refused}", *[gr.update()] * (2 * PANELS))
        return
    try:
        yield (
            "Loading the model…",
            *[as_value(figure(tree, colours=session.colours)) for _, tree, _ in runs],
            *empty[len(runs) :],
            *[caption(tree, label, False) for _, tree, label in runs],
            *empty[len(runs) :],
        )
        policies = {request.model: load_policy(request.model) for request, _, _ in runs}
        guard = RunGuard(session.should_stop, settings.limits)  # one budget for every panel
        searches = [search_events(tree, policies[request.model], request, guard=guard) for request, tree, _ in runs]
        finished = [False] * len(runs)
        last = 0.0
        while not all(finished):
            for i, events in enumerate(searches):
                if finished[i]:
                    continue
                event = next(events, None)
                finished[i] = event is None or isinstance(event, Done)
            if all(finished) or time.monotonic() - last >= REDRAW_INTERVAL_S:
                last = time.monotonic()
                state = "Done" if all(finished) else "Running…"
                stopped = next((tree.meta.get("stopped") for _, tree, _ in runs if tree.meta.get("stopped")), None)
                if all(finished) and stopped:
                    state = f"Stopped {stopped}"
                yield (
                    state,
                    *[as_value(figure(tree, colours=session.colours)) for _, tree, _ in runs],
                    *empty[len(runs) :],
                    *[caption(tree, label, f) for (_, tree, label), f in zip(runs, finished)],
                    *empty[len(runs) :],
                )
    except UserError as exc:
        yield (f"⚠ {first_line(exc)}", *[gr.update()] * (2 * PANELS))
    except Exception as exc:  # a model or scorer failure: one line; the panels keep what they drew
        yield (f"⚠ the comparison failed: {first_line(exc)}", *[gr.update()] * (2 * PANELS))
    finally:
        session.end_run()


def request_stop(session: Session, request: gr.Request):
    return session.request_stop(queued_runs(request, ("compare",)))


def build(settings: Settings) -> None:
    session = gr.State(Session())
    example = example_rows()[0]
    with gr.Row():
        with gr.Column(scale=1, min_width=280):
            question = gr.Textbox(label="Problem", lines=3, value=example[0], elem_id="cmp-question")
            reference = gr.Textbox(label="Reference answer (optional)", value=example[1], elem_id="cmp-reference")
            strategies = gr.CheckboxGroup(
                PAGE_STRATEGIES, value=["best_of_n", "beam"], label="Strategies (two to four)", elem_id="cmp-strategies"
            )
            scorers = gr.Dropdown(
                list(settings.scorers),
                value=[settings.scorers[0]],
                multiselect=True,
                label="Scorers (or two of them)",
                elem_id="cmp-scorers",
            )
            aggregations = gr.CheckboxGroup(
                AGGREGATION_CHOICES,
                value=[PAGE_DEFAULTS.aggregation],
                label="Aggregations (or two of them)",
                elem_id="cmp-aggregations",
            )
            controls = search_controls(strategy=False)  # this tab chooses several strategies, above
            selection = gr.Radio(SELECTION_CHOICES, value=PAGE_DEFAULTS.selection, label="Answer selection")
            model = gr.Dropdown(list(settings.models), value=settings.models[0], label="Policy model")
            models = gr.Dropdown(
                list(settings.models),
                value=[],
                multiselect=True,
                label="Or compare models (each with the strategy in the same place, or all with one)",
                elem_id="cmp-models",
            )
            with gr.Row():
                run_btn = gr.Button("Compare", variant="primary", elem_id="cmp-run")
                stop_btn = gr.Button("Stop", variant="stop", elem_id="cmp-stop")
        with gr.Column(scale=4):
            status = gr.Markdown("Choose what to compare and press Compare.", elem_id="cmp-status")
            views, captions = [], []
            for row in range(2):
                with gr.Row():
                    for col in range(2):
                        with gr.Column():
                            captions.append(gr.Markdown(elem_id=f"cmp-caption-{2 * row + col}"))
                            views.append(tree_view(elem_id=f"cmp-view-{2 * row + col}"))
    inputs = [
        question,
        reference,
        strategies,
        scorers,
        aggregations,
        controls["n"],
        controls["m"],
        controls["temperature"],
        controls["max_steps"],
        selection,
        model,
        models,
        *(controls[name] for name in TUNING),
    ]

    def on_compare(
        s,
        question_value,
        reference_value,
        strategy_values,
        scorer_values,
        aggregation_values,
        n,
        m,
        temperature,
        max_steps,
        selection_value,
        model_value,
        model_values,
        resample_temperature,
        frontier_temperature,
        confidence_quantile,
        warmup,
        request: gr.Request,
    ):
        yield from compare_runs(
            s.touch(request),
            settings,
            question_value,
            reference_value,
            strategy_values,
            scorer_values,
            aggregation_values,
            n,
            m,
            temperature,
            max_steps,
            selection_value,
            model_value,
            enqueued_at(request),
            model_values,
            (resample_temperature, frontier_temperature, confidence_quantile, warmup),
        )

    run_btn.click(
        on_compare,
        inputs=[session, *inputs],
        outputs=[status, *views, *captions],
        concurrency_id="search",
        concurrency_limit=settings.search_slots,
        api_name="compare",
    )
    stop_btn.click(request_stop, inputs=session, outputs=status, queue=False, api_name="compare_stop")
