"""Search settings: a dataclass that only validates, with the documented caps; the checks
every numeric or text field from a user goes through; the page's default search. What a
strategy adds to the rules (N a multiple of the beam width) its registry entry checks
(strategies/registry.py)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .errors import UserError
from .selection import AGGREGATIONS, SELECTIONS, check_choice

MAX_N = 256
MAX_STEP_TOKENS = 1024
MAX_STEPS = 40
MAX_QUESTION_CHARS = 4000
MAX_TEMPERATURE = 2.0
SOFTMAX_TEMPERATURES = (0.01, 100.0)  # particle filtering's resampling, REBASE's budget sharing


def _setting(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class SearchConfig:
    """One search's settings; each field's help is what the command line shows for its flag."""

    strategy: str = _setting("beam", "search strategy (strategies/__init__.py)")
    n: int = _setting(8, "budget N: generations (leaves) per problem")
    beam_width: int = _setting(4, "M: children per kept beam (beam, dvts)")
    max_steps: int = _setting(8, "most steps a solution may take")
    step_tokens: int = _setting(96, "max tokens of one step")
    final_tokens: int = _setting(256, "max tokens of the last step, which may run to the end")
    temperature: float = _setting(0.8, f"sampling temperature, 0 to {MAX_TEMPERATURE:g}")
    top_p: float = _setting(1.0, "nucleus sampling: the smallest set of tokens holding this probability")
    # the aggregation was measured best with the arithmetic verifier (README, "Aggregation and selection")
    aggregation: str = _setting("min", "how a path's step scores fold into its score")
    selection: str = _setting("prm_vote", "how the answer is chosen from the finished candidates")
    seed: int | None = _setting(0, "random seed of the sampling")
    resample_temperature: float = _setting(1.0, "particle filtering: temperature of the softmax of step scores")
    frontier_temperature: float = _setting(0.2, "REBASE: temperature of the softmax that shares the budget out")
    confidence_quantile: float = _setting(
        0.1, "DeepConf: a chain stops when its confidence falls below this quantile of the warm-up chains'"
    )
    warmup: int = _setting(4, "DeepConf: warm-up chains run to the end to set the threshold (part of the budget)")

    def __post_init__(self) -> None:
        def bad(msg: str) -> None:
            raise UserError(msg)

        for name in ("n", "beam_width", "max_steps", "step_tokens", "final_tokens"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                bad(f"{name} must be a positive integer, got {value!r}")
        for name in ("temperature", "top_p", "resample_temperature", "frontier_temperature", "confidence_quantile"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                bad(f"{name} must be a finite number, got {value!r}")
        if self.n > MAX_N:
            bad(f"n={self.n} is above the cap of {MAX_N}")
        if self.max_steps > MAX_STEPS:
            bad(f"max_steps={self.max_steps} is above the cap of {MAX_STEPS}")
        if max(self.step_tokens, self.final_tokens) > MAX_STEP_TOKENS:
            bad(f"tokens per step are capped at {MAX_STEP_TOKENS}")
        if not 0.0 <= float(self.temperature) <= MAX_TEMPERATURE:
            bad(f"temperature must be in [0, {MAX_TEMPERATURE:g}], got {self.temperature}")
        if not 0.0 < float(self.top_p) <= 1.0:
            bad(f"top_p must be in (0, 1], got {self.top_p}")
        low, high = SOFTMAX_TEMPERATURES
        for name in ("resample_temperature", "frontier_temperature"):
            if not low <= float(getattr(self, name)) <= high:
                bad(f"{name} must be in [{low:g}, {high:g}], got {getattr(self, name)}")
        if not 0.0 <= float(self.confidence_quantile) < 1.0:
            bad(f"confidence_quantile must be in [0, 1), got {self.confidence_quantile}")
        if not isinstance(self.warmup, int) or isinstance(self.warmup, bool) or not 1 <= self.warmup <= MAX_N:
            bad(f"warmup must be a whole number from 1 to {MAX_N}, got {self.warmup!r}")
        check_choice(self.aggregation, AGGREGATIONS, "aggregation")
        check_choice(self.selection, SELECTIONS, "selection")


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
