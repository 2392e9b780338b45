"""Breaking gold steps on purpose, so that the first wrong step is known by construction.

Each perturbation takes (question, steps, rng) and returns (new steps, index of the first
wrong step), or None when it does not apply to these steps. Two families:

- errors in a stated result, which the arithmetic verifier can see: `wrong_number` (a
  result changed), `wrong_operation` (an operator swapped, the old result kept), and
  `dropped_step` (a step left out);
- semantic errors whose arithmetic is right, which no rule-based scorer can see:
  `semantic_operation` (the wrong operation) and `semantic_number` (a wrong number taken
  from the problem), each computed correctly and carried on consistently: every later
  calculation that used the changed result is recomputed, and so is the final answer.
"""

from __future__ import annotations

import random
import re
from fractions import Fraction

from .scorers.arithmetic import _evaluate, check_equations

_RESULT = re.compile(r"=\s*\$?(-?\d+(?:\.\d+)?)")
_OPERATION = re.compile(r"(\d)\s*([+\-*/x])\s*(\d)")
_SWAP = {"+": "-", "-": "+", "*": "+", "x": "+", "/": "*"}
_NUM = r"\d+(?:\.\d+)?"
# a calculation written out: operands and operators, "=", the stated result
_CALCULATION = re.compile(rf"(?<![\w.])((?:{_NUM}\s*[+\-*/x×]\s*)+{_NUM})\s*=\s*(\$?)\s*({_NUM})(?![\w.]\d)")
_TOKEN = re.compile(rf"{_NUM}|[+\-*/x×]")
_ANSWER_STEP = re.compile(rf"(The answer is\s*\$?)({_NUM})")


def _wrong_number(question: str, steps: list[str], rng: random.Random) -> tuple[list[str], int] | None:
    candidates = [i for i, s in enumerate(steps[:-1]) if _RESULT.search(s)]
    if not candidates:
        return None
    k = rng.choice(candidates)
    match = list(_RESULT.finditer(steps[k]))[-1]
    value = float(match.group(1))
    wrong = value + rng.choice([-3, -2, -1, 1, 2, 3, 10]) if value != int(value) or rng.random() < 0.7 else value * 2
    text = f"{wrong:g}" if wrong != int(wrong) else str(int(wrong))
    out = list(steps)
    out[k] = steps[k][: match.start(1)] + text + steps[k][match.end(1) :]
    return out, k


def _wrong_operation(question: str, steps: list[str], rng: random.Random) -> tuple[list[str], int] | None:
    candidates = [i for i, s in enumerate(steps[:-1]) if "=" in s and _OPERATION.search(s.split("=")[0])]
    if not candidates:
        return None
    k = rng.choice(candidates)
    left, sep, right = steps[k].partition("=")
    match = list(_OPERATION.finditer(left))[-1]  # the operation of the calculation that "=" closes
    swapped = left[: match.start(2)] + _SWAP[match.group(2)] + left[match.end(2) :]
    if check_equations(swapped + sep + right)[1] == 0:  # e.g. 2 * 2 -> 2 + 2 is still right
        return None
    out = list(steps)
    out[k] = swapped + sep + right
    return out, k


def _dropped_step(question: str, steps: list[str], rng: random.Random) -> tuple[list[str], int] | None:
    if len(steps) < 3:
        return None
    k = rng.randrange(0, len(steps) - 2)
    return steps[:k] + steps[k + 1 :], k  # the step now at k builds on the one that is gone


# --- semantic errors, carried on ---------------------------------------------------------------
def _fmt(value: Fraction) -> str | None:
    """A value as a step would write it: an integer, or a decimal of at most two places; None otherwise."""
    if value <= 0:
        return None
    if value.denominator == 1:
        return str(value.numerator)
    scaled = value * 100
    if scaled.denominator == 1:
        return f"{float(value):.2f}".rstrip("0").rstrip(".")
    return None


def _value(token: str) -> Fraction:
    return Fraction(token)


def _recompute(tokens: list[str]) -> Fraction | None:
    return _evaluate(" ".join(tokens))


def _rewrite(step: str, changed: dict[Fraction, Fraction]) -> tuple[str, dict[Fraction, Fraction]] | None:
    """The step with every calculation that used a changed value recomputed; the results that
    changed in turn. None when a new result is not a value a step would write."""
    out, last, more = [], 0, {}
    for match in _CALCULATION.finditer(step):
        tokens = _TOKEN.findall(match.group(1))
        new_tokens = [(_fmt(changed[_value(t)]) or t) if t[0].isdigit() and _value(t) in changed else t for t in tokens]
        if new_tokens == tokens:
            continue
        old_result, new_result = _value(match.group(3)), _recompute(new_tokens)
        text = _fmt(new_result) if new_result is not None else None
        if text is None:
            return None
        if new_result != old_result:
            more[old_result] = new_result
        out.append(step[last : match.start()] + " ".join(_spaced(new_tokens)) + " = " + match.group(2) + text)
        last = match.end()
    out.append(step[last:])
    return "".join(out), more


def _spaced(tokens: list[str]) -> list[str]:
    return ["*" if t in ("x", "×") else t for t in tokens]


def _carry_on(steps: list[str], k: int, new_step: str, old: Fraction, new: Fraction) -> list[str] | None:
    """Steps with step k replaced and the changed result carried through every later step and
    the final answer; None when the chain cannot be carried on consistently."""
    out = steps[:k] + [new_step]
    changed = {old: new}
    for step in steps[k + 1 :]:
        answer = _ANSWER_STEP.search(step)
        if answer:
            value = _value(answer.group(2))
            if value not in changed:
                return None  # the final answer does not depend on the change: not a consequential error
            out.append(step[: answer.start(2)] + _fmt(changed[value]) + step[answer.end(2) :])
            continue
        rewritten = _rewrite(step, changed)
        if rewritten is None:
            return None
        text, more = rewritten
        changed.update(more)
        out.append(text)
    return out if out[-1] != steps[-1] else None


def _semantic(question: str, steps: list[str], rng: random.Random, change) -> tuple[list[str], int] | None:
    candidates = [(i, m) for i, s in enumerate(steps[:-1]) for m in _CALCULATION.finditer(s)]
    rng.shuffle(candidates)
    for k, match in candidates[:6]:
        tokens = _TOKEN.findall(match.group(1))
        new_tokens = change(question, tokens, rng)
        if new_tokens is None:
            continue
        old, new = _value(match.group(3)), _recompute(new_tokens)
        text = _fmt(new) if new is not None else None
        if text is None or new == old:
            continue
        step = steps[k]
        new_step = (
            step[: match.start()] + " ".join(_spaced(new_tokens)) + " = " + match.group(2) + text + step[match.end() :]
        )
        carried = _carry_on(steps, k, new_step, old, new)
        if carried is not None and all(check_equations(s)[1] == 0 for s in carried):
            return carried, k
    return None


def _other_operation(question: str, tokens: list[str], rng: random.Random) -> list[str] | None:
    ops = [i for i, t in enumerate(tokens) if not t[0].isdigit()]
    i = rng.choice(ops)
    choices = [op for op in "+-*/" if op != _spaced([tokens[i]])[0]]
    rng.shuffle(choices)
    for op in choices:
        new = tokens[:i] + [op] + tokens[i + 1 :]
        value = _recompute(new)
        if value is not None and _fmt(value) is not None:
            return new
    return None


def _other_number(question: str, tokens: list[str], rng: random.Random) -> list[str] | None:
    given = list(dict.fromkeys(re.findall(rf"(?<![\w.]){_NUM}(?![\w.]\d)", question)))
    used = [i for i, t in enumerate(tokens) if t[0].isdigit() and t in given]
    if not used or len(given) < 2:
        return None
    i = rng.choice(used)
    others = [g for g in given if g != tokens[i]]
    return tokens[:i] + [rng.choice(others)] + tokens[i + 1 :]


def _semantic_operation(question: str, steps: list[str], rng: random.Random) -> tuple[list[str], int] | None:
    return _semantic(question, steps, rng, _other_operation)


def _semantic_number(question: str, steps: list[str], rng: random.Random) -> tuple[list[str], int] | None:
    return _semantic(question, steps, rng, _other_number)


STATED_RESULT = {"wrong_number": _wrong_number, "wrong_operation": _wrong_operation, "dropped_step": _dropped_step}
SEMANTIC = {"semantic_operation": _semantic_operation, "semantic_number": _semantic_number}
PERTURBATIONS = {**STATED_RESULT, **SEMANTIC}
FAMILIES = {"stated": tuple(STATED_RESULT), "semantic": tuple(SEMANTIC), "all": tuple(PERTURBATIONS)}


def perturb(question: str, steps: list[str], kinds: tuple[str, ...], rng: random.Random):
    """(broken steps, first wrong index, kind) from the first of `kinds` (in random order) that
    applies, or None."""
    for kind in rng.sample(list(kinds), len(kinds)):
        broken = PERTURBATIONS[kind](question, steps, rng)
        if broken is not None:
            return broken[0], broken[1], kind
    return None
