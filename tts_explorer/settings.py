"""What a visitor may choose, as the operator configured it (environment variables).

TTS_MODELS: comma-separated policy sources ("embedded", a GGUF file, a model directory);
TTS_SCORERS: comma-separated scorers, each a name ("arithmetic") or, for a learned PRM,
FORMAT:MODEL ("qwen-prm:/models/Qwen2.5-Math-PRM-7B"); TTS_TRUST_REMOTE_CODE=1 lets
those PRMs run their own modelling code; TTS_RUN_SECONDS and TTS_RUN_TOKENS cap one run
(a run over a cap stops like Stop, keeping its tree), as does TTS_RUN_MEMORY_MB (the
process's resident memory); TTS_SESSION_IDLE_SECONDS drops a session's tree and files after
that long unused, TTS_MAX_SESSIONS caps the sessions kept; TTS_SEARCH_SLOTS is how many searches
run at once (SEARCH_SLOTS; the local engine runs their calls in one decode loop). The page offers only these, and by
default only scorers that can run; nothing typed in the browser becomes a path, a hub
id or trust_remote_code.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from .errors import UserError
from .policy.embedded import EMBEDDED
from .runs import ScorerChoice
from .scorers import SCORERS, can_score, check_scorer_name, default_scorer
from .search import RunLimits
from .tree import MAX_BYTES

UPLOAD_LIMIT_BYTES = MAX_BYTES  # an uploaded file (a tree, ProcessBench rows, eval results): the tree's cap
UI_MAX_N = 64  # the page's cap on N (the engine's cap is higher, for the CLI)
UI_MAX_STEPS = 12
UI_MAX_BEAM_WIDTH = 16
UI_MAX_SOFTMAX_TEMPERATURE = 5.0  # the page's sliders for particle filtering's and REBASE's temperatures
UI_MAX_CONFIDENCE_QUANTILE = 0.95  # DeepConf's threshold quantile (the settings take any below 1)
RUN_SECONDS = 120.0  # default caps on one run from the page
RUN_TOKENS = 50_000
RUN_MEMORY_MB = 6_000  # the process's resident memory at which a run stops
SESSION_IDLE_S = 900.0  # a session unused this long is dropped (its tree and files)
MAX_SESSIONS = 200  # sessions whose state Gradio keeps (the least recently used go first)
# searches run at once: the local engine runs the waiting calls of all of them as one batch, a
# server batches them itself (README, "Many visitors at once": 8 beam searches 1.37x one at a time)
SEARCH_SLOTS = 8


def _positive(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, got {raw!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UserError(f"{name} must be a positive number, got {raw!r}")
    return value


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    scorers: tuple[str, ...]  # entries as the page shows them: NAME or FORMAT:MODEL
    trust_remote_code: bool = False
    limits: RunLimits = RunLimits(RUN_SECONDS, RUN_TOKENS, RUN_MEMORY_MB)
    search_slots: int = SEARCH_SLOTS
    session_idle_s: float = SESSION_IDLE_S
    max_sessions: int = MAX_SESSIONS

    def scorer(self, entry: str) -> ScorerChoice:
        """The scorer of an offered entry (NAME, or FORMAT:MODEL)."""
        return ScorerChoice.parse(entry, self.trust_remote_code)

    @classmethod
    def from_env(cls) -> Settings:
        models = tuple(m.strip() for m in os.environ.get("TTS_MODELS", EMBEDDED).split(",") if m.strip())
        runnable = ",".join(
            dict.fromkeys(
                [default_scorer(models)]
                + [name for name, scorer in SCORERS.items() if not scorer.needs_model and can_score(name, models)]
            )
        )
        scorers = tuple(s.strip() for s in os.environ.get("TTS_SCORERS", runnable).split(",") if s.strip())
        for entry in scorers:
            name, _, model = entry.partition(":")
            if SCORERS[check_scorer_name(name)].needs_model and not model:
                raise UserError(f"TTS_SCORERS: the {name} scorer needs a model: write {name}:/path/to/model")
        limits = RunLimits(
            _positive("TTS_RUN_SECONDS", RUN_SECONDS),
            int(_positive("TTS_RUN_TOKENS", RUN_TOKENS)),
            _positive("TTS_RUN_MEMORY_MB", RUN_MEMORY_MB),
        )
        slots = _positive("TTS_SEARCH_SLOTS", SEARCH_SLOTS)
        if slots != int(slots) or slots > 64:
            raise UserError(f"TTS_SEARCH_SLOTS must be a whole number from 1 to 64, got {slots:g}")
        return cls(
            models or (EMBEDDED,),
            scorers or (default_scorer(models),),
            os.environ.get("TTS_TRUST_REMOTE_CODE") == "1",
            limits,
            int(slots),
            _positive("TTS_SESSION_IDLE_SECONDS", SESSION_IDLE_S),
            int(_positive("TTS_MAX_SESSIONS", MAX_SESSIONS)),
        )
