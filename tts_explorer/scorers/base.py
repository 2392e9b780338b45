"""The PRM protocol: a question and the steps of each path -> a score per step, in [0, 1].

Search strategies ask for the score of each new node's last step (`score_last`);
re-scoring a finished tree asks for every step (`score_steps`). A scorer that needs a
model gets it (and the compute meter) through ScorerEnv.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..policy.base import StopRequested
from ..policy.compute import ComputeMeter
from ..prompts import path_prompt


@dataclass(frozen=True)
class StepPath:
    question: str
    root_prompt: str  # the policy's prompt for the problem
    steps: tuple[str, ...]
    mean_logprobs: tuple[float | None, ...] = ()
    ended: bool = False  # the last step ends the solution (answer, EOS or token limit)

    @property
    def prompt(self) -> str:
        """The policy prompt that continues this path."""
        return path_prompt(self.root_prompt, list(self.steps))

    def prefix(self, k: int) -> StepPath:
        return StepPath(
            self.question, self.root_prompt, self.steps[:k], self.mean_logprobs[:k], self.ended and k >= len(self.steps)
        )


@dataclass
class ScorerEnv:
    policy: object | None = None  # a Policy, for scorers that run a model
    meter: ComputeMeter = field(default_factory=ComputeMeter)
    reference: str | None = None
    temperature: float = 0.8
    should_stop: Callable[[], bool] | None = None


class Scorer:
    name = "base"
    needs_model = False  # a learned format: takes model=<path or id> and cannot run without it
    needs_policy = False  # runs the policy model on the steps it scores
    backbone: str | None = None  # the only policy whose steps it can score (its model source), or None: any

    @classmethod
    def needs_policy_for(cls, logprobs_known: bool) -> bool:
        """Whether scoring steps written elsewhere needs the policy, given whether the steps'
        log-probs are already known (a tree from a search has them)."""
        return cls.needs_policy

    def __init__(self, env: ScorerEnv):
        self.env = env

    def checkpoint(self) -> None:
        """Between batches of work: end the run (StopRequested) when its stop check says so."""
        if self.env.should_stop is not None and self.env.should_stop():
            raise StopRequested("stopped while scoring")

    def score_last(self, paths: list[StepPath]) -> list[float]:
        """Score of the last step of each path, given the steps before it."""
        raise NotImplementedError

    def score_steps(self, paths: list[StepPath]) -> list[list[float]]:
        """Scores of every step of each path."""
        prefixes = [p.prefix(k) for p in paths for k in range(1, len(p.steps) + 1)]
        flat = iter(self.score_last(prefixes)) if prefixes else iter(())
        return [[next(flat) for _ in p.steps] for p in paths]
