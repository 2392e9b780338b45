"""LLM-as-judge PRM: asks a chat model whether the newest step is correct and reads P(Yes).

The score is P("Yes") / (P("Yes") + P("No")) for the first token of the model's reply,
one forward pass per step (no generation). The judge is the policy unless another model
is given. A small judge is a weak one; this scorer is here to be measured, not trusted.
"""

from __future__ import annotations

from .base import Scorer, ScorerEnv, StepPath

JUDGE_SYSTEM = "You are a careful math teacher. You check one step of a student's solution."
JUDGE_QUESTION = (
    "Problem: {question}\n\nSteps so far:\n{previous}\n\nNew step: {step}\n\nIs the new step correct? Answer Yes or No."
)


class JudgeScorer(Scorer):
    name = "judge"
    needs_policy = True

    def __init__(self, env: ScorerEnv, model: str | None = None):
        super().__init__(env)
        if model:
            from ..policy.loading import load_policy

            self.judge = load_policy(model)
        else:
            self.judge = env.policy

    def _prompt(self, path: StepPath) -> str:
        previous = "\n".join(f"{i + 1}. {s.strip()}" for i, s in enumerate(path.steps[:-1])) or "(none)"
        messages = [
            {"role": "system", "content": JUDGE_SYSTEM},
            {
                "role": "user",
                "content": JUDGE_QUESTION.format(
                    question=path.question, previous=previous, step=path.steps[-1].strip()
                ),
            },
        ]
        return self.judge.chat_prompt(messages)

    def score_last(self, paths: list[StepPath]) -> list[float]:
        probs = self.judge.choice_probs(
            [self._prompt(p) for p in paths], ["Yes", "No"], meter=self.env.meter, role="scorer"
        )
        return [p[0] for p in probs]
