"""What every tab that runs a search shares: the checked request from the page's fields, the
choices the page offers (read from the registries), and a search streamed into the views
of a run (`RunViews`: named outputs, so a handler says which view it changes).

No model is loaded here until a run starts; the runs themselves are the application
layer's (runs.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields

import gradio as gr

from ..assets import data_path
from ..config import MAX_TEMPERATURE, PAGE_DEFAULTS, SOFTMAX_TEMPERATURES, SearchConfig, real_number, whole_number
from ..data import read_problems
from ..diagnose import disagreements, score_histogram
from ..errors import UserError, first_line
from ..events import Done, IterationDone
from ..policy.loading import load_policy
from ..runs import RunRequest, search_events
from ..selection import AGGREGATIONS, SELECTIONS, check_choice
from ..settings import (
    UI_MAX_BEAM_WIDTH,
    UI_MAX_CONFIDENCE_QUANTILE,
    UI_MAX_N,
    UI_MAX_SOFTMAX_TEMPERATURE,
    UI_MAX_STEPS,
    Settings,
)
from ..strategies import STRATEGIES
from ..tree import MAX_BYTES, SearchTree
from .panels import candidate_rows, compute_markdown, status_line
from .session import Session
from .tree_view import as_value

REDRAW_INTERVAL_S = 0.3  # at most ~3 redraws a second while a search runs
PAGE_STRATEGIES = [(s.label, s.name) for s in STRATEGIES.values() if s.on_page]
AGGREGATION_CHOICES = [(a.label, a.name) for a in AGGREGATIONS.values()]
SELECTION_CHOICES = [(s.label, s.name) for s in SELECTIONS.values()]


def example_rows() -> list[list[str]]:
    easy, _ = read_problems(data_path("easy"), limit=6)
    harder, _ = read_problems(data_path("harder"), limit=3)
    return [[p.question, p.answer] for p in easy + harder]


def search_controls(strategy: bool = True) -> dict:
    """The search settings' controls (sliders, a strategy choice), their ranges from one home
    each; the newer strategies' own parameters (TUNING, in page_request's order) in a closed
    accordion."""
    chosen = (
        {"strategy": gr.Dropdown(PAGE_STRATEGIES, value=PAGE_DEFAULTS.strategy, label="Strategy", elem_id="strategy")}
        if strategy
        else {}
    )
    controls = {
        **chosen,
        "n": gr.Slider(1, UI_MAX_N, value=PAGE_DEFAULTS.n, step=1, label="Budget N (generations)"),
        "m": gr.Slider(1, UI_MAX_BEAM_WIDTH, value=PAGE_DEFAULTS.beam_width, step=1, label="Beam width M (beam, DVTS)"),
        "temperature": gr.Slider(0.0, MAX_TEMPERATURE, value=PAGE_DEFAULTS.temperature, step=0.05, label="Temperature"),
        "max_steps": gr.Slider(1, UI_MAX_STEPS, value=PAGE_DEFAULTS.max_steps, step=1, label="Max steps"),
    }
    low = SOFTMAX_TEMPERATURES[0]
    with gr.Accordion("Particle filtering, REBASE and DeepConf parameters", open=False):
        for name, label in (
            (
                "resample_temperature",
                "Particle filtering: resampling temperature (low: follow the scores; high: keep diversity)",
            ),
            ("frontier_temperature", "REBASE: temperature of the budget shares (low: most to the best node)"),
        ):
            controls[name] = gr.Slider(
                low,
                UI_MAX_SOFTMAX_TEMPERATURE,
                value=getattr(PAGE_DEFAULTS, name),
                step=0.01,
                label=label,
                elem_id=name.replace("_", "-"),
            )
        controls["confidence_quantile"] = gr.Slider(
            0.0,
            UI_MAX_CONFIDENCE_QUANTILE,
            value=PAGE_DEFAULTS.confidence_quantile,
            step=0.05,
            label="DeepConf: stop a chain below this quantile of the warm-up chains' confidence",
            elem_id="confidence-quantile",
        )
        controls["warmup"] = gr.Slider(
            1, UI_MAX_N, value=PAGE_DEFAULTS.warmup, step=1, label="DeepConf: warm-up chains", elem_id="warmup"
        )
    return controls


# page_request's fields, the Run button's inputs in this order: the basic ones, which every
# client sends, then the newer strategies' parameters (TUNING), which a client may leave out
BASIC_FIELDS = (
    "question",
    "reference",
    "strategy",
    "n",
    "m",
    "temperature",
    "max_steps",
    "scorer",
    "aggregation",
    "selection",
    "model",
)
TUNING = ("resample_temperature", "frontier_temperature", "confidence_quantile", "warmup")


def page_request(
    settings: Settings,
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
    resample_temperature=PAGE_DEFAULTS.resample_temperature,
    frontier_temperature=PAGE_DEFAULTS.frontier_temperature,
    confidence_quantile=PAGE_DEFAULTS.confidence_quantile,
    warmup=PAGE_DEFAULTS.warmup,
) -> RunRequest:
    """The checked request of a Run from the page's fields (anything a browser could send; a
    client that leaves out the newer strategies' parameters gets their defaults)."""
    if model not in settings.models or scorer not in settings.scorers:
        raise UserError("that model or scorer is not offered by this server")
    if not isinstance(strategy, str) or strategy not in dict((name, label) for label, name in PAGE_STRATEGIES):
        raise UserError(f"unknown strategy; valid: {', '.join(name for _, name in PAGE_STRATEGIES)}")
    config = SearchConfig(
        strategy=strategy,
        n=whole_number(n, "N", 1, UI_MAX_N),
        beam_width=whole_number(m, "the beam width M", 1, UI_MAX_BEAM_WIDTH),
        max_steps=whole_number(max_steps, "max steps", 1, UI_MAX_STEPS),
        step_tokens=PAGE_DEFAULTS.step_tokens,
        final_tokens=PAGE_DEFAULTS.final_tokens,
        temperature=real_number(temperature, "the temperature", 0.0, MAX_TEMPERATURE),
        aggregation=check_choice(aggregation, AGGREGATIONS, "aggregation"),
        selection=check_choice(selection, SELECTIONS, "selection"),
        seed=PAGE_DEFAULTS.seed,
        resample_temperature=real_number(resample_temperature, "the resampling temperature", *SOFTMAX_TEMPERATURES),
        frontier_temperature=real_number(frontier_temperature, "the frontier temperature", *SOFTMAX_TEMPERATURES),
        confidence_quantile=real_number(
            confidence_quantile, "the confidence quantile", 0.0, UI_MAX_CONFIDENCE_QUANTILE
        ),
        warmup=whole_number(warmup, "the warm-up chains", 1, UI_MAX_N),
    )
    return RunRequest(question, reference, config, settings.scorer(scorer), model, limits=settings.limits)


def export_file(tree: SearchTree, session: Session) -> str | None:
    """The tree as compact JSON in the session's own folder (replacing its previous export), or
    None when it is over the size a tree file may have (the page imports what it exports)."""
    text = tree.to_json()
    if len(text.encode("utf-8")) > MAX_BYTES:
        return None
    out = session.folder() / "tree.json"
    out.write_text(text, encoding="utf-8")
    return str(out)


@dataclass
class RunViews:
    """The outputs of a run, by name: each handler returns a dict of the views it changes."""

    view: gr.HTML
    status: gr.Markdown
    candidates: gr.Dataframe
    compute: gr.Markdown
    replay: gr.Slider
    disagree: gr.Dataframe
    histogram: gr.HTML
    export: gr.DownloadButton

    @property
    def all(self) -> list:
        return [getattr(self, f.name) for f in fields(self)]

    def error(self, message: str) -> dict:
        """Only the status line changes."""
        return {self.status: f"⚠ {message}"}

    def show(
        self, tree: SearchTree, state: str, session: Session, iteration: int | None = None, export: bool = False
    ) -> dict:
        """Every view of `tree` as the session draws it (colours, focus); with `export`, its export
        file too (none when the tree is over the size a tree file may have)."""
        last = max((n.iteration for n in tree), default=0)
        out = {
            self.view: as_value(session.figure(tree)),
            self.status: status_line(tree, state, iteration),
            self.candidates: candidate_rows(tree),
            self.compute: compute_markdown(tree),
            self.replay: gr.update(maximum=max(last, 1), value=last),
            self.disagree: disagreements(tree),
            self.histogram: as_value(score_histogram(tree)),
        }
        if export:
            out[self.export] = export_file(tree, session)
        return out

    def stream(
        self, session: Session, tree: SearchTree, request: RunRequest, start: int = 0, enqueued: float | None = None
    ):
        """Run a search on `tree` (from node `start`) as this session's run, streaming its views
        (`enqueued`: when the run entered the queue, so a Stop pressed since then ends it)."""
        refused = session.start_run(enqueued)
        if refused:
            yield self.error(refused)
            return
        try:
            yield from self._stream(session, tree, request, start)
        finally:
            session.end_run()

    def _stream(self, session: Session, tree: SearchTree, request: RunRequest, start: int):
        session.show(tree, live=True, focus=False if start else None)  # a new run shows the whole tree
        yield {
            **self.show(tree, "Loading the model (the first run downloads and converts it: about 30 s)…", session),
            self.export: gr.update(value=None),
        }
        try:
            policy = load_policy(request.model)
        except UserError as exc:
            yield self.error(str(exc))
            return
        last_draw, iteration = 0.0, 0
        try:
            for event in search_events(tree, policy, request, session.should_stop, start):
                if isinstance(event, IterationDone):
                    iteration = event.iteration + 1
                if isinstance(event, Done):
                    session.show(tree, live=False)
                    state = f"Stopped {event.stopped}" if event.stopped else "Done"
                    yield self.show(tree, state, session, export=True)
                elif time.monotonic() - last_draw >= REDRAW_INTERVAL_S:
                    last_draw = time.monotonic()
                    session.show(tree, live=True)
                    yield self.show(tree, "Running…", session, min(iteration, request.config.max_steps - 1))
        except UserError as exc:
            session.show(tree, live=False)
            yield self.show(tree, f"⚠ {first_line(exc)}", session, export=True)
        except Exception as exc:  # a model or scorer failure: say so in one line, keep the partial tree
            session.show(tree, live=False)
            yield self.show(tree, f"⚠ the search failed: {first_line(exc)}", session, export=True)
