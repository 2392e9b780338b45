"""Search settings: a dataclass that only validates, with the documented caps; the checks
every numeric or text field from a user goes through; the page's default search."""
from __future__ import annotations

import math
from dataclasses import dataclass

from .errors import UserError

MAX_N = 256
MAX_STEP_TOKENS = 1024
MAX_STEPS = 40
MAX_QUESTION_CHARS = 4000
AGGREGATIONS = ("last", "min", "avg", "prod")
SELECTIONS = ("majority", "prm_max", "prm_vote")


@dataclass
class SearchConfig:
    strategy: str = "beam"
    n: int = 8  # budget: number of generations (leaves) per problem
    beam_width: int = 4  # M: children per kept beam (beam search, DVTS)
    max_steps: int = 8
    step_tokens: int = 96  # max tokens of one step
    final_tokens: int = 256  # max tokens of the last step, which may run to the end
    temperature: float = 0.8
    top_p: float = 1.0
    aggregation: str = "min"  # measured best with the arithmetic verifier (README, "Aggregation and selection")
    selection: str = "prm_vote"
    seed: int | None = 0

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise UserError(msg)

        for name in ("n", "beam_width", "max_steps", "step_tokens", "final_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(f"{name} must be a positive integer, got {value!r}")
        for name in ("temperature", "top_p"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                bad(f"{name} must be a finite number, got {value!r}")
        if self.n > MAX_N:
            bad(f"n={self.n} is above the cap of {MAX_N}")
        if self.max_steps > MAX_STEPS:
            bad(f"max_steps={self.max_steps} is above the cap of {MAX_STEPS}")
        if max(self.step_tokens, self.final_tokens) > MAX_STEP_TOKENS:
            bad(f"tokens per step are capped at {MAX_STEP_TOKENS}")
        from .strategies import get_strategy  # noqa: PLC0415 (the registry imports this module)

        if get_strategy(self.strategy).width_divides:
            if self.beam_width > self.n:
                bad(f"beam width M={self.beam_width} is larger than N={self.n}")
            if self.n % self.beam_width:
                bad(f"N={self.n} must be a multiple of the beam width M={self.beam_width}")
        if not 0.0 <= float(self.temperature) <= 2.0:
            bad(f"temperature must be in [0, 2], got {self.temperature}")
        if not 0.0 < float(self.top_p) <= 1.0:
            bad(f"top_p must be in (0, 1], got {self.top_p}")
        if self.aggregation not in AGGREGATIONS:
            bad(f"unknown aggregation {self.aggregation!r}; valid: {', '.join(AGGREGATIONS)}")
        if self.selection not in SELECTIONS:
            bad(f"unknown selection {self.selection!r}; valid: {', '.join(SELECTIONS)}")


# The page's default search: the controls start here, and the benchmark's "page default" runs it.
PAGE_DEFAULTS = SearchConfig(strategy="beam", n=8, beam_width=2, max_steps=6, step_tokens=64, final_tokens=96)


def whole_number(value, name: str, low: int, high: int) -> int:
    """An integer in [low, high] from a field that may hold a float, a string or NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{name} must be a whole number")
    try:
        number = float(value) if not isinstance(value, int) else value
    except (ValueError, OverflowError):
        raise UserError(f"{name} must be a whole number") from None
    if isinstance(number, float) and (not math.isfinite(number) or not number.is_integer()):
        raise UserError(f"{name} must be a whole number, got {str(value)[:20]}")
    number = int(number)
    if not low <= number <= high:
        raise UserError(f"{name} must be between {low} and {high}, got {number}")
    return number


def real_number(value, name: str, low: float, high: float) -> float:
    """A finite float in [low, high] from a field that may hold a string, NaN or infinity."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise UserError(f"{name} must be a number")
    try:
        number = float(value)
    except (ValueError, OverflowError):
        raise UserError(f"{name} must be a number") from None
    if not math.isfinite(number) or not low <= number <= high:
        raise UserError(f"{name} must be a number between {low:g} and {high:g}")
    return number


def check_text(value, name: str, max_chars: int, required: bool = True) -> str:
    """Stripped text that UTF-8 can encode (no lone surrogates), within its length cap."""
    if value is None:
        value = ""
    if not isinstance(value, str):
        raise UserError(f"{name} must be text")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UserError(f"{name} is not valid Unicode text (it holds a lone surrogate)") from None
    text = value.strip()
    if required and not text:
        raise UserError(f"{name} is empty")
    if len(text) > max_chars:
        raise UserError(f"{name} is {len(text)} characters long; the cap is {max_chars}")
    return text


def check_question(question) -> str:
    return check_text(question, "the problem", MAX_QUESTION_CHARS)
