"""Which head recipe ranks a problem's chains best? Grouped cross-validation on the features a
train-prm run kept in its work folder (nothing runs the backbone: the rollouts and features are
read back), so recipes are compared on more problems than one validation split holds.

For each recipe (the text features of calc-v1 or calc-v2, a rank weight), the problems are cut
into K folds; for fold k a head is fitted on the others but fold k+1 (early stopping on fold k+1,
as train-prm stops on its validation split) and scores fold k's rollout trees. A chain's path
score is the minimum of its steps' logits (the searches' `min` aggregation; calibration does not
change a ranking); printed per source: the ROC-AUC separating right from wrong chains of one
problem, pairs pooled over the problems that have both (train-prm's held-out measure), and per
problem against the first recipe, how many it ranks better and worse (won / lost).

    python bench/probe_heads.py --work artifacts/train-prm [--folds 5] [--recipes calc-v1:0,calc-v2:0.5]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import torch

from tts_explorer.scorers.step_features import VERSION, VERSIONS
from tts_explorer.training.evaluate import paired_auc
from tts_explorer.training.pipeline import (
    TrainConfig,
    cached_features,
    features_file,
    perturbed_sequences,
    policy_sequences,
    problems,
)
from tts_explorer.training.probe import Features, fit, ranked_chains


class _NoReader:
    def features(self, paths):
        raise SystemExit("no features kept in this work folder for train-prm's defaults: run train-prm --work there")


def recipes(spec: str) -> list[tuple[str, float]]:
    out = []
    for item in spec.split(","):
        version, _, weight = item.partition(":")
        if version not in VERSIONS:
            raise SystemExit(f"unknown text features {version!r}; known: {', '.join(VERSIONS)}")
        out.append((version, float(weight or 0)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--work", required=True, help="a train-prm work folder (its rollouts and features)")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--recipes", default=f"calc-v1:0,{VERSION}:0,calc-v1:0.5,{VERSION}:0.5")
    args = parser.parse_args()
    if args.folds < 3:  # a head needs folds to fit on besides the one it stops on and the one it scores
        parser.error("--folds must be 3 or more (fit, early stopping and scoring each take a fold)")
    cfg = TrainConfig(work=args.work)
    work = Path(args.work)
    synthetic, gsm8k = problems(cfg)
    sequences = perturbed_sequences(cfg, synthetic, gsm8k) + policy_sequences(None, cfg, synthetic, gsm8k, work)[0]
    features = cached_features(_NoReader(), sequences, features_file(sequences, cfg, work))
    extra = len(VERSIONS[VERSION]) - len(VERSIONS["calc-v1"])
    groups = sorted({s.group for s in sequences})
    random.Random(cfg.seed).shuffle(groups)
    fold_of = {g: i % args.folds for i, g in enumerate(groups)}
    row_fold = torch.tensor([fold_of[sequences[i].group] for i in features.sequence.tolist()])
    chains = ranked_chains(features, sequences)
    if chains is None:
        raise SystemExit("no rollout problem in this work folder has both right and wrong chains: nothing to rank")
    chain_fold = row_fold[chains.rows[:, 0]]
    chain_source = [sequences[int(features.sequence[r])].source for r in chains.rows[:, 0].tolist()]
    scores: dict[tuple[str, float], dict[int, list[tuple[float, bool]]]] = {}
    for version, weight in recipes(args.recipes):
        x = features.x if version == VERSION else features.x[:, : features.x.shape[1] - extra]
        per_problem: dict[int, list[tuple[float, bool]]] = {}
        for k in range(args.folds):
            kept = (row_fold != k).nonzero().squeeze(1)
            part = Features(x[kept], features.y[kept], features.sequence[kept], features.step[kept])
            stop_rows = (row_fold[kept] == (k + 1) % args.folds).nonzero().squeeze(1)
            head = fit(
                part, stop_rows, cfg.hidden, cfg.seed, chains=ranked_chains(part, sequences), rank_weight=weight
            )[0]
            with torch.no_grad():
                logits = head.logits(x)
            for c in (chain_fold == k).nonzero().squeeze(1).tolist():
                rows = [r for r in chains.rows[c].tolist() if r >= 0]
                per_problem.setdefault(int(chains.problem[c]), []).append(
                    (float(logits[rows].min()), bool(chains.right[c]))
                )
            print(f"{version} rank {weight}: fold {k + 1}/{args.folds}", flush=True)
        scores[(version, weight)] = per_problem
    first = next(iter(scores))
    source_of = {int(p): s for p, s in zip(chains.problem.tolist(), chain_source)}
    for source in sorted(set(chain_source)):
        print(f"== {source}: path AUC within problems (min), {args.folds}-fold")
        for recipe, per_problem in scores.items():
            mine = {p: g for p, g in per_problem.items() if source_of[p] == source}
            auc, both = paired_auc(list(mine.values()))
            won = lost = 0
            for p, group in mine.items():
                a, b = paired_auc([group])[0], paired_auc([scores[first][p]])[0]
                won, lost = won + (a > b + 1e-9), lost + (a < b - 1e-9)
            name = f"{recipe[0]} rank {recipe[1]}"
            print(f"  {name:<22} {auc:.3f} ({both} problems)   against {first[0]} rank {first[1]}: {won} / {lost}")


if __name__ == "__main__":
    main()
