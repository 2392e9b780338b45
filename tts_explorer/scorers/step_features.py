"""What a calculator can say about each step of a path: the text features a probe PRM reads
beside the backbone's hidden states (the `probe` format's "text_features").

Per step, from the problem and the steps before it: whether its calculations are exact, whether
their operands and results are values already known (stated by the problem or computed by an
earlier step) or one operation away from them, whether it states numbers that come from
nowhere, whether it gives an answer and how that answer relates to what was computed, and the
same signals accumulated over the steps before it (a path stays wrong after its first wrong
step). Pure and bounded: at most MAX_TEXT characters of any text are read, and the
one-operation check looks at most MAX_KNOWN known values (so it costs at most MAX_KNOWN²).
Changing a feature changes what a trained probe reads: bump VERSION, and the loader refuses
checkpoints trained on another version.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

from ..answers import extract_answer, plain_number
from .arithmetic import check_equations, equation_spans

# a number as written: "1,200", "3.5", "$12", "40%"; not a digit inside a word or an ordinal
_NUMBER = re.compile(r"(?<![\w.])\$?(\d{1,3}(?:,\d{3})+|\d+)(\.\d+)?(%?)(?![\d])")
_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "forty": 40,
    "fifty": 50,
    "hundred": 100,
    "thousand": 1000,
    "dozen": 12,
    "twice": 2,
    "double": 2,
    "triple": 3,
    "half": Fraction(1, 2),
    "quarter": Fraction(1, 4),
    "third": Fraction(1, 3),
}
_WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")s?\b", re.IGNORECASE)
_STEP_NUMBERING = re.compile(r"^\s*(?:Step\s*\d+\s*[:.)]|\d+[.)]\s)", re.IGNORECASE)
MAX_TEXT = 4000  # characters of a step or problem read (longer text: its start)
MAX_DIGITS = 30  # a longer run of digits is not read as a number


def _written(text: str) -> list[list[Fraction]]:
    """Each number written in `text` as digits, as the values it stands for: its number, and for
    a percentage also its fraction (a run of over MAX_DIGITS digits is not a value a word
    problem states or computes)."""
    out = []
    for match in _NUMBER.finditer(text[:MAX_TEXT]):
        if len(match.group(1)) + len(match.group(2) or "") <= MAX_DIGITS:
            value = Fraction(match.group(1).replace(",", "") + (match.group(2) or ""))
            out.append([value, value / 100] if match.group(3) else [value])
    return out


def numbers(text: str) -> list[Fraction]:
    """The numbers written in `text` as digits; a percentage gives its number and its fraction."""
    return [value for values in _written(text) for value in values]


def problem_values(question: str) -> set[Fraction]:
    """The numbers a problem states, in digits or in words ("twice", "a dozen", "half")."""
    values = set(numbers(question))
    values.update(Fraction(_WORDS[m.group(1).lower()]) for m in _WORD.finditer(question[:MAX_TEXT]))
    return values


def stated_results(step: str) -> list[Fraction]:
    """The right-hand sides of the step's calculations and the numbers it writes outside them."""
    step = _STEP_NUMBERING.sub("", step[:MAX_TEXT])
    results = check_equations(step)[2]
    outside, cursor = [], 0
    for start, end in equation_spans(step):
        outside.append(step[cursor:start])
        cursor = end
    outside = " ".join(outside + [step[cursor:]])
    return results + numbers(outside)


MAX_KNOWN = 40
SMALL = {Fraction(v) for v in (1, 2, 3, 4, 5, 6, 7, 10, 12, 24, 52, 60, 100, 1000)}  # units, halves, dozens
NAMES = (
    "eq_any",
    "eq_right",
    "eq_wrong",
    "results_known",
    "results_one_op",
    "results_unknown",
    "claims_unknown",
    "no_numbers",
    "answer_step",
    "answer_is_last_result",
    "answer_was_computed",
    "answer_in_problem",
    "repeats_earlier",
    "log_chars",
    "position",
    "before_wrong",
    "before_unknown",
    "before_any_answer",
)
UNUSED_NAMES = ("given_unused_share", "given_unused_any", "answer_with_given_unused", "given_unused_count")
VERSIONS = {"calc-v1": NAMES, "calc-v2": NAMES + UNUSED_NAMES}  # version -> its columns, in order
VERSION = "calc-v2"  # what train-prm's probes read (calc-v1: the probes before it, still read)


def _one_op(value: Fraction, known: list[Fraction]) -> bool:
    """Whether value = a op b for known a, b (op one of + - * /), or a known value itself."""
    if value in known:
        return True
    for i, a in enumerate(known):
        for b in known[i:]:
            if value in (a + b, a * b, abs(a - b)) or (b and value == a / b) or (a and value == b / a):
                return True
    return False


def path_features(question: str, steps: list[str], version: str = VERSION) -> list[list[float]]:
    """One row of len(VERSIONS[version]) floats per step."""
    if version not in VERSIONS:
        raise ValueError(f"unknown text features {version!r}; known: {', '.join(VERSIONS)}")
    stated = [set(values) for values in _written(question)]  # a step may write each as any of its values
    written: set[Fraction] = set()
    given = problem_values(question)
    known: list[Fraction] = sorted(given)[:MAX_KNOWN]
    computed: list[Fraction] = []
    rows: list[list[float]] = []
    seen_texts: set[str] = set()
    before_wrong = before_unknown = before_answer = 0.0
    for index, raw in enumerate(steps):
        step = raw[:MAX_TEXT]
        right, wrong, results = check_equations(step)
        claims = [v for v in stated_results(step) if v not in results]
        pool = known[-MAX_KNOWN:]
        results_known = sum(r in pool for r in results)
        results_one_op = sum(_one_op(r, pool) for r in results)
        unknown_claims = sum(c not in SMALL and not _one_op(c, pool) for c in claims)
        stated_answer = extract_answer(step)
        answer = plain_number(stated_answer) if stated_answer is not None else None
        answer_step = stated_answer is not None
        n_results = max(len(results), 1)
        row = [
            float(bool(results or wrong)),
            min(right, 3) / 3,
            float(wrong > 0),
            results_known / n_results,
            results_one_op / n_results,
            float(len(results) - results_one_op > 0),
            float(unknown_claims > 0),
            float(not numbers(step)),
            float(answer_step),
            float(answer is not None and bool(computed) and answer == computed[-1]),
            float(answer is not None and answer in computed),
            float(answer is not None and answer in given),
            float(step.strip() in seen_texts),
            math.log1p(len(step)) / 8,
            min(index, 8) / 8,
            before_wrong,
            before_unknown,
            before_answer,
        ]
        if version != "calc-v1":
            written.update(numbers(step))
            unused = sum(not (alternatives & written) for alternatives in stated)
            row += [
                unused / max(len(stated), 1),
                float(unused > 0),
                float(answer_step and unused > 0),
                min(unused, 3) / 3,
            ]
        rows.append(row)
        seen_texts.add(step.strip())
        before_wrong = max(before_wrong, float(wrong > 0))
        before_unknown = max(before_unknown, float(len(results) - results_one_op > 0 or unknown_claims > 0))
        before_answer = max(before_answer, float(answer_step))
        for value in results + claims:
            if value not in known:
                known.append(value)
        computed += results
    return rows
