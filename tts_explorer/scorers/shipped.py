"""The PRM that ships with the project, by name: the probe trained by `train-prm` on the
embedded policy's hidden states (assets/prm/smollm2-135m-probe, loaded through the same
`probe` format as any user's checkpoint), and its product with the arithmetic verifier
(a step's score is the probe's times the verifier's, so a wrong stated result still sinks
it while the probe judges the rest)."""

from __future__ import annotations

from ..assets import asset
from ..policy.loading import EMBEDDED
from .arithmetic import ArithmeticScorer
from .base import Scorer, ScorerEnv, StepPath
from .learned import ProbePRM

SHIPPED_PROBE = asset("prm", "smollm2-135m-probe")


class ShippedProbe(ProbePRM):
    name = "smollm-probe"
    needs_model = False
    backbone = EMBEDDED

    def __init__(self, env: ScorerEnv, model: str | None = None, **options):
        super().__init__(env, model=model or str(SHIPPED_PROBE), **options)


class ShippedProbeArithmetic(Scorer):
    name = "smollm-probe-arith"
    backbone = EMBEDDED

    def __init__(self, env: ScorerEnv, model: str | None = None):
        super().__init__(env)
        self.parts = [ShippedProbe(env, model=model), ArithmeticScorer(env)]

    def score_last(self, paths: list[StepPath]) -> list[float]:
        probe, arithmetic = (part.score_last(paths) for part in self.parts)
        return [a * b for a, b in zip(probe, arithmetic)]
