"""What a visitor may choose, as the operator configured it (environment variables).

TTS_MODELS: comma-separated policy sources ("embedded", a GGUF file, a model directory);
TTS_SCORERS: comma-separated scorers, each a name ("arithmetic") or, for a learned PRM,
FORMAT:MODEL ("qwen-prm:/models/Qwen2.5-Math-PRM-7B"); TTS_TRUST_REMOTE_CODE=1 lets
those PRMs run their own modelling code. The page offers only these; nothing typed in
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
    scorers: tuple[str, ...]  # entries as the page shows them: NAME or FORMAT:MODEL
    trust_remote_code: bool = False

    def scorer(self, entry: str) -> tuple[str, dict]:
        """(scorer name, options) for an offered entry."""
        name, _, model = entry.partition(":")
        options = {"model": model} if model else {}
        if model and self.trust_remote_code:
            options["trust_remote_code"] = True
        return name, options

    @classmethod
    def from_env(cls) -> "Settings":
        models = tuple(m.strip() for m in os.environ.get("TTS_MODELS", "embedded").split(",") if m.strip())
        default_scorers = ",".join(s for s in SCORERS if s != "mc-rollout-oracle") + ",mc-rollout-oracle"
        scorers = tuple(s.strip() for s in os.environ.get("TTS_SCORERS", default_scorers).split(",") if s.strip())
        for entry in scorers:
            check_scorer_name(entry.partition(":")[0])
        return cls(models or ("embedded",), scorers or (DEFAULT_SCORER,),
                   os.environ.get("TTS_TRUST_REMOTE_CODE") == "1")
