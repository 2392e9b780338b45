"""Answers: reading the final answer a step states, and deciding which answers are equal,
in bounded time whatever the text.

Extraction ends a path only on a value the reader can parse: the last closed `\\boxed{}`,
or "The answer is" followed by a number (units allowed, arithmetic words not) or a short
math expression. Equality goes through canonical keys, so grouping N answers costs N key
computations, never N² comparisons: plain numbers are keyed exactly here (fractions, no
sympy); anything else is keyed by math-verify in the bounded worker (mathcheck.py),
within a time budget per request. An answer that is too long, looks explosive
("9^{9^{9}}") or runs over the budget is keyed by its text alone, so it equals only
itself, and the Comparer keeps a note saying so.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from fractions import Fraction

from .mathcheck import WORKER, MathTimeout, MathUnavailable

MAX_ANSWER_CHARS = 200
CALL_LIMIT_S = 2.0  # one math-verify call
REQUEST_BUDGET_S = 6.0  # all the math-verify calls of one request (a selection, an import)
CACHE_SIZE = 4096

_PHRASE = re.compile(r"\bthe\s+(?:final\s+)?answer\s+is\b|\banswer\s*[:=]", re.IGNORECASE)
_NUMBER = r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:/\d+)?"
_NUMBER_THEN_WORDS = re.compile(rf"(?:\\\$|\$)?\s*({_NUMBER})\s*(?:\\?%)?\s*\$?\s*(.*)", re.DOTALL)
# words after a number that make it part of a calculation or a sentence, not the answer
_NOT_UNITS = {
    "minus",
    "plus",
    "times",
    "divided",
    "multiplied",
    "over",
    "less",
    "more",
    "fewer",
    "than",
    "and",
    "or",
    "not",
    "but",
    "if",
    "when",
    "after",
    "before",
    "because",
    "since",
    "yet",
    "so",
    "then",
    "added",
    "subtracted",
    "take",
    "away",
    "from",
    "is",
    "are",
    "was",
    "will",
    "would",
    "should",
}
_EXPRESSION = re.compile(r"[\w\\{}^+\-*/().,|\[\] ]+")


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    i, depth = start + len("\\boxed{"), 1
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def _sentence(rest: str) -> tuple[str, bool]:
    """The text up to the end of its sentence, and whether an end was seen (a full stop that
    is not a decimal point, "!", "?" or a line break)."""
    match = re.search(r"[.!?](?=\s|$)|\n", rest)
    if match is None:
        return rest, False
    return rest[: match.start()], True


def _stated_value(tail: str) -> str | None:
    """The value after "the answer is": a number (with units at most), else a short expression."""
    tail = tail.strip().strip("*").lstrip(":").strip()
    if "=" in tail:  # "The answer is 3 + 4 = 7 apples": the result
        tail = tail.rsplit("=", 1)[1].strip()
    match = _NUMBER_THEN_WORDS.fullmatch(tail)
    if match:
        words = re.findall(r"[^\W\d_]+|\d", match.group(2))
        if len(words) <= 4 and not any(w.isdigit() or w.lower() in _NOT_UNITS for w in words):
            return match.group(1).replace(",", "")
        return None
    expression = tail.strip("$ ").strip()
    plain_words = [w for w in re.findall(r"(?<!\\)\b[^\W\d_]{2,}\b", expression)]
    if (
        0 < len(expression) <= 30
        and _EXPRESSION.fullmatch(expression)
        and not plain_words
        and re.search(r"[\d\\]", expression)
        and expression.count("{") == expression.count("}")
    ):
        return expression
    return None


def extract_answer(text: str, complete: bool = True) -> str | None:
    """The final answer a solution states, or None. `complete=False` says the text may have
    been cut (the token limit): an answer running into the cut is not trusted."""
    boxed = _last_boxed(text)
    if boxed is not None:
        boxed = boxed.strip()
        return boxed if 0 < len(boxed) <= MAX_ANSWER_CHARS else None
    matches = list(_PHRASE.finditer(text))
    if not matches:
        return None
    sentence, ended = _sentence(text[matches[-1].end() :])
    if not complete and not ended:
        return None
    return _stated_value(sentence)


def gold_answer(answer_field: str) -> str:
    """The reference answer of a GSM8K row ('... #### 42') or a MATH row ('42')."""
    if "####" in answer_field:
        return answer_field.rsplit("####", 1)[1].strip().replace(",", "")
    return answer_field.strip()


# --- canonical keys ------------------------------------------------------------------------
_SPACING = re.compile(r"\\[!,;: ]|\\(?:left|right|displaystyle)\b")


def normalize(text: str) -> str:
    """Whitespace, $ signs, LaTeX spacing and a final full stop removed; dfrac/tfrac as frac."""
    text = _SPACING.sub("", text.strip()).replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = text.strip().strip("$").strip().rstrip(".").strip()
    return " ".join(text.split())


def plain_number(text: str) -> Fraction | None:
    """The exact value of a plain number ("1,200", "-3.5", "3/4", "\\frac{3}{4}", "$5", "20%"), else None."""
    text = text.removeprefix("\\$").removeprefix("$").strip().removesuffix("\\%").removesuffix("%").strip()
    if len(text) > 60:
        return None
    frac = re.fullmatch(r"([-+]?)\\frac\{(\d+)\}\{(\d+)\}", text)
    if frac:
        text = f"{frac.group(1)}{frac.group(2)}/{frac.group(3)}"
    if not re.fullmatch(_NUMBER, text):
        return None
    try:
        return Fraction(text.replace(",", ""))
    except (ValueError, ZeroDivisionError):
        return None


def looks_explosive(text: str) -> bool:
    """True for inputs that make sympy compute without end: a power of a power, a huge exponent
    or factorial. Refused before the worker sees them (saves a restart)."""
    for match in re.finditer(r"\^|\*\*", text):
        rest = text[match.end() :].lstrip()
        if rest.startswith("{"):
            depth, end = 0, len(rest)
            for i, char in enumerate(rest):
                depth += {"{": 1, "}": -1}.get(char, 0)
                if depth == 0:
                    end = i
                    break
            exponent = rest[1:end]
        else:
            exponent = re.match(r"[-+]?[\w.]*", rest).group(0)
            end = len(exponent)
        after = rest[end + (1 if rest.startswith("{") else 0) :].lstrip()
        tower = after.startswith(("^", "**"))  # a^b^c is a^(b^c)
        if tower or "^" in exponent or "**" in exponent or len(re.sub(r"\D", "", exponent)) > 4:
            return True
    return bool(re.search(r"\d{4,}\s*!", text))


class _LRU:
    def __init__(self, size: int):
        self.size, self.items, self.lock = size, OrderedDict(), threading.Lock()

    def get(self, key):
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key, value) -> None:
        with self.lock:
            self.items[key] = value
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)


_KEYS = _LRU(CACHE_SIZE)  # normalized text -> (key, note or None); pure functions of the text
_VERDICTS = _LRU(CACHE_SIZE)  # (normalized answer, normalized reference) -> bool


def _frozen(value):
    return tuple(_frozen(v) for v in value) if isinstance(value, list) else value


def _short(text: str) -> str:
    return text if len(text) <= 40 else text[:39] + "…"


class Comparer:
    """Answer keys and equivalence for one request, within one time budget; collects notes
    about answers it could not compare (each then equals only answers with the same text)."""

    MAX_NOTES = 10

    def __init__(self, budget_s: float = REQUEST_BUDGET_S):
        self.deadline = time.monotonic() + budget_s
        self._notes: list[str] = []
        self._seen: set[str] = set()
        self._more = 0  # notes beyond MAX_NOTES, counted only

    @property
    def notes(self) -> list[str]:
        return self._notes + ([f"and {self._more} more answers like these"] if self._more else [])

    def _note(self, text: str, why: str) -> None:
        note = f"answer “{_short(text)}” {why}; it counts as equal only to the same text"  # text as it is
        if note in self._seen:
            return
        self._seen.add(note)
        if len(self._notes) < self.MAX_NOTES:
            self._notes.append(note)
        else:
            self._more += 1

    def _worker(self, op: str, args: list):
        """(result, why not, whether the outcome is a fact about the text) of a bounded worker
        call within what is left of the budget."""
        left = self.deadline - time.monotonic()
        if left <= 0.05:
            return None, "was not compared: this request's time for math checks ran out", False
        limit = min(CALL_LIMIT_S, left)
        try:
            return WORKER.call(op, args, limit), None, True
        except MathTimeout:
            return None, f"could not be compared within {limit:.1f} s", limit >= CALL_LIMIT_S
        except MathUnavailable as exc:
            return None, f"was not compared ({exc})", False

    def key(self, text: str) -> tuple:
        norm = normalize(text)
        number = plain_number(norm)
        if number is not None:
            return ("num", number.numerator, number.denominator)
        found = _KEYS.get(norm)
        if found is None:
            if len(norm) > MAX_ANSWER_CHARS:
                found = (("text", norm), f"is longer than {MAX_ANSWER_CHARS} characters")
            elif looks_explosive(norm):
                found = (("text", norm), "is too costly to evaluate (a power of a power or a huge number)")
            else:
                result, why, fact = self._worker("key", [norm])
                found = (("text", norm) if result is None else _frozen(result), why)
                if not fact:
                    self._note(text, why)
                    return found[0]
            _KEYS.put(norm, found)
        if found[1] is not None:
            self._note(text, found[1])
        return found[0]

    def equivalent(self, a: str | None, b: str | None) -> bool:
        """True when two answers are mathematically equal; False when not, or not decidable in time."""
        if a is None or b is None:
            return False
        ka, kb = self.key(a), self.key(b)
        if ka == kb:
            return True
        if ka[0] in ("num", "text") and kb[0] in ("num", "text"):
            return False  # exact numbers differ, or a side could only be compared as text
        pair = (normalize(a), normalize(b))
        verdict = _VERDICTS.get(pair)
        if verdict is None:
            result, why, fact = self._worker("verify", [pair[1], pair[0]])
            verdict = bool(result)
            if why is not None:
                self._note(a, why)
            if fact:
                _VERDICTS.put(pair, verdict)
        return verdict

    def group(self, answers: Sequence[str]) -> list[list[int]]:
        """Indices of `answers` grouped by equal keys, groups in order of first appearance."""
        groups: dict[tuple, list[int]] = {}
        for i, answer in enumerate(answers):
            groups.setdefault(self.key(answer), []).append(i)
        return list(groups.values())


def equivalent(a: str | None, b: str | None) -> bool:
    """Comparer().equivalent for a single comparison."""
    return Comparer().equivalent(a, b)
