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
    cls.name: cls for cls in (ShippedProbeArithmetic, ShippedProbe, ArithmeticScorer, ConfidenceScorer, JudgeScorer,
                              RolloutScorer, OracleRolloutScorer)
}
SCORERS.update(LEARNED_FORMATS)  # these take model=<path or hub id>
DEFAULT_SCORER = "arithmetic"


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


__all__ = ["SCORERS", "DEFAULT_SCORER", "Scorer", "ScorerEnv", "StepPath", "make_scorer", "check_scorer_name"]
