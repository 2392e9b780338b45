"""Scripted stand-ins for a policy and a scorer, for testing strategy logic exactly.

The fake policy writes "step d.k" lines and, with a set probability per step, a final
"The answer is A." with A drawn from a small set; every choice comes from a seeded RNG.
A completion ends the three ways a real one can: on the step separator (a step, or an
answer followed by "\n\n"), on end-of-sequence (an answer), or at the token limit (a step
cut mid-sentence, with length_prob).
"""

from __future__ import annotations

import hashlib
import random

from tts_explorer.policy.base import Completion
from tts_explorer.policy.compute import ComputeMeter
from tts_explorer.scorers.base import Scorer


class FakePolicy:
    name = "fake"
    n_params = 1000

    def __init__(
        self,
        answer_prob: float = 0.3,
        answers=("7", "8", "9"),
        seed: int = 0,
        length_prob: float = 0.0,
        eos_share: float = 0.5,
    ):
        self.answer_prob, self.answers, self.length_prob, self.eos_share = answer_prob, answers, length_prob, eos_share
        self.rng = random.Random(seed)
        self.meter = ComputeMeter()
        self.calls: list[tuple[list[str], list[int]]] = []

    def reseed(self, seed):
        self.rng = random.Random(seed)

    def chat_prompt(self, messages, continue_final=False):
        return "Q: " + messages[-1]["content"] + "\nA: "

    def generate(
        self,
        prompts,
        n,
        max_tokens,
        temperature,
        stop="\n\n",
        top_p=1.0,
        keep_state=True,
        should_stop=None,
        meter=None,
        role="policy",
    ):
        self.calls.append((list(prompts), list(n)))
        meter = meter or self.meter
        out = []
        for prompt, k in zip(prompts, n):
            depth = prompt.count("\n\n")
            group = []
            for _ in range(k):
                if should_stop is not None and should_stop():
                    from tts_explorer.policy.base import StopRequested

                    raise StopRequested()
                draw = self.rng.random()
                if stop is None or draw < self.answer_prob:
                    text = f"The answer is {self.rng.choice(self.answers)}."
                    if stop is None or self.rng.random() < self.eos_share:
                        reason = "eos"
                    else:
                        text, reason = text + stop, "stop"
                elif draw < self.answer_prob + self.length_prob:
                    text, reason = f"step {depth}.{self.rng.randrange(1000)} and then the answer is", "length"
                else:
                    text, reason = f"step {depth}.{self.rng.randrange(1000)}" + stop, "stop"
                group.append(Completion(text, 5, -0.5, reason))
                meter.add(role, self.n_params, generated=5)
            out.append(group)
        return out

    def choice_probs(self, prompts, choices, meter=None, role="scorer"):
        return [[1.0 / len(choices)] * len(choices) for _ in prompts]


class HashScorer(Scorer):
    """A deterministic score in [0, 1] from a hash of the path's text."""

    name = "hash"

    def score_last(self, paths):
        return [int(hashlib.sha256("|".join(p.steps).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF for p in paths]
