"""Fitting a probe PRM: hidden-state features of labelled steps, a small head trained on them,
and the checkpoint written in the `probe` learned format (scorers/learned.py).

Features are read through the format's own scorer (the same text, the same positions, the
same backbone code that will score steps later), so a trained head scores exactly what it
was trained on. Fitting: standardised features, binary cross-entropy on the labels (0/1, or
soft Monte-Carlo values), plus, with a rank weight, a pairwise term on the policy's chains of
one problem (a chain whose answer is right should outscore one whose answer is wrong, by a
soft minimum of its steps' logits: what a search's `min` aggregation ranks them by); AdamW,
early stopping on a validation split that never cuts a problem in two; seeded. Then Platt
scaling of the head's logit on that validation split.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..processbench import roc_auc
from ..scorers.base import StepPath
from ..scorers.learned import PROBE_CONFIG, PROBE_WEIGHTS
from ..scorers.probe_model import ProbeHead, ProbeSpec
from .labels import Sequence, target


@dataclass
class Features:
    x: torch.Tensor  # [steps, d] float32
    y: torch.Tensor  # [steps] labels in [0, 1]
    sequence: torch.Tensor  # [steps] index of the step's sequence
    step: torch.Tensor  # [steps] index of the step in its sequence

    def rows(self, index: torch.Tensor) -> Features:
        return Features(self.x[index], self.y[index], self.sequence[index], self.step[index])

    def relabelled(self, sequences: list[Sequence], kind: str) -> Features:
        """The same steps with labels of another kind (labels.LABEL_KINDS)."""
        y = [target(sequences[i], k, kind) for i, k in zip(self.sequence.tolist(), self.step.tolist())]
        return Features(self.x, torch.tensor(y, dtype=torch.float32), self.sequence, self.step)


def _chars(sequence: Sequence) -> int:
    return len(sequence.question) + sum(map(len, sequence.steps))


def reading_batches(sequences: list[Sequence], batch_size: int = 16) -> list[list[int]]:
    """The order the backbone reads the sequences in, as batches of indices. A question asked
    once: shortest first, `batch_size` at a time. The chains of a question asked several times
    (a rollout tree's leaves, with its perturbed gold chain): `batch_size` such questions at a
    time, one chain of each per batch, so that every chain after a question's first extends
    paths the scorer has kept (the question, and the steps it shares with a sibling) and only
    the rest of it is fed."""
    length = lambda i: _chars(sequences[i])  # noqa: E731
    by_question: dict[str, list[int]] = {}
    for i, sequence in enumerate(sequences):
        by_question.setdefault(sequence.question, []).append(i)
    once = sorted((m[0] for m in by_question.values() if len(m) == 1), key=length)
    several = sorted((sorted(m, key=length) for m in by_question.values() if len(m) > 1), key=lambda m: length(m[0]))
    batches = [once[k : k + batch_size] for k in range(0, len(once), batch_size)]
    for w in range(0, len(several), batch_size):
        window = several[w : w + batch_size]
        batches += [[m[r] for m in window if r < len(m)] for r in range(max(map(len, window)))]
    return batches


def extract(scorer, sequences: list[Sequence], batch_size: int = 16, progress=None) -> Features:
    """Features of every labelled step, read through the probe scorer's own features (the same
    text, positions and backbone code that score steps later), in reading_batches' order;
    the rows come out shortest sequence first, whatever the reading order."""
    read: dict[int, torch.Tensor] = {}
    for chunk in reading_batches(sequences, batch_size):
        paths = [StepPath(sequences[i].question, "", tuple(sequences[i].steps)) for i in chunk]
        for i, features in zip(chunk, scorer.features(paths)):
            labelled = [k for k, label in enumerate(sequences[i].labels) if label is not None]
            read[i] = features[labelled]  # indexing by a list copies: nothing keeps the whole path alive
        if progress is not None:
            progress.update(len(chunk))
    xs, ys, owners, steps = [], [], [], []
    for i in sorted(range(len(sequences)), key=lambda i: _chars(sequences[i])):
        labelled = [(k, label) for k, label in enumerate(sequences[i].labels) if label is not None]
        xs += list(read[i])
        ys += [label for _, label in labelled]
        owners += [i] * len(labelled)
        steps += [k for k, _ in labelled]
    if not xs:
        raise ValueError("no labelled steps to read features of")
    return Features(torch.stack(xs), torch.tensor(ys, dtype=torch.float32), torch.tensor(owners), torch.tensor(steps))


@dataclass
class Chains:
    """The policy's chains of the problems where some end right and some wrong: per chain the
    feature rows of its steps in order (-1 pads), whether its answer is right, its problem."""

    rows: torch.Tensor  # [chains, longest] long
    right: torch.Tensor  # [chains] bool
    problem: torch.Tensor  # [chains] long


RANK_PROBLEMS = 32  # problems whose chains each training batch ranks


def ranked_chains(features: Features, sequences: list[Sequence]) -> Chains | None:
    """The chains a rank term compares (a chain's step held by an earlier chain of its problem
    is read from that chain's row: the same text up to it, so the same features); None if no
    problem has both right and wrong chains."""
    row_of: dict[tuple[str, tuple[str, ...]], int] = {}
    for row, (i, k) in enumerate(zip(features.sequence.tolist(), features.step.tolist())):
        if sequences[i].answer_right is not None:
            row_of[(sequences[i].group, tuple(sequences[i].steps[: k + 1]))] = row
    by_problem: dict[str, list[tuple[list[int], bool]]] = {}
    for s in sequences:
        rows = [row_of.get((s.group, tuple(s.steps[: k + 1]))) for k in range(len(s.steps))]
        if s.answer_right is not None and rows and None not in rows:
            by_problem.setdefault(s.group, []).append((rows, s.answer_right))
    chains = [
        (rows, right, p)
        for p, members in enumerate(m for m in by_problem.values() if len({r for _, r in m}) == 2)
        for rows, right in members
    ]
    if not chains:
        return None
    longest = max(len(rows) for rows, _, _ in chains)
    return Chains(
        torch.tensor([rows + [-1] * (longest - len(rows)) for rows, _, _ in chains]),
        torch.tensor([right for _, right, _ in chains]),
        torch.tensor([p for _, _, p in chains]),
    )


def rank_loss(head: ProbeHead, x: torch.Tensor, chains: Chains, problems: torch.Tensor) -> torch.Tensor:
    """Mean over `problems` of the mean over their (right, wrong) chain pairs of
    softplus(score(wrong) - score(right)), a chain's score the soft minimum of its steps' logits."""
    keep = torch.isin(chains.problem, problems)
    rows, right = chains.rows[keep], chains.right[keep]
    _, problem = torch.unique(chains.problem[keep], return_inverse=True)
    logits = head.logits(x[rows.clamp_min(0).flatten()]).view(rows.shape).masked_fill(rows < 0, float("inf"))
    score = -torch.logsumexp(-logits, dim=1)
    pairs = (problem[:, None] == problem[None, :]) & right[:, None] & ~right[None, :]  # [right one, wrong one]
    owner = problem[:, None].expand_as(pairs)[pairs]
    per_problem = torch.bincount(owner).float()
    losses = torch.nn.functional.softplus(score[None, :] - score[:, None])[pairs]
    return (losses / per_problem[owner]).sum() / len(per_problem)


def split_groups(sequences: list[Sequence], share: float, seed: int) -> set[str]:
    """The problems (groups) held out for validation: about `share` of them, seeded."""
    groups = sorted({s.group for s in sequences})
    random.Random(seed).shuffle(groups)
    return set(groups[: max(1, int(round(share * len(groups))))])


def fit(
    features: Features,
    val_rows: torch.Tensor,
    hidden: int,
    seed: int,
    epochs: int = 40,
    lr: float = 1e-3,
    weight_decay: float = 1e-2,
    batch: int = 512,
    patience: int = 4,
    progress=None,
    chains: Chains | None = None,
    rank_weight: float = 0.0,
):
    """(head, report) trained on the rows not in val_rows, stopped at the best validation loss
    (with `chains` and a rank weight, binary cross-entropy + rank_weight * rank_loss, each on its
    split's problems)."""
    torch.manual_seed(seed)
    train_rows = torch.ones(len(features.y), dtype=torch.bool)
    train_rows[val_rows] = False
    ranking = chains is not None and rank_weight > 0
    if ranking:
        held = ~train_rows[chains.rows[:, 0]]
        train_problems, val_problems = chains.problem[~held].unique(), chains.problem[held].unique()
    x, y = features.x[train_rows], features.y[train_rows]
    xv, yv = features.x[val_rows], features.y[val_rows]
    head = ProbeHead(x.shape[1], hidden)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp_min(1e-4))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, waited, history = float("inf"), None, 0, []
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        head.train()
        for idx in torch.randperm(len(y), generator=generator).split(batch):
            optimizer.zero_grad()
            loss = loss_fn(head.logits(x[idx]), y[idx])
            if ranking and len(train_problems):
                chosen = train_problems[torch.randperm(len(train_problems), generator=generator)[:RANK_PROBLEMS]]
                loss = loss + rank_weight * rank_loss(head, features.x, chains, chosen)
            loss.backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            val_loss = loss_fn(head.logits(xv), yv).item() if len(yv) else 0.0
            if ranking and len(val_problems):
                val_loss += rank_weight * rank_loss(head, features.x, chains, val_problems).item()
        history.append(round(val_loss, 5))
        if progress is not None:
            progress.update(1)
            progress.set_postfix(val_loss=f"{val_loss:.4f}")
        if val_loss < best - 1e-5:
            best, waited = val_loss, 0
            best_state = {k: v.clone() for k, v in head.state_dict().items()}
        else:
            waited += 1
            if waited >= patience:
                break
    head.load_state_dict(best_state)
    head.eval()
    with torch.no_grad():
        scores = head(xv).tolist() if len(yv) else []
    report = {
        "train_steps": int(train_rows.sum()),
        "val_steps": int(len(yv)),
        "epochs": len(history),
        "val_loss": round(best, 5),
        "val_auc": roc_auc(scores, [v > 0.5 for v in yv.tolist()]),
        "history": history,
        "rank_weight": rank_weight if ranking else 0.0,
        "ranked_problems": [len(train_problems), len(val_problems)] if ranking else [0, 0],
    }
    return head, report


def ensemble(heads: list[ProbeHead]) -> ProbeHead:
    """Heads fitted on the same rows with different seeds as one head whose logit is the mean of
    theirs: their hidden units side by side, the output layer's weights divided by their number.
    Exact for Linear-GELU-Linear heads that standardise alike (the same training rows)."""
    if len(heads) == 1:
        return heads[0]
    first = heads[0]
    if any(not torch.equal(h.mean, first.mean) or not torch.equal(h.std, first.std) for h in heads):
        raise ValueError("an ensemble's heads must standardise their features alike")
    if isinstance(first.net, torch.nn.Linear):
        raise ValueError("an ensemble needs heads with a hidden layer")
    hidden = sum(h.net[0].out_features for h in heads)
    combined = ProbeHead(first.mean.shape[0], hidden)
    with torch.no_grad():
        combined.mean.copy_(first.mean)
        combined.std.copy_(first.std)
        combined.net[0].weight.copy_(torch.cat([h.net[0].weight for h in heads]))
        combined.net[0].bias.copy_(torch.cat([h.net[0].bias for h in heads]))
        combined.net[2].weight.copy_(torch.cat([h.net[2].weight for h in heads], dim=1) / len(heads))
        combined.net[2].bias.copy_(torch.stack([h.net[2].bias for h in heads]).mean(0))
    return combined.eval()


def calibrate(head: ProbeHead, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    """Platt scaling: (scale, bias) minimising the log loss of sigmoid(scale * logit + bias) on
    held-out rows (the validation split), against Platt's smoothed targets ((N+ + 1) / (N+ + 2)
    for a right step, 1 / (N- + 2) for a wrong one), so that rows the head separates perfectly
    give a finite scale, not one that grows until every score is exactly 0 or 1; (1, 0) when
    they hold one class only."""
    labels = (y > 0.5).float()
    if len(labels) == 0 or labels.min() == labels.max():
        return 1.0, 0.0
    right = float(labels.sum())
    wrong = len(labels) - right
    targets = torch.where(labels > 0, (right + 1) / (right + 2), 1 / (wrong + 2))
    with torch.no_grad():
        logits = head.logits(x)
    params = torch.tensor([1.0, 0.0], requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=1.0, max_iter=200, line_search_fn="strong_wolfe")
    loss_fn = torch.nn.BCEWithLogitsLoss()

    def closure():
        optimizer.zero_grad()
        loss = loss_fn(params[0] * logits + params[1], targets)
        loss.backward()
        return loss

    optimizer.step(closure)
    scale, bias = (round(float(v), 5) for v in params.detach())
    return scale, bias


def save(head: ProbeHead, folder: Path, backbone: str, spec: ProbeSpec, extra: dict) -> None:
    """The checkpoint in the probe format: probe.json and probe.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "format": "probe",
        "backbone": backbone,
        **spec.to_json(),
        "features": int(head.mean.shape[0]),
        "hidden": 0 if isinstance(head.net, torch.nn.Linear) else head.net[0].out_features,
        "input": "question, then each step followed by a blank line (the trl format); "
        "features per step as probe_model.py describes",
        **extra,
    }
    (folder / PROBE_CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / PROBE_WEIGHTS))


def validation_report(
    head: ProbeHead, features: Features, gold: Features, sequences: list[Sequence], val_rows: torch.Tensor
) -> dict:
    """How a head does on the validation problems: ROC-AUC against gold-aligned labels on the
    policy's own steps (synthetic and GSM8K apart), ROC-AUC on perturbed chains with a semantic
    error, and the ECE of its raw (uncalibrated) scores on the policy's steps."""
    from ..diagnose import reliability
    from ..perturb import FAMILIES

    with torch.no_grad():
        scores = head(features.x[val_rows]).tolist()
    labels = gold.y[val_rows].tolist()
    owners = [sequences[i] for i in features.sequence[val_rows].tolist()]
    subsets = {
        "auc_own_synthetic": lambda s: s.source == "rollouts/synthetic",
        "auc_own_gsm8k": lambda s: s.source == "rollouts/gsm8k",
        "auc_semantic_chains": lambda s: s.kind in FAMILIES["semantic"],
    }
    out = {}
    for name, keep in subsets.items():
        chosen = [(v, y) for v, y, s in zip(scores, labels, owners) if keep(s)]
        auc = roc_auc([v for v, _ in chosen], [y > 0.5 for _, y in chosen])
        out[name] = None if auc is None else round(auc, 4)
    own = [(v, y) for v, y, s in zip(scores, labels, owners) if s.mc is not None]
    out["ece_own_raw"] = reliability([v for v, _ in own], [y for _, y in own])["ece"]
    return out


def fit_ensemble(
    first: ProbeHead, features: Features, sequences: list[Sequence], val_rows: torch.Tensor, cfg, progress=None
):
    """`first` (fitted with cfg.seed on cfg.labels) and cfg.ensemble - 1 heads fitted alike with
    the next seeds, as one head (`ensemble`); with each head's validation report and the
    ensemble's, since one seed's head can differ from another's by several points."""
    labelled, gold = features.relabelled(sequences, cfg.labels), features.relabelled(sequences, "gold")
    chains = ranked_chains(features, sequences)
    heads = [first]
    for offset in range(1, cfg.ensemble):
        heads.append(
            fit(labelled, val_rows, cfg.hidden, cfg.seed + offset, chains=chains, rank_weight=cfg.rank_weight)[0]
        )
        if progress is not None:
            progress.update(1)
    head = ensemble(heads)
    with torch.no_grad():
        scores = head(features.x[val_rows]).tolist()
    reports = {
        "heads": [validation_report(h, features, gold, sequences, val_rows) for h in heads],
        "ensemble": validation_report(head, features, gold, sequences, val_rows),
        "val_auc": roc_auc(scores, [v > 0.5 for v in labelled.y[val_rows].tolist()]),
        "seeds": [cfg.seed + k for k in range(cfg.ensemble)],
    }
    return head, reports


def label_ablation(features: Features, sequences: list[Sequence], val_rows: torch.Tensor, cfg, progress=None):
    """A head fitted per label kind (cfg.labels and cfg.ablation), each on the same steps and
    features: ({kind: (head, fit report)}, {kind: validation report})."""
    gold = features.relabelled(sequences, "gold")
    chains = ranked_chains(features, sequences)
    heads, table = {}, {}
    for kind in dict.fromkeys([cfg.labels, *cfg.ablation]):
        head, report = fit(
            features.relabelled(sequences, kind),
            val_rows,
            cfg.hidden,
            cfg.seed,
            chains=chains,
            rank_weight=cfg.rank_weight,
        )
        heads[kind] = (head, report)
        table[kind] = {**validation_report(head, features, gold, sequences, val_rows), "epochs": report["epochs"]}
        if progress is not None:
            progress.update(1)
    return heads, table
