"""Policy self-confidence: the geometric-mean probability of a step's tokens, exp(mean log-prob).

Free (the log-probs come with sampling) but it measures fluency, not correctness: a
fluent wrong step scores as high as a right one.
"""
from __future__ import annotations

import math

from .base import Scorer, StepPath


class ConfidenceScorer(Scorer):
    name = "confidence"

    def score_last(self, paths: list[StepPath]) -> list[float]:
        out = []
        for path in paths:
            logprob = path.mean_logprobs[-1] if path.mean_logprobs else None
            out.append(0.5 if logprob is None else math.exp(min(logprob, 0.0)))
        return out
