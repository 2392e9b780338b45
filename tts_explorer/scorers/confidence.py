"""Policy self-confidence: the geometric-mean probability of a step's tokens, exp(mean log-prob).

Free during a search (the log-probs come with sampling); for steps written elsewhere
(a data set) the policy computes them in one forward pass per path. It measures fluency,
not correctness: a fluent wrong step scores as high as a right one.
"""

from __future__ import annotations

import math

from ..errors import UserError
from .base import Scorer, StepPath


class ConfidenceScorer(Scorer):
    name = "confidence"
    needs_policy = True

    @classmethod
    def needs_policy_for(cls, logprobs_known: bool) -> bool:
        return not logprobs_known

    def score_steps(self, paths: list[StepPath]) -> list[list[float]]:
        return [[math.exp(min(lp, 0.0)) for lp in self._logprobs(p)] for p in paths]

    def score_last(self, paths: list[StepPath]) -> list[float]:
        return [scores[-1] for scores in self.score_steps(paths)]

    def _logprobs(self, path: StepPath) -> list[float]:
        known = list(path.mean_logprobs)
        if len(known) == len(path.steps) and None not in known:
            return known
        if self.env.policy is None:
            raise UserError("the confidence scorer needs the policy to read log-probs of these steps")
        return self.env.policy.step_logprobs(path.root_prompt, list(path.steps), meter=self.env.meter)
