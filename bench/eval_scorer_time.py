"""What each scorer of train-prm's held-out evaluation costs per ProcessBench sample: the
shipped probe, `arithmetic` and `confidence` (the policy's own token probabilities, read with
the three-shot prompt before each chain, as evaluate.processbench_f1 reads them) on the same
perturbed gold chains of generated problems, one after another in one run; and beside them
what `confidence` cost before its log-probs were read on the engine (one transformers forward
of the whole prompt and chain per sample), with the differences between the two and, as a
yardstick, between that forward with PyTorch's fused attention (transformers' default) and
with plain matrix products (eager).

    python bench/eval_scorer_time.py [--problems 40]
"""

from __future__ import annotations

import argparse
import time

import torch

from tts_explorer.perturb import FAMILIES
from tts_explorer.policy.loading import load_policy
from tts_explorer.processbench import build_samples, score_samples
from tts_explorer.prompts import DEFAULT_TEMPLATE, load_template
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.scorers.shipped import SHIPPED_PROBE
from tts_explorer.training.synth import generate


@torch.inference_mode()
def full_forward_logprobs(policy, prompt: str, steps: list[str]) -> list[float]:
    """Mean log-prob of each step's tokens from one transformers forward over prompt and steps."""
    text, spans = prompt, []
    for step in steps:
        spans.append((len(text), len(text) + len(step)))
        text += step + "\n\n"
    token_ids, offsets = policy._prompt_encoding(text, offsets=True)
    ids = torch.tensor([token_ids])
    logprobs = torch.log_softmax(policy.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
    token_logprobs = logprobs.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1).tolist()
    out = []
    for start, end in spans:
        values = [token_logprobs[i - 1] for i, (a, _) in enumerate(offsets) if i > 0 and start <= a < end]
        out.append(sum(values) / len(values) if values else 0.0)
    return out


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
    started = time.perf_counter()
    before = [full_forward_logprobs(policy, prompt.prompt(policy, s.problem), list(s.steps)) for s in samples]
    times["before"] = time.perf_counter() - started
    print(
        f"{'confidence, one full forward per sample (before)':11s} {times['before']:6.1f} s "
        f"{times['before'] / len(samples):6.3f} s/sample"
    )
    now = [policy.step_logprobs(prompt.prompt(policy, s.problem), list(s.steps)) for s in samples]
    policy.model.config._attn_implementation = "eager"  # the same forward, attention as plain matrix products
    try:
        eager = [full_forward_logprobs(policy, prompt.prompt(policy, s.problem), list(s.steps)) for s in samples]
    finally:
        policy.model.config._attn_implementation = "sdpa"
    print(
        f"confidence against the probe: {times['confidence'] / times['probe']:.1f}x the time; "
        f"before against now: {times['before'] / times['confidence']:.1f}x"
    )
    for label, (a, b) in (("now against before", (now, before)), ("before, sdpa against eager", (before, eager))):
        gaps = [abs(x - y) for xs, ys in zip(a, b) for x, y in zip(xs, ys)]
        print(f"a step's mean log-prob, {label}: mean difference {sum(gaps) / len(gaps):.1e}, largest {max(gaps):.1e}")


if __name__ == "__main__":
    main()
