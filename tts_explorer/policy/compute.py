"""Counting what a search costs: tokens generated, prefilled and scored, FLOPs, wall time.

FLOPs are estimated as 2 x parameters x tokens processed, for the policy and the scorer
separately (attention's extra cost is left out, as in the TTS papers). The parameters that
count are those a token is multiplied with (`flops_params`): every weight matrix and the
output head, not the input embedding table, whose lookup multiplies nothing. A model whose
input embedding is tied to its output head (SmolLM2, Gemma 3: most of Gemma 3 270M's
parameters are its 262k-token vocabulary) counts that matrix once, as the head; an untied
one counts its head and leaves its input table out.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field


def flops_params(model) -> int:
    """Parameters a token is multiplied with: all of them but an input embedding table that is
    not also the output head (each shared tensor counted once)."""
    total = sum(p.numel() for p in model.parameters())
    embedding = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if embedding is None or (head is not None and head.weight is embedding.weight):
        return total
    return total - embedding.weight.numel()


_ADDING = threading.Lock()  # the decode loop's thread adds a search's tokens while its own thread adds its scorer's


@dataclass
class ComputeMeter:
    generated_tokens: int = 0  # tokens sampled by the policy
    prefill_tokens: int = 0  # prompt / path tokens the policy encoded
    scorer_tokens: int = 0  # tokens the scorer's model processed (prefill + generated)
    policy_flops: float = 0.0
    scorer_flops: float = 0.0
    started: float = field(default_factory=time.perf_counter)

    def add(self, role: str, n_params: int, generated: int = 0, prefill: int = 0) -> None:
        """Count a model call; role is "policy" or "scorer" (a model used to score steps)."""
        with _ADDING:
            self._add(role, n_params, generated, prefill)

    def _add(self, role: str, n_params: int, generated: int, prefill: int) -> None:
        if role == "policy":
            self.generated_tokens += generated
            self.prefill_tokens += prefill
            self.policy_flops += 2.0 * n_params * (generated + prefill)
        elif role == "scorer":
            self.scorer_tokens += generated + prefill
            self.scorer_flops += 2.0 * n_params * (generated + prefill)
        else:
            raise ValueError(f"unknown role {role!r}")

    def snapshot(self) -> dict:
        out = asdict(self)
        out.pop("started")
        out["wall_s"] = round(time.perf_counter() - self.started, 3)
        out["total_flops"] = self.policy_flops + self.scorer_flops
        return out

    def since(self, before: dict) -> dict:
        """The difference between now and an earlier snapshot (wall time included)."""
        now = self.snapshot()
        return {k: round(now[k] - before[k], 3) if isinstance(now[k], float) else now[k] - before[k] for k in now}
