"""Confidence-filtered voting with early stop, DeepConf online (Fu et al. 2025, arXiv
2508.15260): chains whose running confidence falls below a threshold learned from a few
warm-up chains stop early; the answer is a confidence-weighted vote.

The policy's own confidence of a step is exp(its mean token log-prob); a chain's running
confidence is the mean of its last two steps' (DeepConf's sliding window, over steps here:
the policy interface reports log-probs per step). First `warmup` chains run to the end; the
threshold is the `confidence_quantile` quantile of their lowest running confidence (0.1:
keep chains at least as confident as the least confident tenth of the warm-up). Then the
other N - warmup chains run side by side (each going on as soon as its step ends:
grow_chains), and after every step a chain whose running confidence is below the threshold is
stopped (pruned, its confidence kept on the node). Finished chains vote with their path
confidence (selection "confidence_vote"). No scorer is needed; what was learned and what was
saved is recorded in the tree (meta "deepconf").
"""

from __future__ import annotations

import dataclasses
import math

from .base import SearchContext, grow_chains
from .sampling import independent_chains

WINDOW = 2  # steps in the running confidence


def window_confidence(logprobs) -> float:
    """The mean of the last WINDOW steps' confidences, exp(mean token log-prob), of a path's mean
    log-probs (None where unknown; 0 when none is known)."""
    values = [math.exp(min(0.0, lp)) for lp in list(logprobs)[-WINDOW:] if lp is not None]
    return sum(values) / len(values) if values else 0.0


def running_confidence(ctx: SearchContext, node) -> float:
    """The mean confidence of the last WINDOW steps of the node's path."""
    return window_confidence(n.mean_logprob for n in ctx.tree.path(node.id))


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def deepconf(ctx: SearchContext):
    cfg = ctx.config
    warmup = min(cfg.warmup, cfg.n)
    probe = dataclasses.replace(ctx, config=dataclasses.replace(cfg, n=warmup))
    before = {n.id for n in ctx.tree}
    yield from independent_chains(probe)
    lowest = []  # per warm-up chain: its lowest running confidence
    for leaf in (n for n in ctx.tree if n.id not in before and not n.children):
        path = [n for n in ctx.tree.path(leaf.id) if n.id not in before]
        values = [running_confidence(ctx, n) for n in path]
        for node, value in zip(path, values):
            node.confidence = round(value, 4)
        lowest.append(min(values, default=0.0))
    threshold = quantile(lowest, cfg.confidence_quantile)
    # the main phase's iterations follow the warm-up's (expand adds the search's own offset)
    offset = max((n.iteration for n in ctx.tree if n.id not in before), default=ctx.iteration_offset) + 1
    offset -= ctx.iteration_offset
    main = []
    if cfg.n > warmup:
        main = yield from grow_chains(
            ctx,
            [ctx.start],
            [cfg.n - warmup],
            offset,
            last=offset + cfg.max_steps - 1,
            keep=lambda logprobs: window_confidence(logprobs) >= threshold,
        )
    for node in main:
        node.confidence = round(running_confidence(ctx, node), 4)
    low = [n for n in main if n.status == "pruned"]
    stopped = len(low)
    # at most what they would have generated had they run on
    saved = sum((offset + cfg.max_steps - 1 - (n.iteration - ctx.iteration_offset)) * cfg.step_tokens for n in low)
    ctx.selection = "confidence_vote"
    ctx.tree.meta["deepconf"] = {
        "warmup": warmup,
        "threshold": round(threshold, 4),
        "stopped": stopped,
        "tokens_saved_at_most": saved,
        "reason": f"{warmup} warm-up chains set the threshold {threshold:.3f} ({cfg.confidence_quantile:g} quantile "
        f"of their lowest running confidence); {stopped} chains stopped below it, sparing at most {saved} tokens",
    }
