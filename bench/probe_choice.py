"""Which probe: hidden-state layers and head size, measured on the data `train-prm` made.

Reads train-prm's work folder (the rollout trees of training and of the held-out evaluation),
rebuilds the same labelled sequences, extracts the hidden states of many layers at once, and
fits a probe per configuration (the same fit as train-prm: seeded, early stopping on a
validation split of the problems). Prints, per configuration: validation AUC, and step-level
ROC-AUC against Monte-Carlo labels on the held-out rollout trees (the policy's own steps on
problems training never saw), over all steps and over the steps on semantic-error chains.

    python bench/probe_choice.py [--work artifacts/train-prm]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from tts_explorer.perturb import FAMILIES
from tts_explorer.policy.loading import load_policy
from tts_explorer.processbench import build_samples, roc_auc
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.scorers.learned import ProbeHead
from tts_explorer.training.evaluate import EvalConfig, _items
from tts_explorer.training.labels import sample_sequence, tree_sequences
from tts_explorer.training.pipeline import TrainConfig, perturbed_sequences, problems, rollout_trees
from tts_explorer.training.probe import Features, extract, fit, save, split_groups

LAYERS = (4, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30)
# (layers, hidden units of the head, training data)
CONFIGS = [
    ((10,), 0, "all"),
    ((16,), 0, "all"),
    ((22,), 0, "all"),
    ((28,), 0, "all"),
    ((10, 16, 22), 0, "all"),
    ((8, 14, 20, 26), 0, "all"),
    ((16, 22, 28), 0, "all"),
    ((10, 16, 22), 256, "all"),
    ((16, 22, 28), 256, "all"),
    ((10, 16, 22), 0, "perturbed"),
    ((10, 16, 22), 0, "rollouts"),
]


def columns(features: Features, layers: tuple[int, ...], hidden_size: int, rows=None) -> Features:
    index = [LAYERS.index(layer) for layer in layers]
    x = features.x if rows is None else features.x[rows]
    parts = [x[:, i * hidden_size : (i + 1) * hidden_size] for i in index]
    if rows is None:
        return Features(torch.cat(parts, dim=1), features.y, features.sequence)
    return Features(torch.cat(parts, dim=1), features.y[rows], features.sequence[rows])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", default="artifacts/train-prm")
    args = parser.parse_args()
    work = Path(args.work)
    cfg = TrainConfig()
    policy = load_policy(cfg.model)
    synthetic, gsm8k = problems(cfg)
    sequences = perturbed_sequences(cfg, synthetic, gsm8k)
    items = [(f"synthetic:{q}", q, a) for q, _, a in synthetic[: cfg.rollout_synthetic]] + [
        (f"gsm8k:{q}", q, a) for q, _, a in gsm8k[: cfg.rollout_gsm8k]
    ]
    for (key, _, _), tree in zip(
        items, rollout_trees(policy, items, cfg, work / "rollouts.jsonl", "rollouts", cfg.n, cfg.m, cfg.seed)
    ):
        sequences += tree_sequences(tree, "rollouts/" + key.split(":")[0], key)
    ev = EvalConfig()
    sets, _ = _items(EvalConfig(synthetic=ev.rollout_synthetic, gsm8k_rows=(0, 0), test_dev_rows=ev.rollout_test_dev))
    held_items = [(f"{name}:{q}", q, a) for name, rows in sets.items() for q, _, a in rows]
    held = [
        s
        for (key, _, _), tree in zip(
            held_items,
            rollout_trees(
                policy, held_items, cfg, work / "eval_rollouts.jsonl", "rollouts (held out)", ev.n, ev.m, seed=10_000
            ),
        )
        for s in tree_sequences(tree, "held-out", key)
    ]
    semantic_items = [(q, s, a) for q, s, a in sets[next(iter(sets))]]
    semantic = [
        sample_sequence(s, "semantic", s.problem)
        for s in build_samples(semantic_items, seed=99, error_share=1.0, kinds=FAMILIES["semantic"])
    ]
    hidden_size = policy.model.config.hidden_size
    folder = work / "probe-choice-reader"
    save(ProbeHead(hidden_size * len(LAYERS)), folder, "embedded", list(LAYERS), {})
    reader = make_scorer("probe", ScorerEnv(), model=str(folder))
    train = extract(reader.model, reader, sequences)
    test = extract(reader.model, reader, held)
    sem = extract(reader.model, reader, semantic)
    val_groups = split_groups(sequences, cfg.val_share, cfg.seed)
    val_rows = torch.tensor([sequences[i].group in val_groups for i in train.sequence.tolist()]).nonzero().squeeze(1)
    print(
        f"{len(train.y)} training steps ({len(val_rows)} for validation), {len(test.y)} held-out rollout steps, "
        f"{len(sem.y)} steps of semantic-error chains"
    )
    print(f"{'layers':<18}{'hidden':>7}{'data':>10}{'val AUC':>9}{'held-out AUC':>14}{'semantic AUC':>14}")
    results = []
    source = [sequences[i].source.split("/")[0] for i in train.sequence.tolist()]
    is_val = torch.zeros(len(train.y), dtype=torch.bool)
    is_val[val_rows] = True
    for layers, hidden, data in CONFIGS:
        keep = torch.tensor([data == "all" or s == data for s in source]).nonzero().squeeze(1)
        chosen = columns(train, layers, hidden_size, keep)
        head, report = fit(chosen, is_val[keep].nonzero().squeeze(1), hidden, cfg.seed)
        with torch.no_grad():
            held_auc = roc_auc(head(columns(test, layers, hidden_size).x).tolist(), [v > 0.5 for v in test.y.tolist()])
            sem_auc = roc_auc(head(columns(sem, layers, hidden_size).x).tolist(), [v > 0.5 for v in sem.y.tolist()])
        results.append(
            {
                "layers": layers,
                "hidden": hidden,
                "data": data,
                "val_auc": report["val_auc"],
                "held_out_auc": held_auc,
                "semantic_auc": sem_auc,
            }
        )
        print(
            f"{','.join(map(str, layers)):<18}{hidden:>7}{data:>10}{report['val_auc']:>9.3f}{held_auc:>14.3f}"
            f"{sem_auc:>14.3f}",
            flush=True,
        )
    (work / "probe_choice.json").write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
