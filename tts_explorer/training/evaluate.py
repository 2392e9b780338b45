"""Held-out evaluation of a trained PRM against the other scorers, and its model card.

Held-out data, none of it seen in training: the synthetic generator with another seed
(questions that also occur in the training set removed), GSM8K train rows that training
does not read, and the first rows of gsm8k_test_dev. Measured:

- ProcessBench-style F1 on perturbed gold steps, errors in a stated result and semantic
  errors (right arithmetic, wrong operation or number, carried on) reported apart; each
  scorer's threshold is tuned for F1 on a separate tuning split;
- step-level ROC-AUC against Monte-Carlo labels on the policy's own sampled steps
  (rollout trees, a node positive when more than half its rollouts reach the reference),
  over all labelled steps and over those backed by at least M rollouts;
- the spread of the trained PRM's scores over those trees (a histogram, and the spread
  inside one tree), so the page's colours can be judged.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..data import read_rows
from ..diagnose import score_counts
from ..perturb import FAMILIES
from ..processbench import build_samples, gsm8k_items, metrics, roc_auc, score_samples, sweep
from ..prompts import load_template
from ..scorers import ScorerEnv, make_scorer
from ..scorers.base import StepPath
from .labels import mc_labels
from .synth import generate

COMBINED = "probe×arithmetic"  # the product of the two scores, step by step


@dataclass
class EvalConfig:
    synthetic: int = 200  # held-out synthetic problems (seed below), for F1
    synthetic_seed: int = 1
    tune: int = 150  # synthetic problems for threshold tuning (another seed)
    tune_seed: int = 2
    gsm8k: str = "gsm8k-train"  # shipped sets (assets.DATASETS) or paths
    gsm8k_rows: tuple[int, int] = (6000, 6100)  # train rows training does not read
    gsm8k_tune_rows: tuple[int, int] = (6100, 6150)
    test_dev: str = "gsm8k-test-dev"
    test_dev_rows: int = 100
    judge_limit: int = 25  # samples per set, and trees, scored by the judge (one forward per step: slow)
    rollout_synthetic: int = 120  # held-out problems with rollout trees, for AUC
    rollout_test_dev: int = 30
    n: int = 16
    m: int = 4
    exclude_seed: int = 0  # the training set's synthetic seed and size: its questions are left out
    exclude_count: int = 3000


def _items(cfg: EvalConfig):
    """name -> (eval items, tuning items) per held-out set."""
    seen = {p.question for p in generate(cfg.exclude_count, cfg.exclude_seed)} if cfg.exclude_count else set()
    held = [(p.question, list(p.steps), p.answer) for p in generate(cfg.synthetic + len(seen) // 20 + 50,
                                                                    cfg.synthetic_seed) if p.question not in seen]
    tune = [(p.question, list(p.steps), p.answer) for p in generate(cfg.tune, cfg.tune_seed) if p.question not in seen]
    sets = {"synthetic (seed %d)" % cfg.synthetic_seed: held[: cfg.synthetic]}
    if cfg.gsm8k_rows[1] > cfg.gsm8k_rows[0]:
        sets["GSM8K train rows %d-%d" % (cfg.gsm8k_rows[0], cfg.gsm8k_rows[1] - 1)] = \
            gsm8k_items(read_rows(cfg.gsm8k, *cfg.gsm8k_rows))
        tune += gsm8k_items(read_rows(cfg.gsm8k, *cfg.gsm8k_tune_rows))
    if cfg.test_dev_rows:
        sets["gsm8k_test_dev rows 0-%d" % (cfg.test_dev_rows - 1)] = \
            gsm8k_items(read_rows(cfg.test_dev, 0, cfg.test_dev_rows))
    return sets, tune


def _scorers(policy, checkpoint: str):
    env = ScorerEnv(policy=policy)
    return {"probe": make_scorer("probe", env, model=checkpoint), "arithmetic": make_scorer("arithmetic", env),
            "confidence": make_scorer("confidence", env), "judge": make_scorer("judge", env)}


def _product(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return [[x * y for x, y in zip(ra, rb)] for ra, rb in zip(a, b)]


def processbench_f1(policy, scorers, cfg: EvalConfig, bar) -> dict:
    """F1 per held-out set, perturbation family and scorer, at thresholds tuned on the tuning split."""
    template = load_template()
    root = lambda q: policy.chat_prompt(template.messages(q))  # noqa: E731 (the confidence scorer's context)
    sets, tune_items = _items(cfg)
    tune = build_samples(tune_items, seed=cfg.tune_seed, kinds=FAMILIES["all"])
    thresholds, out = {}, {}
    jobs = [(name, family, build_samples(items, seed=cfg.synthetic_seed + i, kinds=FAMILIES[family]))
            for i, (name, items) in enumerate(sets.items()) for family in ("stated", "semantic")]
    with bar(len(scorers) + len(jobs) * len(scorers), "ProcessBench F1") as progress:
        tuned_scores = {}
        for name, scorer in scorers.items():
            samples = tune[: cfg.judge_limit * 2] if name == "judge" else tune
            tuned_scores[name] = (samples, score_samples(scorer, samples, root))
            progress.update(1)
        tuned_scores[COMBINED] = (tune, _product(tuned_scores["probe"][1], tuned_scores["arithmetic"][1]))
        for name, (samples, scores) in tuned_scores.items():
            thresholds[name] = max(sweep(samples, scores), key=lambda m: m["f1"])["threshold"]
        for set_name, family, samples in jobs:
            row = {}
            for name, scorer in scorers.items():
                chosen = samples[: cfg.judge_limit] if name == "judge" else samples
                row[name] = (chosen, score_samples(scorer, chosen, root))
                progress.update(1)
            row[COMBINED] = (samples, _product(row["probe"][1], row["arithmetic"][1]))
            out.setdefault(set_name, {})[family] = {
                name: {**_rounded(metrics(chosen, scores, thresholds[name])), "samples": len(chosen)}
                for name, (chosen, scores) in row.items()}
    return {"thresholds": thresholds, "sets": out}


def _rounded(values: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def rollout_auc(policy, scorers, cfg: EvalConfig, work: Path, bar) -> dict:
    """Step-level ROC-AUC of each scorer against Monte-Carlo labels on held-out rollout trees."""
    from .pipeline import TrainConfig, rollout_trees

    sets, _ = _items(EvalConfig(**{**asdict(cfg), "synthetic": cfg.rollout_synthetic, "gsm8k_rows": (0, 0),
                                   "test_dev_rows": cfg.rollout_test_dev}))
    items = [(f"{name}:{q}", q, a) for name, rows in sets.items() for q, _, a in rows]
    trees = rollout_trees(policy, items, TrainConfig(), work / "eval_rollouts.jsonl", "rollouts (held out)",
                          cfg.n, cfg.m, seed=10_000)
    rows = []  # (MC label, rollouts behind it, {scorer: score})
    spreads = []  # standard deviation of the probe's scores inside each tree
    template = load_template()
    with bar(len(trees), "AUC on the policy's own steps") as progress:
        for t, tree in enumerate(trees):
            mc = mc_labels(tree)
            nodes = [n for n in tree if n.id and n.id in mc]
            root_prompt = policy.chat_prompt(template.messages(tree.question))
            paths = [StepPath(tree.question, root_prompt, tuple(tree.steps(n.id)),
                              tuple(x.mean_logprob for x in tree.path(n.id)), n.terminal) for n in nodes]
            scores = {name: scorer.score_last(paths) for name, scorer in scorers.items()
                      if paths and (name != "judge" or t < cfg.judge_limit)}
            if paths:
                scores[COMBINED] = [a * b for a, b in zip(scores["probe"], scores["arithmetic"])]
                mean = sum(scores["probe"]) / len(paths)
                spreads.append(math.sqrt(sum((v - mean) ** 2 for v in scores["probe"]) / len(paths)))
            rows += [(mc[n.id][0], mc[n.id][1], {name: float(v[k]) for name, v in scores.items()})
                     for k, n in enumerate(nodes)]
            progress.update(1)
    result = {"trees": len(trees), "steps": len(rows), "positives": sum(r[0] > 0.5 for r in rows),
              "rollouts_per_label": {"mean": round(sum(r[1] for r in rows) / max(len(rows), 1), 2),
                                     "max": max((r[1] for r in rows), default=0)},
              "auc": {}, "auc_backed_by_m": {}, "steps_scored": {}}
    for name in [*scorers, COMBINED]:
        scored = [r for r in rows if name in r[2] and r[0] != 0.5]
        result["steps_scored"][name] = len(scored)
        result["auc"][name] = _auc([r[2][name] for r in scored], [r[0] for r in scored])
        backed = [r for r in scored if r[1] >= cfg.m]
        result["auc_backed_by_m"][name] = _auc([r[2][name] for r in backed], [r[0] for r in backed])
    probe = [r[2]["probe"] for r in rows]
    result["probe_histogram"] = score_counts(probe)
    result["probe_spread_in_a_tree"] = round(sum(spreads) / max(len(spreads), 1), 3)
    result["arithmetic_values"] = sorted({round(r[2]["arithmetic"], 3) for r in rows})
    leaves = [n for tree in trees for n in tree.candidates()]
    result["policy_pass_at_1"] = round(sum(bool(n.correct) for n in leaves) / max(len(leaves), 1), 3)
    return result


def _auc(scores: list[float], labels: list[float]) -> float | None:
    value = roc_auc(scores, [v > 0.5 for v in labels])
    return None if value is None else round(value, 4)


def evaluate(policy, checkpoint: str, cfg: EvalConfig, work: Path, bar) -> dict:
    scorers = _scorers(policy, checkpoint)
    return {"config": asdict(cfg), "processbench": processbench_f1(policy, scorers, cfg, bar),
            "rollouts": rollout_auc(policy, scorers, cfg, work, bar)}


def write_card(folder: Path, summary: dict) -> None:
    """metrics.json and the model card README.md in the checkpoint folder."""
    (folder / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    from .card import model_card

    (folder / "README.md").write_text(model_card(summary), encoding="utf-8")

