"""Held-out evaluation of a trained PRM against the other scorers, and its model card.

Held-out data, none of it seen in training: the synthetic generator with another seed
(questions that also occur in the training set removed), GSM8K train rows that training
does not read, and the first rows of gsm8k_test_dev. Measured for the trained probe, the
`arithmetic` and `confidence` scorers and any other probe checkpoints given (`compare`):

- ProcessBench-style F1 on perturbed gold steps, errors in a stated result and semantic
  errors (right arithmetic, wrong operation or number, carried on) reported apart; each
  scorer's threshold is tuned for F1 on a separate tuning split;
- on the policy's own steps (rollout trees sampled with the default prompt, per held-out
  set): step-level ROC-AUC against gold-aligned labels (gold.py) and against Monte-Carlo
  labels (more than half the rollouts right), the reliability diagram and the expected
  calibration error against gold-aligned labels, and the ROC-AUC of the path score (`min`
  and `last` aggregation) separating right from wrong finished candidates, counted over the
  pairs of one right and one wrong candidate of the same problem;
- the spread of the trained probe's scores over those steps (a histogram, and the spread
  inside one tree), so the page's colours can be judged.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from ..assets import GSM8K_TEST_DEV, GSM8K_TRAIN
from ..data import read_rows
from ..diagnose import reliability, score_counts
from ..perturb import FAMILIES
from ..processbench import build_samples, gsm8k_items, metrics, roc_auc, score_samples, sweep
from ..prompts import load_template
from ..scorers import ScorerEnv, make_scorer
from ..scorers.base import StepPath
from ..selection import aggregate
from .gold import gold_labels
from .labels import mc_labels
from .rollouts import rollout_trees
from .synth import generate

PROBE = "probe"  # the trained checkpoint's name in every table


@dataclass
class EvalConfig:
    synthetic: int = 200  # held-out synthetic problems (seed below), for F1
    synthetic_seed: int = 1
    tune: int = 150  # synthetic problems for threshold tuning (another seed)
    tune_seed: int = 2
    gsm8k: str = GSM8K_TRAIN  # shipped sets (assets.DATASETS) or paths
    gsm8k_rows: tuple[int, int] = (6000, 6100)  # train rows training does not read
    gsm8k_tune_rows: tuple[int, int] = (6100, 6150)
    test_dev: str = GSM8K_TEST_DEV
    test_dev_rows: int = 100
    rollout_synthetic: int = 120  # held-out problems with rollout trees (the policy's own steps)
    rollout_test_dev: int = 40
    n: int = 16
    m: int = 4
    exclude_seed: int = 0  # the training set's synthetic seed and size: its questions are left out
    exclude_count: int = 3000
    compare: tuple[tuple[str, str], ...] = ()  # (name, probe checkpoint folder) measured beside the trained one


def _items(cfg: EvalConfig):
    """({set name: items}, tuning items); items are (question, gold steps, answer)."""
    seen = {p.question for p in generate(cfg.exclude_count, cfg.exclude_seed)} if cfg.exclude_count else set()
    held = [
        (p.question, list(p.steps), p.answer)
        for p in generate(cfg.synthetic + len(seen) // 20 + 50, cfg.synthetic_seed)
        if p.question not in seen
    ]
    tune = [(p.question, list(p.steps), p.answer) for p in generate(cfg.tune, cfg.tune_seed) if p.question not in seen]
    sets = {f"synthetic (seed {cfg.synthetic_seed})": held[: cfg.synthetic]}
    if cfg.gsm8k_rows[1] > cfg.gsm8k_rows[0]:
        sets[f"GSM8K train rows {cfg.gsm8k_rows[0]}-{cfg.gsm8k_rows[1] - 1}"] = gsm8k_items(
            read_rows(cfg.gsm8k, *cfg.gsm8k_rows)
        )
        tune += gsm8k_items(read_rows(cfg.gsm8k, *cfg.gsm8k_tune_rows))
    if cfg.test_dev_rows:
        sets[f"gsm8k_test_dev rows 0-{cfg.test_dev_rows - 1}"] = gsm8k_items(
            read_rows(cfg.test_dev, 0, cfg.test_dev_rows)
        )
    return sets, tune


def _scorers(policy, checkpoint: str, cfg: EvalConfig) -> dict:
    env = ScorerEnv(policy=policy)
    out = {
        PROBE: make_scorer("probe", env, model=checkpoint),
        "arithmetic": make_scorer("arithmetic", env),
        "confidence": make_scorer("confidence", env),
    }
    out.update({name: make_scorer("probe", env, model=folder) for name, folder in cfg.compare})
    return out


def processbench_f1(policy, scorers, cfg: EvalConfig, bar, template: str) -> dict:
    """F1 per held-out set, perturbation family and scorer, at thresholds tuned on the tuning split."""
    prompt = load_template(template)
    root = lambda q: prompt.prompt(policy, q)  # noqa: E731 (the confidence scorer's context)
    sets, tune_items = _items(cfg)
    tune = build_samples(tune_items, seed=cfg.tune_seed, kinds=FAMILIES["all"])
    thresholds, out = {}, {}
    jobs = [
        (name, family, build_samples(items, seed=cfg.synthetic_seed + i, kinds=FAMILIES[family]))
        for i, (name, items) in enumerate(sets.items())
        for family in ("stated", "semantic")
    ]
    with bar(len(scorers) * (1 + len(jobs)), "ProcessBench F1") as progress:
        for name, scorer in scorers.items():
            thresholds[name] = max(sweep(tune, score_samples(scorer, tune, root)), key=lambda m: m["f1"])["threshold"]
            progress.update(1)
        for set_name, family, samples in jobs:
            row = {}
            for name, scorer in scorers.items():
                row[name] = {
                    **_rounded(metrics(samples, score_samples(scorer, samples, root), thresholds[name])),
                    "samples": len(samples),
                }
                progress.update(1)
            out.setdefault(set_name, {})[family] = row
    return {"thresholds": thresholds, "sets": out}


def _rounded(values: dict) -> dict:
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in values.items()}


def _auc(scores: list[float], labels: list[float]) -> float | None:
    value = roc_auc(scores, [v > 0.5 for v in labels])
    return None if value is None else round(value, 4)


def paired_auc(groups: list[list[tuple[float, bool]]]) -> tuple[float | None, int]:
    """(share of (right, wrong) pairs of the same group where the right one scores higher, ties
    counted half; the number of groups that hold both)."""
    wins = pairs = 0.0
    both = 0
    for group in groups:
        right = [s for s, ok in group if ok]
        wrong = [s for s, ok in group if not ok]
        if right and wrong:
            both += 1
            pairs += len(right) * len(wrong)
            wins += sum((r > w) + 0.5 * (r == w) for r in right for w in wrong)
    return (round(wins / pairs, 4) if pairs else None), both


def tree_scores(tree, scorers: dict, root_prompt: str) -> dict[str, dict[int, float]]:
    """scorer name -> node id -> the node's step score, each leaf's path scored once."""
    leaves = [n for n in tree if n.id and not n.children]
    paths = [tree.path(leaf.id) for leaf in leaves]
    steps = [
        StepPath(
            tree.question,
            root_prompt,
            tuple(n.text for n in path),
            tuple(n.mean_logprob for n in path),
            path[-1].terminal,
        )
        for path in paths
    ]
    out = {}
    for name, scorer in scorers.items():
        values: dict[int, float] = {}
        for path, scores in zip(paths, scorer.score_steps(steps) if steps else []):
            for node, value in zip(path, scores):
                values.setdefault(node.id, float(value))
        out[name] = values
    return out


def eval_rollouts_file(work: Path, template: str) -> Path:
    """Where the held-out rollout trees are kept (appended as they are made)."""
    return work / f"eval_rollouts-{template}.jsonl"


def own_steps(policy, scorers, cfg: EvalConfig, work: Path, bar, sampling) -> dict:
    """Per held-out set, every scorer on the policy's own steps (rollout trees sampled as
    `sampling` says: template, max_steps, step_tokens, final_tokens): AUC against gold-aligned
    and Monte-Carlo labels, reliability against gold-aligned labels, path-score AUC within problems."""
    template = sampling.template
    sets, _ = _items(
        EvalConfig(
            **{
                **asdict(cfg),
                "synthetic": cfg.rollout_synthetic,
                "gsm8k_rows": (0, 0),
                "test_dev_rows": cfg.rollout_test_dev,
            }
        )
    )
    prompt = load_template(template)
    result: dict = {"sets": {}}
    all_probe, spreads = [], []
    for set_name, items in sets.items():
        keyed = [(f"{set_name}:{q}", q, a) for q, _, a in items]
        trees = rollout_trees(
            policy,
            keyed,
            sampling,
            eval_rollouts_file(work, template),
            f"rollouts ({set_name})",
            cfg.n,
            cfg.m,
            seed=10_000,
        )
        rows = []  # (gold label, MC value, {scorer: score})
        candidates: dict[str, dict[str, list]] = {name: {"min": [], "last": []} for name in scorers}
        with bar(len(trees), f"scoring ({set_name})") as progress:
            for tree, (question, gold_steps, answer) in zip(trees, items):
                scores = tree_scores(tree, scorers, prompt.prompt(policy, question))
                mc = mc_labels(tree)
                gold: dict[int, float] = {}
                for leaf in (n for n in tree if n.id and not n.children):
                    path = tree.path(leaf.id)
                    for node, label in zip(path, gold_labels(question, gold_steps, answer, [n.text for n in path])):
                        gold.setdefault(node.id, label)
                nodes = [n.id for n in tree if n.id]
                rows += [(gold[i], mc[i][0] if i in mc else None, {k: v[i] for k, v in scores.items()}) for i in nodes]
                probe = [scores[PROBE][i] for i in nodes]
                if probe:
                    mean = sum(probe) / len(probe)
                    spreads.append(math.sqrt(sum((v - mean) ** 2 for v in probe) / len(probe)))
                    all_probe += probe
                finished = [n for n in tree.candidates() if n.correct is not None]
                for name in scorers:
                    for how in ("min", "last"):
                        candidates[name][how].append(
                            [
                                (aggregate([scores[name][x.id] for x in tree.path(n.id)], how), bool(n.correct))
                                for n in finished
                            ]
                        )
                progress.update(1)
        leaves = [n for tree in trees for n in tree.candidates()]
        entry = {
            "trees": len(trees),
            "steps": len(rows),
            "right_steps": sum(r[0] > 0.5 for r in rows),
            "policy_pass_at_1": round(sum(bool(n.correct) for n in leaves) / max(len(leaves), 1), 3),
            "auc_gold": {},
            "auc_mc": {},
            "reliability": {},
            "path_auc": {},
        }
        for name in scorers:
            entry["auc_gold"][name] = _auc([r[2][name] for r in rows], [r[0] for r in rows])
            with_mc = [r for r in rows if r[1] is not None and r[1] != 0.5]
            entry["auc_mc"][name] = _auc([r[2][name] for r in with_mc], [r[1] for r in with_mc])
            entry["reliability"][name] = reliability([r[2][name] for r in rows], [r[0] for r in rows])
            entry["path_auc"][name] = {how: paired_auc(groups)[0] for how, groups in candidates[name].items()}
        entry["problems_with_both"] = paired_auc(candidates[PROBE]["min"])[1]
        result["sets"][set_name] = entry
    result["probe_histogram"] = score_counts(all_probe)
    result["probe_spread_in_a_tree"] = round(sum(spreads) / max(len(spreads), 1), 3)
    return result


def evaluate(policy, checkpoint: str, cfg: EvalConfig, work: Path, bar, sampling, lap=lambda stage: None) -> dict:
    """Everything above for the checkpoint; `sampling` (train-prm's config) says how the
    policy's held-out steps are sampled; `lap(stage)` is told as each part ends."""
    scorers = _scorers(policy, checkpoint, cfg)
    out = {"config": asdict(cfg), "template": sampling.template}
    out["processbench"] = processbench_f1(policy, scorers, cfg, bar, sampling.template)
    lap("evaluation: ProcessBench F1")
    out["own_steps"] = own_steps(policy, scorers, cfg, work, bar, sampling)
    lap("evaluation: the policy's own steps")
    return out


def write_card(folder: Path, summary: dict) -> None:
    """metrics.json and the model card README.md in the checkpoint folder."""
    (folder / "metrics.json").write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    from .card import model_card

    (folder / "README.md").write_text(model_card(summary), encoding="utf-8")
