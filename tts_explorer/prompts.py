"""Prompt templates kept in assets/: a system prompt and few-shot worked examples, rendered
for a chat model through its chat template, or for a base model as a completion text
("format": "completion": "Question: ...\\nAnswer: ..." examples, then the problem).

A solution is a list of steps separated by a blank line; the prompt of a partial path is
the problem's prompt followed by each step and its "\\n\\n" separator. The template a
model is asked with is its own (policy/embedded.py names it for the models from the package
index), else DEFAULT_TEMPLATE.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .assets import asset
from .errors import UserError

STEP_SEPARATOR = "\n\n"
DEFAULT_TEMPLATE = "three_shot"  # the best measured for the embedded policy (README, "Prompt template")
BASE_TEMPLATE = "base_few_shot"  # for a base model (no chat template): a few-shot completion prompt


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    examples: tuple[tuple[str, str], ...]  # (question, step-by-step solution)
    completion: bool = False  # a base model's completion text, not a chat

    def prompt(self, policy, question: str) -> str:
        """The policy's prompt for a problem."""
        if not self.completion:
            return policy.chat_prompt(self.messages(question))
        head = f"{self.system}{STEP_SEPARATOR}" if self.system else ""
        shots = "".join(f"Question: {q}\nAnswer: {a}{STEP_SEPARATOR}\n" for q, a in self.examples)
        return f"{head}{shots}Question: {question}\nAnswer: "

    def messages(self, question: str) -> list[dict]:
        out = [{"role": "system", "content": self.system}] if self.system else []
        for example_q, example_a in self.examples:
            out += [{"role": "user", "content": example_q}, {"role": "assistant", "content": example_a}]
        return out + [{"role": "user", "content": question}]

    def warm_up_prompt(self, policy) -> str:
        """The template's prompt for an empty question: every problem's prompt starts with
        its tokens, so a backend that keeps them (policy.warm) prefills only the question."""
        return self.prompt(policy, "")


def load_template(name: str = DEFAULT_TEMPLATE) -> PromptTemplate:
    valid = sorted(p.stem for p in asset("prompts").glob("*.json"))
    if name not in valid:  # a name, never a path
        raise UserError(f"unknown prompt template {name!r}; valid: {', '.join(valid)}")
    path = asset("prompts", f"{name}.json")
    data = json.loads(path.read_text())
    return PromptTemplate(
        name,
        data.get("system", ""),
        tuple((e["question"], e["solution"]) for e in data.get("examples", [])),
        data.get("format", "chat") == "completion",
    )


def path_prompt(root_prompt: str, steps: list[str]) -> str:
    """The prompt that continues a path after its last step."""
    return root_prompt + "".join(step + STEP_SEPARATOR for step in steps)
