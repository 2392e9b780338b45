"""Does a larger backbone see a wrong step better? The probe's features read by two backbones on
the same gold and perturbed chains (train-prm's data: generated problems and GSM8K train rows,
60% of the chains broken once), a head fitted on each with train-prm's recipe (several seeds),
and, on the validation problems (a split that never cuts a problem in two), the ROC-AUC of the
step score against the labels: all chains, chains with a semantic error (a wrong operation or
operand, arithmetic right) and chains with a wrong stated result. Each backbone's heads are
fitted again on its features without the hidden states (the backbone's token log-probabilities
and entropies and the calculator's features only): what the states add. Features are kept in the work
folder, so a stopped run resumes. The policy's own steps are not read here (they need rollout
trees: train-prm's work), so this measures what each backbone's states say about errors, not a
checkpoint to ship.

    python bench/backbone_choice.py [--synthetic 2000] [--gsm8k 400] [--seeds 3] [--work artifacts/backbones]
        [--layers gemma3-270m=5,9,13]   (other layers for a backbone; repeatable)
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from tts_explorer.perturb import FAMILIES
from tts_explorer.policy.embedded import EMBEDDED
from tts_explorer.policy.loading import load_policy
from tts_explorer.processbench import roc_auc
from tts_explorer.training.pipeline import (
    TrainConfig,
    cached_features,
    feature_reader,
    features_file,
    perturbed_sequences,
    problems,
)
from tts_explorer.training.probe import Features, fit, split_groups

# (name, model, layers read): the same relative depths (about 0.53, 0.73, 0.93 of the blocks)
BACKBONES = [
    ("SmolLM2-135M", EMBEDDED, (16, 22, 28)),
    ("Gemma 3 270M", "gemma3-270m", (10, 13, 17)),
]


def family_auc(scores: list[float], labels: list[bool], kinds: list[str], family: str | None) -> float:
    """ROC-AUC of the steps of chains whose perturbation is of `family` (None: every chain)."""
    keep = [family is None or k in FAMILIES[family] for k in kinds]
    value = roc_auc([s for s, k in zip(scores, keep) if k], [y for y, k in zip(labels, keep) if k])
    return float("nan") if value is None else value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--synthetic", type=int, default=2000, help="generated problems (seed 0)")
    parser.add_argument("--gsm8k", type=int, default=400, help="GSM8K train rows from row 1000")
    parser.add_argument("--seeds", type=int, default=3, help="heads fitted per backbone")
    parser.add_argument("--work", default="artifacts/backbones")
    parser.add_argument("--layers", action="append", default=[], help="MODEL=L1,L2,...: the layers it reads")
    args = parser.parse_args()
    chosen = {model: tuple(int(k) for k in layers.split(",")) for model, layers in (a.split("=") for a in args.layers)}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    backbones = [(name, model, chosen.get(model, layers)) for name, model, layers in BACKBONES]
    for name, model, layers in backbones:
        name = f"{name} {','.join(map(str, layers))}"
        cfg = TrainConfig(model=model, synthetic=args.synthetic, gsm8k_rows=(1000, 1000 + args.gsm8k), layers=layers)
        synthetic, gsm8k = problems(cfg)
        sequences = perturbed_sequences(cfg, synthetic, gsm8k)
        policy = load_policy(model)
        reader = feature_reader(cfg, policy, work / f"reader-{model}")
        started = time.perf_counter()
        features = cached_features(reader, sequences, features_file(sequences, cfg, work))
        seconds = time.perf_counter() - started
        val_groups = split_groups(sequences, cfg.val_share, cfg.seed)
        owners = features.sequence.tolist()
        val_rows = torch.tensor([sequences[i].group in val_groups for i in owners]).nonzero().squeeze(1)
        kinds = [sequences[owners[r]].kind for r in val_rows.tolist()]
        labels = [v > 0.5 for v in features.y[val_rows].tolist()]
        states = policy.model.config.hidden_size * len(cfg.layers) * len(cfg.pool)
        stateless = Features(features.x[:, states:], features.y, features.sequence, features.step)
        for label, read in ((name, features), (f"{name.split()[0]}, no states", stateless)):
            for seed in range(args.seeds):
                head, _ = fit(read, val_rows, cfg.hidden, seed)
                with torch.no_grad():
                    scores = head(read.x[val_rows]).tolist()
                aucs = [family_auc(scores, labels, kinds, family) for family in (None, "semantic", "stated")]
                rows.append((label, seed, read.x.shape[1], seconds, *aucs))
        print(
            f"{name}: {len(sequences)} chains, {len(features.y)} labelled steps ({len(val_rows)} validation), "
            f"{features.x.shape[1]} features, read in {seconds / 60:.1f} min",
            flush=True,
        )
    print(f"{'backbone, layers':<24} {'seed':>4} {'AUC all':>8} {'semantic':>9} {'stated':>7}")
    for name, seed, _, _, every, semantic, stated in rows:
        print(f"{name:<24} {seed:>4} {every:>8.3f} {semantic:>9.3f} {stated:>7.3f}")
    for name in dict.fromkeys(r[0] for r in rows):
        mine = [r for r in rows if r[0] == name]
        means = [sum(r[i] for r in mine) / len(mine) for i in (4, 5, 6)]
        print(f"{name:<24} {'mean':>4} {means[0]:>8.3f} {means[1]:>9.3f} {means[2]:>7.3f}")


if __name__ == "__main__":
    main()
