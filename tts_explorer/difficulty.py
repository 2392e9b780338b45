"""Difficulty as the compute-optimal papers bin it: the policy's own Pass@1 on a problem in
absolute bins (Liu et al. 2025), easy 50-100%, medium 10-50%, hard 0-10%, not quantiles."""

from __future__ import annotations

BINS = ("easy", "medium", "hard")


def difficulty_bin(pass_at_1: float | None) -> str | None:
    """easy: Pass@1 >= 50%, medium: 10-50%, hard: below 10% (absolute, not quantiles)."""
    if pass_at_1 is None:
        return None
    return "easy" if pass_at_1 >= 0.5 else "medium" if pass_at_1 >= 0.1 else "hard"
