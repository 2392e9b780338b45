"""Fitting a probe PRM: hidden-state features of labelled steps, a small head trained on them,
and the checkpoint written in the `probe` learned format (scorers/learned.py).

Features are read through the format's own scorer (the same text, the same positions, the
same backbone code that will score steps later), so a trained head scores exactly what it
was trained on. Fitting: standardised features, binary cross-entropy on soft labels
(Monte-Carlo values or 0/1 by construction), AdamW, early stopping on a validation split
that never cuts a problem in two; seeded.
"""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from ..processbench import roc_auc
from ..scorers.base import StepPath
from ..scorers.learned import PROBE_CONFIG, PROBE_WEIGHTS, ProbeHead, ProbeModel
from .labels import Sequence


@dataclass
class Features:
    x: torch.Tensor  # [steps, d] float32
    y: torch.Tensor  # [steps] labels in [0, 1]
    sequence: torch.Tensor  # [steps] index of the step's sequence


@torch.inference_mode()
def extract(model: ProbeModel, scorer, sequences: list[Sequence], batch_size: int = 16, progress=None) -> Features:
    """Features of every labelled step, read with the scorer's own text and positions."""
    xs, ys, owners = [], [], []
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i].question) + sum(map(len, sequences[i].steps)))
    pad = scorer.tokenizer.pad_token_id if scorer.tokenizer.pad_token_id is not None else 0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        encoded = [scorer.positions(StepPath(sequences[i].question, "", tuple(sequences[i].steps))) for i in chunk]
        longest = max(len(ids) for ids, _ in encoded)
        ids = torch.full((len(chunk), longest), pad, dtype=torch.long)
        mask = torch.zeros(len(chunk), longest, dtype=torch.long)
        for row, (tokens, _) in enumerate(encoded):
            ids[row, :len(tokens)] = torch.tensor(tokens)
            mask[row, :len(tokens)] = 1
        hidden = model.features(ids, mask)
        for row, (i, (_, where)) in enumerate(zip(chunk, encoded)):
            for step, position in enumerate(where):
                label = sequences[i].labels[step]
                if label is not None:
                    xs.append(hidden[row, position].clone())  # a copy: a view would keep the whole batch alive
                    ys.append(label)
                    owners.append(i)
        if progress is not None:
            progress.update(len(chunk))
    if not xs:
        raise ValueError("no labelled steps to read features of")
    return Features(torch.stack(xs), torch.tensor(ys, dtype=torch.float32), torch.tensor(owners))


def split_groups(sequences: list[Sequence], share: float, seed: int) -> set[str]:
    """The problems (groups) held out for validation: about `share` of them, seeded."""
    groups = sorted({s.group for s in sequences})
    random.Random(seed).shuffle(groups)
    return set(groups[: max(1, int(round(share * len(groups))))])


def fit(features: Features, val_rows: torch.Tensor, hidden: int, seed: int, epochs: int = 40,
        lr: float = 1e-3, weight_decay: float = 1e-2, batch: int = 512, patience: int = 4, progress=None):
    """(head, report) trained on the rows not in val_rows, stopped at the best validation loss."""
    torch.manual_seed(seed)
    train_rows = torch.ones(len(features.y), dtype=torch.bool)
    train_rows[val_rows] = False
    x, y = features.x[train_rows], features.y[train_rows]
    xv, yv = features.x[val_rows], features.y[val_rows]
    head = ProbeHead(x.shape[1], hidden)
    head.mean.copy_(x.mean(0))
    head.std.copy_(x.std(0).clamp_min(1e-4))
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = torch.nn.BCEWithLogitsLoss()
    best, best_state, waited, history = float("inf"), None, 0, []
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        head.train()
        for idx in torch.randperm(len(y), generator=generator).split(batch):
            optimizer.zero_grad()
            loss_fn(head.logits(x[idx]), y[idx]).backward()
            optimizer.step()
        head.eval()
        with torch.no_grad():
            val_loss = loss_fn(head.logits(xv), yv).item() if len(yv) else 0.0
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
    report = {"train_steps": int(train_rows.sum()), "val_steps": int(len(yv)), "epochs": len(history),
              "val_loss": round(best, 5), "val_auc": roc_auc(scores, [v > 0.5 for v in yv.tolist()]),
              "history": history}
    return head, report


def save(head: ProbeHead, folder: Path, backbone: str, layers: list[int], hidden: int, extra: dict) -> None:
    """The checkpoint in the probe format: probe.json and probe.safetensors."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    config = {"format": "probe", "backbone": backbone, "layers": list(layers), "features": int(head.mean.shape[0]),
              "hidden": hidden, "input": "question, then each step followed by a blank line (the trl format); "
              "score at the last token of each step's separator", **extra}
    (folder / PROBE_CONFIG).write_text(json.dumps(config, indent=1) + "\n", encoding="utf-8")
    save_file({k: v.contiguous() for k, v in head.state_dict().items()}, str(folder / PROBE_WEIGHTS))
