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

With --margins, the embedded backbone's heads are fitted again with six counterfactual features
added per step: in each calculation "a op b =" the backbone's log-probability of the operator
written minus that of the likeliest other of + - * /, and of the first digit of each operand minus
that of the likeliest first digit of another number the problem or an earlier step wrote (their
minimum over the step, clipped at 0, whether the step has one, and the two minimums over the path so
far, as a path stays wrong after its first wrong step): does the model's own sense of
which operation and which number come next tell a semantic error that its states do not?

    python bench/backbone_choice.py [--synthetic 2000] [--gsm8k 400] [--seeds 3] [--work artifacts/backbones]
        [--layers gemma3-270m=5,9,13]   (other layers for a backbone; repeatable)
        [--margins]   (the embedded backbone only, with and without the counterfactual features)
"""

from __future__ import annotations

import argparse
import json
import re
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


OPERATORS = "+-*/"
CALCULATION = re.compile(r"(\d+(?:\.\d+)?) ([-+*/]) (\d+(?:\.\d+)?) =")
NUMBER = re.compile(r"(?<![\w.])(\d+)")


def margins(policy, question: str, steps: list[str]) -> list[list[float]]:
    """Per step, the six counterfactual features (module docstring), read on the trl text."""
    tokenizer = policy.tokenizer
    operator_ids = {o: tokenizer.encode(" " + o, add_special_tokens=False)[0] for o in OPERATORS}
    digit_ids = {str(d): tokenizer.encode(str(d), add_special_tokens=False)[0] for d in range(10)}
    text, spans = question + "\n\n", []
    for step in steps:
        spans.append(len(text))
        text += step + "\n\n"
    encoded = tokenizer(text, return_offsets_mapping=True, add_special_tokens=False)
    with torch.no_grad():
        logits = policy.model(torch.tensor([encoded["input_ids"]])).logits[0]
    logp = torch.log_softmax(logits.float(), -1)
    token_at = {start: i for i, (start, _) in enumerate(encoded["offset_mapping"])}
    known = [m.group(1) for m in NUMBER.finditer(question)]
    out = []
    for start, step in zip(spans, steps):
        ops, operands = [], []
        for m in CALCULATION.finditer(step):
            i = token_at.get(start + m.start(2) - 1)  # " *": the operator with its space
            if i:
                row = {o: float(logp[i - 1, t]) for o, t in operator_ids.items()}
                ops.append(row[m.group(2)] - max(v for o, v in row.items() if o != m.group(2)))
            for group in (1, 3):
                written, i = m.group(group), token_at.get(start + m.start(group))
                others = {k[0] for k in known if k[0] != written[0]}
                if i and others:
                    row = logp[i - 1]
                    operands.append(float(row[digit_ids[written[0]]]) - max(float(row[digit_ids[d]]) for d in others))
        known += [m.group(1) for m in NUMBER.finditer(step)]
        lowest = [min(0.0, min(values, default=0.0)) for values in (ops, operands)]
        before = out[-1][4:] if out else [0.0, 0.0]  # a path stays wrong after its first wrong step
        out.append([lowest[0], float(bool(ops)), lowest[1], float(bool(operands))])
        out[-1] += [min(before[0], lowest[0]), min(before[1], lowest[1])]
    return out


def with_margins(policy, sequences, features: Features, path: Path) -> Features:
    """The features with the six counterfactual ones appended (kept in `path`: resumable)."""
    kept = json.loads(path.read_text()) if path.exists() else []
    for index, sequence in enumerate(sequences[len(kept) :], start=len(kept)):
        kept.append(margins(policy, sequence.question, sequence.steps))
        if index % 200 == 199 or index == len(sequences) - 1:
            path.write_text(json.dumps(kept))
            print(f"margins: {index + 1}/{len(sequences)} chains", flush=True)
    extra = torch.tensor([kept[s][k] for s, k in zip(features.sequence.tolist(), features.step.tolist())])
    x = torch.cat([features.x, extra.to(features.x.dtype)], 1)
    return Features(x, features.y, features.sequence, features.step)


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
    parser.add_argument("--margins", action="store_true", help="the embedded backbone with the counterfactual features")
    args = parser.parse_args()
    chosen = {model: tuple(int(k) for k in layers.split(",")) for model, layers in (a.split("=") for a in args.layers)}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    backbones = [(name, model, chosen.get(model, layers)) for name, model, layers in BACKBONES]
    if args.margins:
        backbones = backbones[:1]
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
        reads = [(name, features), (f"{name.split()[0]}, no states", stateless)]
        if args.margins:
            added = with_margins(policy, sequences, features, work / "margins.json")
            reads.append((f"{name.split()[0]} + margins", added))
            for column, what in (
                (-6, "operator"),
                (-4, "operand"),
                (-2, "path's lowest operator"),
                (-1, "path's lowest operand"),
            ):
                # each margin alone, on the validation steps that have one (the path's lowest: every step)
                value = added.x[val_rows, column].tolist()
                keep = [h > 0 for h in added.x[val_rows, column + 1].tolist()] if column < -2 else [True] * len(value)
                aucs = [
                    family_auc(*([v for v, k in zip(seq, keep) if k] for seq in (value, labels, kinds)), family)
                    for family in ("semantic", "stated")
                ]
                print(f"{what} margin alone: semantic {aucs[0]:.3f}, stated {aucs[1]:.3f} ({sum(keep)} steps)")
        for label, read in reads:
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
