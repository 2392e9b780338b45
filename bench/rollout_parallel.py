"""train-prm's rollout trees made one after another against several at once (`train-prm
--parallel`), side by side in one run on the embedded model: the first training problems'
trees, with train-prm's settings, into two work files, then wall time, generated tokens per
second and their ratio, and how many trees came out the same both ways (each tree keeps its
own seed; a matrix product over more rows can round a logit's last bits otherwise, so a
sampled token, and what follows it, can differ).

    python bench/rollout_parallel.py [--problems 16] [--parallel 4]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from tts_explorer.policy.loading import load_policy
from tts_explorer.training.pipeline import TrainConfig, problems
from tts_explorer.training.rollouts import rollout_trees


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=16)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    policy = load_policy()
    synthetic, _ = problems(TrainConfig(gsm8k_rows=(0, 0)))
    items = [(f"synthetic:{q}", q, a) for q, _, a in synthetic[: args.problems]]
    print(f"{len(items)} training problems, rollout trees N=8, M=2 (train-prm's settings), {policy.name}")
    made = {}
    with tempfile.TemporaryDirectory() as tmp:
        for parallel in (1, args.parallel):
            cfg = TrainConfig(parallel=parallel)
            policy.forget()
            started = time.perf_counter()
            trees = rollout_trees(
                policy, items, cfg, Path(tmp) / f"p{parallel}.jsonl", f"parallel {parallel}", cfg.n, cfg.m, cfg.seed
            )
            seconds = time.perf_counter() - started
            tokens = sum(n.n_tokens for tree in trees for n in tree)
            made[parallel] = (seconds, tokens, [[n.text for n in tree] for tree in trees])
    for parallel, (seconds, tokens, _) in made.items():
        print(f"parallel {parallel:>2}: {seconds:7.1f} s, {tokens:6d} generated tokens, {tokens / seconds:6.1f} tok/s")
    (s1, t1, texts1), (sn, tn, textsn) = made[1], made[args.parallel]
    same = sum(a == b for a, b in zip(texts1, textsn))
    print(
        f"parallel {args.parallel} against 1: {s1 / sn:.2f}x faster by wall time, "
        f"{(tn / sn) / (t1 / s1):.2f}x the tokens per second; {same} of {len(items)} trees the same"
    )


if __name__ == "__main__":
    main()
