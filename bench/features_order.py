"""What train-prm's features stage feeds the backbone, read in the order it used before (every
sequence shortest first, 16 a batch) and in reading_batches' order (a question's several
chains one per batch, so each after the first extends what the scorer kept), on the same
sequences: the gold or perturbed chains of 10 x P generated problems and the leaves of rollout
trees of the first P (N=8, M=2, as train-prm grows them: 1 in 10 problems, as in train-prm's
3,000 and 300); tokens fed, seconds, and the largest difference between the two readings'
features, one after the other in one run. In bf16 (the default where the CPU computes it) the
two readings differ by bf16's rounding, as any two batchings do; TTS_DTYPE=fp32 shows them equal.

    TTS_DTYPE=fp32 python bench/features_order.py [--problems 24]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tts_explorer.policy.loading import load_policy
from tts_explorer.scorers import ScorerEnv, StepPath, make_scorer
from tts_explorer.scorers.probe_model import ProbeHead
from tts_explorer.training.pipeline import TrainConfig, _backbone_ref, perturbed_sequences, policy_sequences, problems
from tts_explorer.training.probe import extract, save


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=24)
    args = parser.parse_args()
    work = Path("artifacts/bench-features-order")
    size = dict(synthetic=10 * args.problems, gsm8k_rows=(0, 0), rollout_synthetic=args.problems, rollout_gsm8k=0)
    cfg = TrainConfig(**size, work=str(work))
    policy = load_policy(cfg.model)
    synthetic, gsm8k = problems(cfg)
    sequences = perturbed_sequences(cfg, synthetic, gsm8k) + policy_sequences(policy, cfg, synthetic, gsm8k, work)[0]
    folder = work / "reader"
    head = ProbeHead(cfg.spec().width(policy.model.config.hidden_size))
    save(head, folder, _backbone_ref(cfg, folder), cfg.spec(), {})
    leaves = sum(s.source.startswith("rollouts") for s in sequences)
    print(f"{len(sequences)} sequences, {leaves} of them rollout leaves")

    before = make_scorer("probe", ScorerEnv(), model=str(folder))
    started = time.perf_counter()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].question) + sum(map(len, sequences[i].steps)))
    rows = []
    for k in range(0, len(order), 16):
        chunk = order[k : k + 16]
        paths = [StepPath(sequences[i].question, "", tuple(sequences[i].steps)) for i in chunk]
        for i, features in zip(chunk, before.features(paths)):
            rows += [features[j] for j, label in enumerate(sequences[i].labels) if label is not None]
    old_s = time.perf_counter() - started
    now = make_scorer("probe", ScorerEnv(), model=str(folder))
    started = time.perf_counter()
    read = extract(now, sequences)
    new_s = time.perf_counter() - started
    old_tokens, new_tokens = before.env.meter.scorer_tokens, now.env.meter.scorer_tokens
    old_x = torch.stack(rows)
    gap = float((old_x - read.x).abs().max())
    relative = float(((old_x - read.x).abs() / (old_x.abs() + 1)).max())
    print(f"shortest first, 16 a batch:    {old_tokens:8,d} tokens fed {old_s:7.1f} s")
    print(f"a question's chains per batch: {new_tokens:8,d} tokens fed {new_s:7.1f} s")
    print(
        f"{old_tokens / new_tokens:.2f}x fewer tokens, {old_s / new_s:.2f}x faster; "
        f"largest difference of a feature: {gap:.2e} ({relative:.2e} of its size + 1)"
    )


if __name__ == "__main__":
    main()
