"""ProcessBench-style PRM evaluation, and a builder of such data from GSM8K gold solutions.

A sample is {"problem", "steps", "label"}: label is the index of the first wrong step, or
-1 when every step is right. A scorer flags the first step whose score is below a
threshold; metrics as in ProcessBench: accuracy on erroneous samples (the first error
found at the right step), accuracy on correct samples (nothing flagged), and their
harmonic mean (F1). Also a threshold sweep, and a length-bias check (step score against
step length). The builder turns gold solutions into correct step lists and into copies
with one step broken on purpose (a wrong number, a wrong operation, a dropped step), so
labels hold by construction (perturb.py).
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import Field, ValidationError, model_validator

from .answers import MAX_ANSWER_CHARS
from .config import MAX_QUESTION_CHARS
from .data import read_jsonl
from .perturb import FAMILIES, perturb
from .schema import Strict, Text, one_line
from .scorers.base import Scorer, StepPath
from .tree import MAX_DEPTH, MAX_STEP_CHARS

THRESHOLDS = [round(0.05 * i, 2) for i in range(1, 20)]
_CALC = re.compile(r"<<[^>]*>>")


@dataclass
class Sample:
    problem: str
    steps: list[str]
    label: int  # index of the first wrong step, -1 when all are right
    answer: str | None = None
    kind: str = "correct"


def gold_steps(answer_field: str) -> tuple[list[str], str]:
    """The step lines of a GSM8K gold solution (calculator notes removed) and its answer."""
    body, _, final = answer_field.rpartition("####")
    steps = [_CALC.sub("", line).strip() for line in body.strip().split("\n") if line.strip()]
    answer = final.strip().replace(",", "")
    return steps + [f"The answer is {answer}."], answer


def gsm8k_items(rows: list[dict]) -> list[tuple[str, list[str], str]]:
    """(question, gold steps, answer) of GSM8K rows."""
    return [(row["question"], *gold_steps(row["answer"])) for row in rows]


def build_samples(
    items: list[tuple[str, list[str], str]],
    seed: int = 0,
    error_share: float = 0.5,
    kinds: tuple[str, ...] = FAMILIES["stated"],
) -> list[Sample]:
    """One sample per (question, gold steps, answer): the gold steps, or (with probability
    error_share) a copy broken by one of `kinds` (perturb.py) where one applies."""
    rng = random.Random(seed)
    samples = []
    for question, steps, answer in items:
        sample = Sample(question, list(steps), -1, answer)
        if rng.random() < error_share:
            broken = perturb(question, list(steps), kinds, rng)
            if broken is not None:
                sample = Sample(question, broken[0], broken[1], answer, broken[2])
        samples.append(sample)
    return samples


def write_samples(samples: list[Sample], path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for s in samples:
            out.write(
                json.dumps(
                    {"problem": s.problem, "steps": s.steps, "label": s.label, "answer": s.answer, "kind": s.kind}
                )
                + "\n"
            )


MAX_SAMPLE_STEPS = MAX_DEPTH  # as many steps as a tree's path may hold


class SampleRow(Strict):
    """One ProcessBench-format row, as read from an untrusted file (other keys are ignored)."""

    model_config = {**Strict.model_config, "extra": "ignore"}
    problem: Text(MAX_QUESTION_CHARS) = Field(min_length=1)
    steps: list[Text(MAX_STEP_CHARS)] = Field(min_length=1, max_length=MAX_SAMPLE_STEPS)
    label: int = Field(ge=-1)
    answer: Text(MAX_ANSWER_CHARS) | None = None
    kind: Text(40) = ""

    @model_validator(mode="after")
    def _label_names_a_step(self):
        if self.label >= len(self.steps):
            raise ValueError(f"label {self.label} is past the last step ({len(self.steps) - 1})")
        return self


def _sample(row: dict, number: int) -> Sample:
    try:
        valid = SampleRow.model_validate(row)
    except ValidationError as exc:
        raise ValueError(one_line(exc)) from None
    return Sample(valid.problem, list(valid.steps), valid.label, valid.answer, valid.kind)


def read_samples(path: str | Path, limit: int | None = None) -> tuple[list[Sample], list[str]]:
    """(samples, one message per skipped row) from ProcessBench-format JSONL."""
    return read_jsonl(path, _sample, limit)


def step_labels(sample: Sample) -> list[float]:
    """1 for each step before the sample's first error, 0 from it on (all 1 without an error)."""
    first_wrong = len(sample.steps) if sample.label == -1 else sample.label
    return [float(i < first_wrong) for i in range(len(sample.steps))]


def first_flagged(scores: list[float], threshold: float) -> int:
    return next((i for i, s in enumerate(scores) if s < threshold), -1)


def metrics(samples: list[Sample], scores: list[list[float]], threshold: float) -> dict:
    wrong = [(s, sc) for s, sc in zip(samples, scores) if s.label != -1]
    right = [(s, sc) for s, sc in zip(samples, scores) if s.label == -1]
    error_acc = sum(first_flagged(sc, threshold) == s.label for s, sc in wrong) / max(len(wrong), 1)
    correct_acc = sum(first_flagged(sc, threshold) == -1 for _, sc in right) / max(len(right), 1)
    f1 = 0.0 if error_acc + correct_acc == 0 else 2 * error_acc * correct_acc / (error_acc + correct_acc)
    return {
        "threshold": threshold,
        "error_acc": error_acc,
        "correct_acc": correct_acc,
        "f1": f1,
        "erroneous": len(wrong),
        "correct": len(right),
    }


def sweep(samples: list[Sample], scores: list[list[float]]) -> list[dict]:
    """Metrics at every candidate threshold: a fixed grid, and the percentiles of these step
    scores (so a scorer whose scores sit in a narrow range is tuned as finely as any other)."""
    values = sorted(v for row in scores for v in row)
    percentiles = {values[min(len(values) - 1, len(values) * k // 100)] for k in range(1, 100)} if values else set()
    return [metrics(samples, scores, t) for t in sorted(set(THRESHOLDS) | percentiles)]


def pearson(xs: list[float], ys: list[float]) -> float | None:
    n = len(xs)
    if n < 3:
        return None
    mx, my = sum(xs) / n, sum(ys) / n
    vx = sum((x - mx) ** 2 for x in xs)
    vy = sum((y - my) ** 2 for y in ys)
    if vx == 0 or vy == 0:
        return None
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / (vx * vy) ** 0.5


def length_bias(samples: list[Sample], scores: list[list[float]]) -> float | None:
    """Pearson correlation of step score with step length (characters), over every step."""
    pairs = [(len(step), value) for s, sc in zip(samples, scores) for step, value in zip(s.steps, sc)]
    return pearson([p[0] for p in pairs], [p[1] for p in pairs])


def calibration(samples: list[Sample], scores: list[list[float]], policy, root_prompt, rollouts: int = 4) -> dict:
    """Step scores against Monte-Carlo values (share of rollouts from the step that reach
    the sample's reference answer), for samples that carry an answer."""
    from .scorers import ScorerEnv, make_scorer

    ours, values = [], []
    for sample, row in zip(samples, scores):
        if not sample.answer:
            continue
        oracle = make_scorer("mc-rollout-oracle", ScorerEnv(policy=policy, reference=sample.answer), rollouts=rollouts)
        ours += row
        values += score_samples(oracle, [sample], root_prompt)[0]
    if not ours:
        return {"steps": 0, "pearson": None, "mean_abs_diff": None}
    return {
        "steps": len(ours),
        "pearson": pearson(ours, values),
        "mean_abs_diff": sum(abs(a - b) for a, b in zip(ours, values)) / len(ours),
    }


def score_samples(scorer: Scorer, samples: list[Sample], root_prompt=lambda q: "") -> list[list[float]]:
    paths = [StepPath(s.problem, root_prompt(s.problem), tuple(s.steps)) for s in samples]
    return scorer.score_steps(paths)


def roc_auc(scores: list[float], positives: list[bool]) -> float | None:
    """Area under the ROC curve (the chance that a random positive scores above a random
    negative, ties counted half); None when either class is missing."""
    pairs = sorted(zip(scores, positives))
    n_pos = sum(positives)
    n_neg = len(pairs) - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    rank_sum, i = 0.0, 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            j += 1
        mean_rank = (i + j + 1) / 2  # 1-based ranks i+1..j share their mean
        rank_sum += mean_rank * sum(p for _, p in pairs[i:j])
        i = j
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
