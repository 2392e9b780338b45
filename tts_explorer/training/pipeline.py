"""`train-prm`: data, labels, features, fit, held-out evaluation and the model card, in one
seeded, resumable command.

Stages (each with a progress bar; the slow ones write to --work as they go, so a stopped
run resumes where it was):
1. problems: the synthetic generator (training/synth.py) and GSM8K train rows;
2. labels by construction: their gold steps, and copies broken by every perturbation
   (perturb.py), labelled 1 before the first wrong step and 0 from it on;
3. Monte-Carlo labels on the policy's own steps: a rollout tree (N leaves, N/M first steps
   with M rollouts each) per problem, run with the reference answer (labels.py);
4. features: the backbone's hidden states at each step's end, read through the probe
   format's own scorer; 5. fit (probe.py), on problems split into train and validation;
6. the checkpoint, then the held-out evaluation (evaluate.py) and the model card.
None of the training data comes from assets/problems/easy.jsonl or gsm8k_test_dev.
"""
from __future__ import annotations

import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..config import SearchConfig
from ..data import read_rows
from ..errors import UserError
from ..perturb import FAMILIES
from ..processbench import build_samples, gsm8k_items
from ..search import new_tree, run_to_end
from ..tree import SearchTree
from .labels import Sequence, sample_sequence, tree_sequences
from .synth import generate

DEFAULT_OUT = "artifacts/train-prm/checkpoint"  # the shipped one: --out assets/prm/smollm2-135m-probe
ROLLOUT_SCORER = "arithmetic"  # the rollout tree runs no scorer; the name is only recorded


@dataclass
class TrainConfig:
    model: str = "embedded"  # the policy that samples steps, and the probe's backbone
    out: str = DEFAULT_OUT
    work: str = "artifacts/train-prm"
    seed: int = 0
    gsm8k: str = "gsm8k-train"  # a shipped set's name (assets.DATASETS) or a path
    synthetic: int = 3000  # problems with gold steps, each kept or perturbed
    gsm8k_rows: tuple[int, int] = (1000, 2000)  # train rows [a, b) for gold steps
    rollout_synthetic: int = 500  # problems (the first of the synthetic ones) with rollout trees
    rollout_gsm8k: int = 80  # GSM8K rows (from gsm8k_rows) with rollout trees
    n: int = 8  # leaves of a rollout tree
    m: int = 2  # rollouts behind each first step
    max_steps: int = 6
    step_tokens: int = 64
    final_tokens: int = 96
    error_share: float = 0.6
    layers: tuple[int, ...] = (16, 22, 28)  # chosen by bench/probe_choice.py (README)
    hidden: int = 256
    val_share: float = 0.1
    evaluation: dict = field(default_factory=dict)  # evaluate.EvalConfig fields; {} for the defaults

    def __post_init__(self) -> None:
        for name in ("synthetic", "rollout_synthetic", "rollout_gsm8k", "n", "m", "max_steps", "hidden"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise UserError(f"{name} must be a non-negative integer")
        if self.n < self.m or self.n % self.m:
            raise UserError(f"N={self.n} must be a multiple of M={self.m}")
        if not self.layers or min(self.layers) < 0:
            raise UserError("layers must be hidden-state indices (0 = the embeddings)")


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _bar(total: int, desc: str):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, file=sys.stderr, dynamic_ncols=True)


def problems(cfg: TrainConfig) -> tuple[list[tuple[str, list[str], str]], list[tuple[str, list[str], str]]]:
    """(synthetic items, GSM8K items): (question, gold steps, answer)."""
    synthetic = [(p.question, list(p.steps), p.answer) for p in generate(cfg.synthetic, cfg.seed)]
    gsm8k = gsm8k_items(read_rows(cfg.gsm8k, *cfg.gsm8k_rows)) if cfg.gsm8k_rows[1] > cfg.gsm8k_rows[0] else []
    return synthetic, gsm8k


def perturbed_sequences(cfg: TrainConfig, synthetic, gsm8k) -> list[Sequence]:
    out = []
    for name, items, salt in (("synthetic", synthetic, 1), ("gsm8k", gsm8k, 2)):
        samples = build_samples(items, seed=cfg.seed * 1000 + salt, error_share=cfg.error_share, kinds=FAMILIES["all"])
        out += [sample_sequence(s, f"perturbed/{name}", f"{name}:{s.problem}") for s in samples]
    return out


def rollout_trees(policy, items: list[tuple[str, str, str]], cfg, path: Path, desc: str, n: int, m: int,
                  seed: int) -> list[SearchTree]:
    """A rollout tree per (id, question, answer), read from `path` where already made, else made
    and appended to it (so a stopped run resumes)."""
    done: dict[str, SearchTree] = {}
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["id"]] = SearchTree.from_json(row["tree"])
    config = SearchConfig(strategy="rollouts", n=n, beam_width=m, max_steps=cfg.max_steps,
                          step_tokens=cfg.step_tokens, final_tokens=cfg.final_tokens, seed=seed)
    missing = [item for item in items if item[0] not in done]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as out, _bar(len(items), desc) as bar:
        bar.update(len(items) - len(missing))
        for key, question, answer in missing:
            run_config = SearchConfig(**{**vars(config), "seed": seed + items.index((key, question, answer))})
            tree = new_tree(question, run_config, ROLLOUT_SCORER, answer, policy.name)
            run_to_end(tree, policy, run_config, ROLLOUT_SCORER)
            done[key] = tree
            out.write(json.dumps({"id": key, "tree": tree.to_json()}) + "\n")
            out.flush()
            bar.update(1)
    return [done[key] for key, _, _ in items]


def train(cfg: TrainConfig) -> dict:
    """Run every stage; returns the summary written into the model card."""
    import torch

    from ..policy.loading import load_policy
    from ..scorers import ScorerEnv, make_scorer
    from ..scorers.learned import ProbeHead, ProbeModel
    from .evaluate import EvalConfig, evaluate, write_card
    from .probe import extract, fit, save, split_groups

    started = time.monotonic()
    torch.manual_seed(cfg.seed)
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    policy = load_policy(cfg.model)
    _log(f"train-prm: policy and backbone {policy.name}; work folder {work}")
    synthetic, gsm8k = problems(cfg)
    sequences = perturbed_sequences(cfg, synthetic, gsm8k)
    _log(f"problems: {len(synthetic)} synthetic, {len(gsm8k)} GSM8K; {len(sequences)} gold or perturbed chains")
    roll_items = ([(f"synthetic:{q}", q, a) for q, _, a in synthetic[: cfg.rollout_synthetic]] +
                  [(f"gsm8k:{q}", q, a) for q, _, a in gsm8k[: cfg.rollout_gsm8k]])
    trees = rollout_trees(policy, roll_items, cfg, work / "rollouts.jsonl", "rollouts (train)", cfg.n, cfg.m,
                          cfg.seed)
    for (key, _, _), tree in zip(roll_items, trees):
        sequences += tree_sequences(tree, "rollouts/" + key.split(":")[0], key)
    labelled = sum(1 for s in sequences for v in s.labels if v is not None)
    _log(f"sequences: {len(sequences)} with {labelled} labelled steps")

    # the backbone and a placeholder head, read through the probe format's own scorer
    placeholder = work / "backbone-only"
    save(ProbeHead(policy.model.config.hidden_size * len(cfg.layers)), placeholder, _backbone_ref(cfg, placeholder),
         list(cfg.layers), 0, {})
    reader = make_scorer("probe", ScorerEnv(), model=str(placeholder))
    with _bar(len(sequences), "features") as bar:
        features = extract(reader.model, reader, sequences, progress=bar)
    val_groups = split_groups(sequences, cfg.val_share, cfg.seed)
    val_rows = torch.tensor([sequences[i].group in val_groups for i in features.sequence.tolist()])
    with _bar(40, "fit") as bar:
        head, report = fit(features, val_rows.nonzero().squeeze(1), cfg.hidden, cfg.seed, progress=bar)
    out = Path(cfg.out)
    save(head, out, _backbone_ref(cfg, out), list(cfg.layers), cfg.hidden,
         {"trained_by": "python -m tts_explorer train-prm", "seed": cfg.seed})
    _log(f"fit: {report['train_steps']} train / {report['val_steps']} validation steps, {report['epochs']} epochs, "
         f"validation AUC {report['val_auc']}; checkpoint in {out}")
    probe = make_scorer("probe", ScorerEnv(policy=policy), model=str(out))
    check = ProbeModel(probe.model.backbone, head, list(cfg.layers))
    summary = {"config": asdict(cfg), "policy": policy.name,
               "data": _data_summary(sequences, features, trees), "fit": report,
               "consistency": _same_scores(check, probe, sequences[:8])}
    summary["evaluation"] = evaluate(policy, str(out), EvalConfig(**cfg.evaluation), work, _bar)
    summary["minutes"] = round((time.monotonic() - started) / 60, 1)
    write_card(out, summary)
    return summary


def _backbone_ref(cfg: TrainConfig, folder: Path) -> str:
    """How the checkpoint names its backbone: "embedded", or a path relative to the checkpoint."""
    from ..policy.loading import EMBEDDED

    if cfg.model == EMBEDDED:
        return EMBEDDED
    import os

    return os.path.relpath(Path(cfg.model).resolve(), folder.resolve())


def _data_summary(sequences: list[Sequence], features, trees: list[SearchTree]) -> dict:
    by_source: dict[str, int] = {}
    for seq in sequences:
        by_source[seq.source] = by_source.get(seq.source, 0) + sum(1 for v in seq.labels if v is not None)
    rollouts = [r for seq in sequences if seq.source.startswith("rollouts") for r, v in zip(seq.rollouts, seq.labels)
                if v is not None]
    leaves = [n for tree in trees for n in tree.candidates()]
    return {"labelled_steps": by_source, "features": int(features.x.shape[1]),
            "rollouts_per_label": {"mean": round(sum(rollouts) / max(len(rollouts), 1), 2),
                                   "max": max(rollouts, default=0)},
            "policy_pass_at_1_on_rollout_problems": round(sum(bool(n.correct) for n in leaves) / max(len(leaves), 1), 3),
            "positive_share": round(float(features.y.gt(0.5).float().mean()), 3)}


def _same_scores(head_model, scorer, sequences: list[Sequence]) -> float:
    """Largest difference between the scores the trained head gives the fitted features and the
    scores the saved checkpoint gives through the loader (0 when they are the same model)."""
    import torch

    from ..scorers.base import StepPath
    from .probe import extract

    features = extract(head_model, scorer, [Sequence(s.question, s.steps, [1.0] * len(s.steps), [0] * len(s.steps),
                                                     s.source, s.group) for s in sequences])
    with torch.no_grad():
        values = head_model.head(features.x).tolist()
    direct: dict[int, list[float]] = {}  # sequence index -> its steps' scores, in order
    for owner, value in zip(features.sequence.tolist(), values):
        direct.setdefault(owner, []).append(value)
    loaded = scorer.score_steps([StepPath(s.question, "", tuple(s.steps)) for s in sequences])
    return max(abs(a - b) for i, row in enumerate(loaded) for a, b in zip(direct[i], row))
