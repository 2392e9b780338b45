"""What each scorer of train-prm's held-out evaluation costs per ProcessBench sample: the
shipped probe, `arithmetic` and `confidence` (the policy's own token probabilities, read with
the three-shot prompt before each chain, as evaluate.processbench_f1 reads them) on the same
perturbed gold chains of generated problems, one after another in one run.

    python bench/eval_scorer_time.py [--problems 40]
"""

from __future__ import annotations

import argparse
import time

from tts_explorer.perturb import FAMILIES
from tts_explorer.policy.loading import load_policy
from tts_explorer.processbench import build_samples, score_samples
from tts_explorer.prompts import DEFAULT_TEMPLATE, load_template
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.scorers.shipped import SHIPPED_PROBE
from tts_explorer.training.synth import generate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=40)
    args = parser.parse_args()
    policy = load_policy()
    items = [(p.question, list(p.steps), p.answer) for p in generate(args.problems, 2)]  # the tuning split's seed
    samples = build_samples(items, seed=2, kinds=FAMILIES["all"])
    prompt = load_template(DEFAULT_TEMPLATE)
    env = ScorerEnv(policy=policy)
    times = {}
    for name, options in (("probe", {"model": str(SHIPPED_PROBE)}), ("arithmetic", {}), ("confidence", {})):
        scorer = make_scorer(name, env, **options)
        started = time.perf_counter()
        score_samples(scorer, samples, lambda q: prompt.prompt(policy, q))
        times[name] = time.perf_counter() - started
        print(f"{name:11s} {len(samples)} samples {times[name]:6.1f} s {times[name] / len(samples):6.3f} s/sample")
    print(f"confidence against the probe: {times['confidence'] / times['probe']:.1f}x the time")


if __name__ == "__main__":
    main()
