"""Monte-Carlo rollout value (Math-Shepherd style): from each step, K rollouts to the end;
the score is the share that reach the target answer.

The target is the reference answer for `mc-rollout-oracle` (only where one is given: it
is how Math-Shepherd labels steps, and a search scored this way has seen the answer), or
for `mc-rollout` the answer most often reached by all rollouts of the call, which needs
no reference. A step that already ends the path is scored by its own answer. Costly: K
full continuations per step, counted as scorer compute.
"""

from __future__ import annotations

from collections import Counter

from ..answers import Comparer, extract_answer
from ..errors import UserError
from .base import Scorer, ScorerEnv, StepPath

ROLLOUT_TOKENS = 160


class RolloutScorer(Scorer):
    name = "mc-rollout"
    needs_policy = True
    use_reference = False

    def __init__(self, env: ScorerEnv, rollouts: int = 4, max_tokens: int = ROLLOUT_TOKENS):
        super().__init__(env)
        if env.policy is None:
            raise UserError(f"the {self.name} scorer needs a policy model")
        self.rollouts, self.max_tokens = rollouts, max_tokens

    def _target(self, answers: list[str | None], comparer: Comparer) -> str | None:
        if self.use_reference:
            if self.env.reference is None:
                raise UserError(f"the {self.name} scorer needs a reference answer")
            return self.env.reference
        seen = [a for a in answers if a is not None]
        if not seen:
            return None
        groups = comparer.group(seen)
        return seen[max(groups, key=len)[0]]

    def score_last(self, paths: list[StepPath]) -> list[float]:
        own = [extract_answer(p.steps[-1]) for p in paths]
        open_paths = [i for i, (a, p) in enumerate(zip(own, paths)) if a is None and not p.ended]
        results = self.env.policy.generate(
            [paths[i].prompt for i in open_paths],
            [self.rollouts] * len(open_paths),
            max_tokens=self.max_tokens,
            temperature=max(self.env.temperature, 0.3),
            stop=None,
            keep_state=False,
            should_stop=self.env.should_stop,
            meter=self.env.meter,
            role="scorer",
        )
        reached: dict[int, list[str | None]] = {
            i: [extract_answer(c.text, complete=c.stop_reason != "length") for c in r]
            for i, r in zip(open_paths, results)
        }
        comparer = Comparer()
        target = self._target([a for a in own if a] + [a for v in reached.values() for a in v], comparer)
        scores = []
        for i, answer in enumerate(own):
            outcomes = reached.get(i, [answer])
            hits = Counter(comparer.equivalent(a, target) for a in outcomes)[True] if target else 0
            scores.append(hits / max(len(outcomes), 1))
        return scores


class OracleRolloutScorer(RolloutScorer):
    name = "mc-rollout-oracle"
    use_reference = True
