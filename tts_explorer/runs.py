"""The actions people take, each written once for the page, the command line and train-prm:
search, continue a search from a node, re-score a tree, edit a step, score ProcessBench
samples. Each takes checked choices (a RunRequest, a ScorerChoice), loads the policy the tree
was grown with when the scorer needs one, builds the scorer and the root prompt, applies the
run limits, and returns typed results; the adapters around it only read fields and show
results.

Layers (no module imports one above it): core (tree, answers, selection, config, treefile)
-> policy and scorers -> strategies and search -> this module -> the page (ui/), the command
line (cli.py), training and benchmarks.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

from .answers import MAX_ANSWER_CHARS
from .config import SearchConfig, check_question, check_text
from .edit import EditResult, edit_step
from .errors import UserError
from .events import Event
from .policy.base import StopRequested
from .policy.embedded import WHEEL_MODELS
from .policy.loading import EMBEDDED, load_policy
from .processbench import Sample
from .processbench import score_samples as score_sample_steps
from .prompts import BASE_TEMPLATE, DEFAULT_TEMPLATE, load_template
from .rescore import rescore
from .scorers import SCORERS, Scorer, ScorerEnv, check_scorer_name, make_scorer
from .search import NO_LIMITS, RunGuard, RunLimits, new_tree, search
from .selection import AGGREGATIONS, SELECTIONS, apply_selection, check_choice
from .strategies import configure
from .tree import SearchTree


@dataclass(frozen=True)
class ScorerChoice:
    """A scorer by name, with its options (a learned PRM's model, trust_remote_code)."""

    name: str
    options: tuple[tuple[str, object], ...] = ()

    @classmethod
    def of(cls, name: str, model: str | None = None, trust_remote_code: bool = False) -> ScorerChoice:
        options = {"model": model} if model else {}
        if trust_remote_code:
            options["trust_remote_code"] = True
        return cls(check_scorer_name(name), tuple(options.items()))

    @classmethod
    def parse(cls, entry: str, trust_remote_code: bool = False) -> ScorerChoice:
        """From an operator's entry: NAME, or FORMAT:MODEL for a learned PRM."""
        name, _, model = entry.partition(":")
        return cls.of(name, model or None, trust_remote_code and bool(model))

    def needs_policy(self, logprobs_known: bool) -> bool:
        return SCORERS[self.name].needs_policy_for(logprobs_known)

    def build(self, policy=None, **env) -> Scorer:
        return make_scorer(self.name, ScorerEnv(policy=policy, **env), **dict(self.options))


@dataclass(frozen=True)
class RunRequest:
    """A checked search request: the problem, the settings, the scorer, the policy's source."""

    question: str
    reference: str | None
    config: SearchConfig
    scorer: ScorerChoice
    model: str = EMBEDDED
    template: str | None = None  # None: the model's own (template_for)
    auto_table: str | None = None
    limits: RunLimits = field(default_factory=RunLimits)

    def __post_init__(self) -> None:
        object.__setattr__(self, "question", check_question(self.question))
        reference = check_text(self.reference, "the reference answer", MAX_ANSWER_CHARS, required=False)
        object.__setattr__(self, "reference", reference or None)
        object.__setattr__(self, "config", configure(self.config))  # the strategy's own rules
        if self.template is not None:
            load_template(self.template)  # an unknown template is refused before any model loads

    def new_tree(self, policy_name: str = "") -> SearchTree:
        """An empty tree for this request, its settings and its policy's source in its meta."""
        tree = new_tree(self.question, self.config, self.scorer.name, self.reference, policy_name)
        tree.meta["model"] = self.model
        return tree


def grown_with(tree: SearchTree, offered: Sequence[str]) -> str:
    """The policy source a tree was grown with when it is one of `offered` (a tree file is
    untrusted: its meta never names a path to load), else the first offered."""
    source = tree.meta.get("model")
    return source if isinstance(source, str) and source in offered else offered[0]


def template_for(model: str, policy=None) -> str:
    """The prompt template a model is asked with: its own (the models from the package index
    name theirs), a few-shot completion prompt for a base model (one without a chat
    template), else the default."""
    if model in WHEEL_MODELS:
        return WHEEL_MODELS[model].template
    if policy is not None and not getattr(policy, "has_chat_template", True):
        return BASE_TEMPLATE
    return DEFAULT_TEMPLATE


def root_prompt(policy, question: str, template: str | None = None, model: str = EMBEDDED) -> str:
    """The policy's prompt for a problem ("" without a policy: scorers that read none)."""
    if policy is None:
        return ""
    return load_template(template or template_for(model, policy)).prompt(policy, question)


def search_events(
    tree: SearchTree,
    policy,
    request: RunRequest,
    should_stop: Callable[[], bool] | None = None,
    start: int = 0,
    guard: RunGuard | None = None,
) -> Iterator[Event]:
    """Grow `tree` as the request says (from node `start` when given), under its run limits, or
    under `guard` (one that spans several searches: a comparison as a whole)."""
    tree.meta["policy"] = policy.name
    tree.meta.setdefault("model", request.model)
    yield from search(
        tree,
        policy,
        request.config,
        request.scorer.name,
        template=request.template or template_for(request.model, policy),
        should_stop=should_stop,
        scorer_options=dict(request.scorer.options),
        limits=request.limits,
        auto_table=request.auto_table,
        start=start,
        guard=guard,
    )


def continued(tree: SearchTree, request: RunRequest) -> RunRequest:
    """The request a continuation of `tree` runs: the tree's own problem and reference."""
    return replace(request, question=tree.question, reference=tree.reference)


def _scoring_policy(tree: SearchTree, choice: ScorerChoice, offered: Sequence[str], logprobs_known: bool):
    if not choice.needs_policy(logprobs_known):
        return None
    return load_policy(grown_with(tree, offered))


@contextmanager
def _bounded(guard: RunGuard, what: str):
    """Run an action under `guard`: stopped, it leaves what it worked on unchanged and says why."""
    try:
        yield
    except StopRequested:
        raise UserError(f"{what} stopped {guard.cause or 'on request'}; nothing was changed") from None


def rescore_tree(
    tree: SearchTree,
    choice: ScorerChoice,
    aggregation: str,
    selection: str,
    offered: Sequence[str] = (EMBEDDED,),
    template: str | None = None,
    limits: RunLimits = NO_LIMITS,
    should_stop: Callable[[], bool] | None = None,
) -> SearchTree:
    """A copy of `tree` scored anew by `choice`, aggregated and with the answer chosen again."""
    check_choice(aggregation, AGGREGATIONS, "aggregation")
    check_choice(selection, SELECTIONS, "selection")
    logprobs_known = all(n.mean_logprob is not None for n in tree if n.id)
    policy = _scoring_policy(tree, choice, offered, logprobs_known)
    guard = RunGuard(should_stop, limits)
    with _bounded(guard, "re-scoring"):
        template = template or template_for(grown_with(tree, offered), policy)
        after = rescore(tree, choice.name, aggregation, policy, template, dict(choice.options), guard)
    apply_selection(after, selection)
    return after


def edit(
    tree: SearchTree,
    node_id: int,
    text,
    choice: ScorerChoice,
    aggregation: str,
    offered: Sequence[str] = (EMBEDDED,),
    template: str | None = None,
    limits: RunLimits = NO_LIMITS,
    should_stop: Callable[[], bool] | None = None,
) -> EditResult:
    """A visitor's version of a step, added beside it and scored (edit.py), within the tree's caps."""
    check_choice(aggregation, AGGREGATIONS, "aggregation")
    full = tree.full(margin=1)
    if full:
        raise UserError(f"the tree is at {full}: it takes no more steps")
    policy = _scoring_policy(tree, choice, offered, logprobs_known=False)
    guard = RunGuard(should_stop, limits)
    scorer = choice.build(policy, reference=tree.reference, should_stop=guard)
    guard.watch(scorer.env.meter)
    with _bounded(guard, "scoring the edit"):
        prompt = root_prompt(policy, tree.question, template, grown_with(tree, offered))
        return edit_step(tree, node_id, text, scorer, aggregation, prompt)


def score_samples(
    samples: list[Sample],
    choice: ScorerChoice,
    model: str = EMBEDDED,
    template: str | None = None,
    reference: str | None = None,
    limits: RunLimits = NO_LIMITS,
    should_stop: Callable[[], bool] | None = None,
) -> list[list[float]]:
    """Every step's score of ProcessBench-style samples (the PRM lab, prm-eval)."""
    policy = load_policy(model) if choice.needs_policy(logprobs_known=False) else None
    guard = RunGuard(should_stop, limits)
    scorer = choice.build(policy, reference=reference, should_stop=guard)
    guard.watch(scorer.env.meter)
    with _bounded(guard, "scoring"):
        return score_sample_steps(scorer, samples, lambda q: root_prompt(policy, q, template, model))


def check_node(tree: SearchTree | None, node_id) -> int:
    """A node id of the tree, from an untrusted value."""
    if tree is None:
        raise UserError("run a search or import a tree first")
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id not in tree.nodes:
        raise UserError("choose a node of the tree first (click it)")
    return node_id
