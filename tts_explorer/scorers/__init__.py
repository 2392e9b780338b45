"""Step scorers (PRMs) and their registry: name -> class. Unknown names list the valid ones."""

from __future__ import annotations

from ..errors import UserError
from .arithmetic import ArithmeticScorer
from .base import Scorer, ScorerEnv, StepPath
from .confidence import ConfidenceScorer
from .judge import JudgeScorer
from .learned import LEARNED_FORMATS
from .rollout import OracleRolloutScorer, RolloutScorer
from .shipped import ShippedProbe, ShippedProbeArithmetic

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls
    for cls in (
        ShippedProbeArithmetic,
        ShippedProbe,
        ArithmeticScorer,
        ConfidenceScorer,
        JudgeScorer,
        RolloutScorer,
        OracleRolloutScorer,
    )
}
SCORERS.update(LEARNED_FORMATS)  # these take model=<path or hub id>
DEFAULT_SCORER = "smollm-probe"  # calibrated, and the best measured on held-out steps (README, "The shipped PRM")
FALLBACK_SCORER = "arithmetic"  # the default for policies the default cannot score


def can_score(name: str, models) -> bool:
    """Whether the scorer can score the steps of one of these policies (model sources)."""
    return SCORERS[name].backbone is None or SCORERS[name].backbone in models


def default_scorer(models) -> str:
    """The default scorer for these policies (model sources, e.g. the page's or the command's)."""
    return DEFAULT_SCORER if can_score(DEFAULT_SCORER, models) else FALLBACK_SCORER


def check_scorer_name(name: str) -> str:
    if name not in SCORERS:
        raise UserError(f"unknown scorer {name!r}; valid: {', '.join(SCORERS)}")
    return name


def make_scorer(name: str, env: ScorerEnv, **options) -> Scorer:
    cls = SCORERS[check_scorer_name(name)]
    try:
        return cls(env, **options)
    except TypeError as exc:  # an option this scorer does not take
        raise UserError(f"scorer {name!r} does not take these options ({', '.join(options)}): {exc}") from None


__all__ = [
    "SCORERS",
    "DEFAULT_SCORER",
    "FALLBACK_SCORER",
    "can_score",
    "default_scorer",
    "Scorer",
    "ScorerEnv",
    "StepPath",
    "make_scorer",
    "check_scorer_name",
]
