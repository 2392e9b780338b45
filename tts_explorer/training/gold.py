"""Gold-aligned step labels: is a step of the policy's own solution right?

A step is right when its arithmetic holds (every "a op b = c" it writes is exact, as the
arithmetic verifier checks) and every result it states is a value of the problem's gold
solution (an intermediate result or the answer) or a number the problem states; a step that
gives the final answer is right only when that answer is the reference. From the first step
that is not right, every step is wrong. The gold values come from the gold steps: the
synthetic generator writes every calculation out, and a GSM8K row's solution states its
values (its `<<48/2=24>>` calculator notes give the same right-hand sides).

"Stated results" are the right-hand sides of the step's calculations and every number it
writes outside a calculation (a claim such as "So he has 12 apples."); the operands of a
calculation are free (a unit constant such as 60 minutes is fine) because a wrong operand
shows up in the result. Values are compared exactly as fractions, or rounded to two
decimals ("3.33" for 10/3), with "$", thousands commas and "%" read as the answer reader does.
"""

from __future__ import annotations

from fractions import Fraction

from ..answers import extract_answer, plain_number
from ..scorers.arithmetic import check_equations
from ..scorers.step_features import MAX_TEXT, numbers, problem_values, stated_results


def gold_values(steps: list[str], answer: str) -> set[Fraction]:
    """Every value the gold solution states (its results and its numbers) and the answer."""
    values = {v for step in steps for v in numbers(step)}
    values.update(r for step in steps for r in check_equations(step[:MAX_TEXT])[2])
    reference = plain_number(answer)
    if reference is not None:
        values.add(reference)
    return values


def _close(value: Fraction, allowed: set[Fraction]) -> bool:
    if value in allowed:
        return True
    try:
        rounded = round(float(value), 2)
        return any(round(float(a), 2) == rounded for a in allowed)
    except OverflowError:  # a huge value equals only itself
        return False


def step_is_right(step: str, allowed: set[Fraction], reference: Fraction | None) -> bool:
    """One step on its own: arithmetic exact, results allowed, a stated answer the reference."""
    if check_equations(step[:MAX_TEXT])[1]:
        return False
    answer = extract_answer(step[:MAX_TEXT])
    if answer is not None:
        value = plain_number(answer)
        if reference is None or value is None or not _close(value, {reference}):
            return False
    return all(_close(v, allowed) for v in stated_results(step))


def gold_labels(question: str, gold_steps: list[str], answer: str, steps: list[str]) -> list[float]:
    """1.0 for each right step of `steps` up to the first that is not, 0.0 from it on."""
    allowed = gold_values(gold_steps, answer) | problem_values(question)
    reference = plain_number(answer)
    labels, ok = [], True
    for step in steps:
        ok = ok and step_is_right(step, allowed, reference)
        labels.append(1.0 if ok else 0.0)
    return labels
