"""A rule-based verifier: checks the calculations a step states (e.g. "4 * 6 = 24").

Each run of numbers and operators joined by "=" is split at "=" and every side that is
plain arithmetic is evaluated exactly (Python's ast with Fractions: no eval, no names).
Score of a step: 0.05 when any stated result is wrong, 0.9 when all are right, and for
a step without calculations 0.5, or for a step that gives the answer 0.8 when that
number was computed earlier in the path and 0.4 when it was not. It reads no model, so
it costs nothing, and it cannot judge reasoning that is not written as arithmetic.

Linear in the text's length: calculations are found by one scan for runs of arithmetic
characters (no pattern with nested or adjacent unbounded quantifiers, which a run of digits
and spaces makes cubic), and an expression longer than MAX_EXPRESSION characters is not
evaluated.
"""

from __future__ import annotations

import ast
import functools
import operator
import re
from fractions import Fraction

from ..answers import extract_answer
from .base import Scorer, StepPath

# a run of characters a calculation is written with ("=" included); one character class: linear
_RUN = re.compile(r"[\d\s.,+\-*/×x÷()$%=]+")
_STARTS, _ENDS = set("0123456789$("), set("0123456789)")
MAX_EXPRESSION = 200  # characters of one side of a calculation; longer is not a calculation here


def equation_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) of each written calculation: a run of arithmetic characters holding "=",
    from its first digit, "$" or "(" to its last digit or ")"."""
    spans = []
    for match in _RUN.finditer(text):
        run = match.group()
        if "=" not in run:
            continue
        first = next((i for i, c in enumerate(run) if c in _STARTS), None)
        last = next((i for i in range(len(run) - 1, -1, -1) if run[i] in _ENDS), None)
        if first is not None and last is not None and "=" in run[first : last + 1]:
            spans.append((match.start() + first, match.start() + last + 1))
    return spans


_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv}


def _evaluate(expr: str) -> Fraction | None:
    """Exact value of a plain arithmetic expression, or None when it is not one."""
    if len(expr) > MAX_EXPRESSION:
        return None
    text = expr.replace("$", "").replace("×", "*").replace("÷", "/").replace("x", "*").strip()
    text = re.sub(r"(?<=\d),(?=\d{3}\b)", "", text).rstrip(".,% ").strip()
    text = re.sub(r"(\d+(?:\.\d+)?)%", r"(\1/100)", text)
    if not text or not re.fullmatch(r"[\d\s.+\-*/()]+", text):
        return None
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        return None

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)):
            return Fraction(str(node.value))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = walk(node.left), walk(node.right)
            if isinstance(node.op, ast.Div) and right == 0:
                raise ZeroDivisionError
            return _OPS[type(node.op)](left, right)
        raise ValueError("not arithmetic")

    try:
        return walk(tree)
    except (ValueError, ZeroDivisionError, TypeError):
        return None


@functools.lru_cache(maxsize=8192)  # the steps of a tree's paths are read again and again (keys: texts it holds)
def _equations(text: str) -> tuple[int, int, tuple[Fraction, ...]]:
    right, wrong, results = _check(text)
    return right, wrong, tuple(results)


def check_equations(text: str) -> tuple[int, int, list[Fraction]]:
    """(right, wrong, stated results) over the equations written in `text`."""
    right, wrong, results = _equations(text)
    return right, wrong, list(results)


def _check(text: str) -> tuple[int, int, list[Fraction]]:
    right = wrong = 0
    results: list[Fraction] = []
    text = re.sub(r"%\s*of\s+", "% * ", text)  # "50% of 40" is 50/100 * 40
    for start, end in equation_spans(text):
        values = [_evaluate(part) for part in text[start:end].split("=")]
        for a, b in zip(values, values[1:]):
            if a is None or b is None:
                continue
            if abs(a - b) <= abs(b) * Fraction(1, 1000) + Fraction(1, 100):  # rounded results pass
                right += 1
            else:
                wrong += 1
            results.append(b)
    return right, wrong, results


def _number(text: str | None) -> Fraction | None:
    return None if text is None else _evaluate(text.replace(",", ""))


class ArithmeticScorer(Scorer):
    name = "arithmetic"

    def score_last(self, paths: list[StepPath]) -> list[float]:
        return [self._score(p) for p in paths]

    def _score(self, path: StepPath) -> float:
        step = path.steps[-1]
        right, wrong, _ = check_equations(step)
        if wrong:
            return 0.05
        answer = _number(extract_answer(step))
        if answer is not None:
            computed = {r for s in path.steps for r in check_equations(s)[2]}
            return 0.8 if answer in computed else 0.4
        return 0.9 if right else 0.5
