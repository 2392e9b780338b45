"""What the benchmark's sections share: the one place it reaches into a backend, and the
process's peak memory."""

from __future__ import annotations

import resource

from ..errors import UserError
from ..policy.local import TransformersPolicy


def engine_parts(policy):
    """The one place the benchmark reaches into a backend: the local engine's model, tokenizer
    and forward step (the naive baseline and llama.cpp are built from them)."""
    if not isinstance(policy, TransformersPolicy):
        raise UserError(f"the benchmark compares backends on a local model; {policy.name} is not one")
    return policy.model, policy.tokenizer, policy.step


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
