"""What a visitor may choose, as the operator configured it (environment variables).

TTS_MODELS: comma-separated policy sources ("embedded", a GGUF file, a model directory);
TTS_SCORERS: comma-separated scorer names. The page offers only these; nothing typed in
the browser becomes a path, a hub id or trust_remote_code.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from ..scorers import DEFAULT_SCORER, SCORERS, check_scorer_name

UPLOAD_LIMIT_BYTES = 5 * 1024 * 1024
UI_MAX_N = 64  # the page's cap on N (the engine's cap is higher, for the CLI)


@dataclass(frozen=True)
class Settings:
    models: tuple[str, ...]
    scorers: tuple[str, ...]

    @classmethod
    def from_env(cls) -> "Settings":
        models = tuple(m.strip() for m in os.environ.get("TTS_MODELS", "embedded").split(",") if m.strip())
        default_scorers = ",".join(s for s in SCORERS if s != "mc-rollout-oracle") + ",mc-rollout-oracle"
        scorers = tuple(check_scorer_name(s.strip())
                        for s in os.environ.get("TTS_SCORERS", default_scorers).split(",") if s.strip())
        return cls(models or ("embedded",), scorers or (DEFAULT_SCORER,))
