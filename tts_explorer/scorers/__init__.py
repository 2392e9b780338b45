"""Step scorers (PRMs) and their registry: name -> class. Unknown names list the valid ones."""
from __future__ import annotations

from ..errors import UserError
from .arithmetic import ArithmeticScorer
from .base import Scorer, ScorerEnv, StepPath
from .confidence import ConfidenceScorer
from .judge import JudgeScorer
from .rollout import OracleRolloutScorer, RolloutScorer

SCORERS: dict[str, type[Scorer]] = {
    cls.name: cls for cls in (ArithmeticScorer, ConfidenceScorer, JudgeScorer, RolloutScorer, OracleRolloutScorer)
}
DEFAULT_SCORER = "arithmetic"


def check_scorer_name(name: str) -> str:
    if name not in SCORERS:
        raise UserError(f"unknown scorer {name!r}; valid: {', '.join(SCORERS)}")
    return name


def make_scorer(name: str, env: ScorerEnv, **options) -> Scorer:
    return SCORERS[check_scorer_name(name)](env, **options)


__all__ = ["SCORERS", "DEFAULT_SCORER", "Scorer", "ScorerEnv", "StepPath", "make_scorer", "check_scorer_name"]
