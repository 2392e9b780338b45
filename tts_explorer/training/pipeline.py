"""`train-prm`: data, labels, features, fit, calibration, held-out evaluation and the model
card, in one seeded, resumable command.

Stages (each with a progress bar; the slow ones write to --work as they go, so a stopped
run resumes where it was):
1. problems: the synthetic generator (training/synth.py) and GSM8K train rows;
2. labels by construction: their gold steps, and copies broken by every perturbation
   (perturb.py), labelled 1 before the first wrong step and 0 from it on;
3. the policy's own steps: a rollout tree (N leaves, N/M first steps with M rollouts each)
   per problem, sampled with the default prompt and the reference answer; each step gets a
   gold-aligned label (gold.py) and a Monte-Carlo value (labels.py);
4. features: what the probe reads of each step (probe_model.py), through its own scorer;
5. the label ablation: a head fitted per label kind on the policy's steps (labels.LABEL_KINDS),
   compared on validation problems against gold-aligned labels;
6. fit with the configured kind: the ablation's head and `ensemble - 1` more with the next
   seeds, averaged into one head (probe.ensemble); Platt calibration on the validation
   problems, the checkpoint, then the held-out evaluation (evaluate.py) and the model card.
None of the training data comes from the held-out sets (evaluate.py) or assets/problems.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..assets import GSM8K_TRAIN
from ..data import read_rows
from ..errors import UserError
from ..perturb import FAMILIES
from ..policy.embedded import EMBEDDED
from ..processbench import build_samples, gsm8k_items
from ..prompts import DEFAULT_TEMPLATE
from ..scorers.probe_model import ProbeSpec
from ..tree import SearchTree
from .labels import LABEL_KINDS, Sequence, sample_sequence, tree_sequences
from .rollouts import bar as _bar
from .rollouts import log as _log
from .rollouts import rollout_trees
from .synth import generate

MAX_ENSEMBLE = 8  # heads averaged at most: 8 x 3.6 MB of the probe's head, each fitted in about half a minute
DEFAULT_OUT = "artifacts/train-prm/checkpoint"  # the shipped one: --out assets/prm/smollm2-135m-probe


@dataclass
class TrainConfig:
    model: str = EMBEDDED  # the policy that samples steps, and the probe's backbone
    out: str = DEFAULT_OUT
    work: str = "artifacts/train-prm"
    seed: int = 0
    template: str = DEFAULT_TEMPLATE  # the prompt the policy's steps are sampled with
    gsm8k: str = GSM8K_TRAIN  # a shipped set's name (assets.DATASETS) or a path
    synthetic: int = 3000  # problems with gold steps, each kept or perturbed
    gsm8k_rows: tuple[int, int] = (1000, 2000)  # train rows [a, b) for gold steps
    rollout_synthetic: int = 600  # problems (the first of the synthetic ones) with rollout trees
    rollout_gsm8k: int = 60  # GSM8K rows (from gsm8k_rows) with rollout trees
    n: int = 8  # leaves of a rollout tree
    m: int = 2  # rollouts behind each first step
    max_steps: int = 6
    step_tokens: int = 64
    final_tokens: int = 96
    parallel: int = 4  # rollout trees sampled at once (bench/rollout_parallel.py)
    error_share: float = 0.6
    labels: str = "gold"  # what the policy's steps are trained on (labels.LABEL_KINDS)
    rank_weight: float = 0.5  # the pairwise term on a problem's right and wrong chains (probe.rank_loss; 0: none)
    ablation: tuple[str, ...] = LABEL_KINDS  # label kinds compared in the model card
    layers: tuple[int, ...] = (16, 22, 28)  # chosen by bench/probe_choice.py (README)
    pool: tuple[str, ...] = ("last", "mean")
    token_stats: bool = True
    text_features: bool = True
    last_separator: str = "followed"  # how the probe reads a text's last separator (ProbeSpec; README)
    hidden: int = 256
    ensemble: int = 1  # heads fitted with seeds seed, seed+1, ... and averaged (5 measured, not better: README)
    val_share: float = 0.15
    evaluation: dict = field(default_factory=dict)  # evaluate.EvalConfig fields; {} for the defaults

    def __post_init__(self) -> None:
        for name in ("synthetic", "rollout_synthetic", "rollout_gsm8k", "n", "m", "max_steps", "hidden", "parallel"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 0:
                raise UserError(f"{name} must be a non-negative integer")
        if not isinstance(self.ensemble, int) or not 1 <= self.ensemble <= MAX_ENSEMBLE:
            raise UserError(f"ensemble must be an integer from 1 to {MAX_ENSEMBLE}")
        if self.ensemble > 1 and self.hidden == 0:
            raise UserError("an ensemble needs heads with hidden units (--hidden > 0)")
        weight = self.rank_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 100:
            raise UserError("rank_weight must be a number from 0 to 100")
        if self.n < self.m or self.n % self.m:
            raise UserError(f"N={self.n} must be a multiple of M={self.m}")
        for kind in (self.labels, *self.ablation):
            if kind not in LABEL_KINDS:
                raise UserError(f"unknown label kind {kind!r}; valid: {', '.join(LABEL_KINDS)}")
        try:
            self.spec()
        except ValueError as exc:
            raise UserError(str(exc)) from None

    def spec(self, calibration: tuple[float, float] = (1.0, 0.0)) -> ProbeSpec:
        from ..scorers.step_features import VERSION

        return ProbeSpec(
            tuple(self.layers),
            tuple(self.pool),
            self.token_stats,
            VERSION if self.text_features else None,
            calibration,
            self.last_separator,
        )


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


def policy_sequences(policy, cfg: TrainConfig, synthetic, gsm8k, work: Path) -> tuple[list[Sequence], list]:
    """(sequences, trees) of the policy's own steps on the first rollout_* problems, labelled
    gold-aligned and by their Monte-Carlo values."""
    roll = [(f"synthetic:{q}", q, steps, a) for q, steps, a in synthetic[: cfg.rollout_synthetic]] + [
        (f"gsm8k:{q}", q, steps, a) for q, steps, a in gsm8k[: cfg.rollout_gsm8k]
    ]
    trees = rollout_trees(
        policy,
        [(key, q, a) for key, q, _, a in roll],
        cfg,
        rollouts_file(cfg, work),
        "rollouts (train)",
        cfg.n,
        cfg.m,
        cfg.seed,
    )
    sequences = [
        seq
        for (key, _, steps, answer), tree in zip(roll, trees)
        for seq in tree_sequences(tree, "rollouts/" + key.split(":")[0], key, steps, answer)
    ]
    return sequences, trees


def rollouts_file(cfg: TrainConfig, work: Path) -> Path:
    """Where the policy's rollout trees are kept (appended as they are made)."""
    return work / f"rollouts-{cfg.template}.jsonl"


def features_file(sequences: list[Sequence], cfg: TrainConfig, work: Path) -> Path:
    """Where the features of these sequences are kept, keyed by the data, backbone and spec."""
    import hashlib

    key = hashlib.sha256(
        json.dumps([cfg.model, cfg.spec().to_json(), [(s.question, s.steps, s.labels) for s in sequences]]).encode()
    ).hexdigest()[:16]
    return work / f"features-{key}.pt"


def cached_features(reader, sequences: list[Sequence], path: Path):
    """The features of every labelled step, kept at `path` (features_file: one per data and spec)."""
    import torch

    from .probe import Features, extract

    if path.exists():
        return Features(**torch.load(path))
    with _bar(len(sequences), "features") as bar:
        features = extract(reader, sequences, progress=bar)
    torch.save(vars(features), path)
    return features


def train(cfg: TrainConfig) -> dict:
    """Run every stage; returns the summary written into the model card."""
    import torch

    from ..policy import engine_thread  # the fits run where the model does (its docstring says why)
    from ..policy.loading import load_policy
    from ..scorers import ScorerEnv, make_scorer
    from .evaluate import EvalConfig, eval_rollouts_file, evaluate, write_card
    from .probe import calibrate, fit_ensemble, label_ablation, save, split_groups

    started = time.monotonic()
    laps = _Laps()
    torch.manual_seed(cfg.seed)
    work = Path(cfg.work)
    work.mkdir(parents=True, exist_ok=True)
    policy = load_policy(cfg.model)
    _log(f"train-prm: policy and backbone {policy.name}; prompt {cfg.template}; work folder {work}")
    synthetic, gsm8k = problems(cfg)
    sequences = perturbed_sequences(cfg, synthetic, gsm8k)
    _log(f"problems: {len(synthetic)} synthetic, {len(gsm8k)} GSM8K; {len(sequences)} gold or perturbed chains")
    laps("data")
    laps.reused_if("rollouts", rollouts_file(cfg, work).exists())
    own, trees = policy_sequences(policy, cfg, synthetic, gsm8k, work)
    laps("rollouts")
    sequences += own
    labelled = sum(1 for s in sequences for v in s.labels if v is not None)
    _log(f"sequences: {len(sequences)} with {labelled} labelled steps")

    reader = feature_reader(cfg, policy, work / "reader")
    features_path = features_file(sequences, cfg, work)
    laps.reused_if("features", features_path.exists())
    features = cached_features(reader, sequences, features_path)
    laps("features")
    val_groups = split_groups(sequences, cfg.val_share, cfg.seed)
    val_rows = torch.tensor([sequences[i].group in val_groups for i in features.sequence.tolist()]).nonzero().squeeze(1)
    with _bar(len(set(cfg.ablation) | {cfg.labels}), "fit per label kind") as bar:
        heads, ablation = engine_thread.run(label_ablation, features, sequences, val_rows, cfg, progress=bar)
    head, report = heads[cfg.labels]
    if cfg.ensemble > 1:
        with _bar(cfg.ensemble - 1, "fit the ensemble's other heads") as bar:
            head, report["ensemble"] = engine_thread.run(
                fit_ensemble, head, features, sequences, val_rows, cfg, progress=bar
            )
        report = {**report, "val_auc": report["ensemble"]["val_auc"]}
    own_val = torch.tensor([sequences[int(features.sequence[r])].mc is not None for r in val_rows.tolist()])
    calibration_rows = val_rows[own_val]
    calibration = engine_thread.run(calibrate, head, features.x[calibration_rows], features.y[calibration_rows])
    out = Path(cfg.out)
    save(
        head,
        out,
        _backbone_ref(cfg, policy, out),
        cfg.spec(calibration),
        {"trained_by": "tts-explorer train-prm", "seed": cfg.seed, "labels": cfg.labels},
    )
    _log(
        f"fit: {report['train_steps']} train / {report['val_steps']} validation steps, {report['epochs']} epochs, "
        f"validation AUC {report['val_auc']}; calibration (scale, bias) {calibration}; checkpoint in {out}"
    )
    probe = make_scorer("probe", ScorerEnv(policy=policy), model=str(out))
    laps("fit")
    summary = {
        "config": asdict(cfg),
        "policy": policy.name,
        "data": _data_summary(sequences, features, trees),
        "fit": report,
        "calibration": {"scale": calibration[0], "bias": calibration[1], "fitted_on_steps": len(calibration_rows)},
        "spec": cfg.spec(calibration).to_json(),  # what probe.json says the head reads
        "ablation": ablation,
        "consistency": _same_scores(probe, head, calibration, sequences, features),
    }
    laps.reused_if("evaluation: the policy's own steps", eval_rollouts_file(work, cfg.template).exists())
    summary["code"] = code_commit()
    summary["evaluation"] = evaluate(policy, str(out), EvalConfig(**cfg.evaluation), work, _bar, cfg, laps)
    summary["minutes"] = round((time.monotonic() - started) / 60, 1)
    summary["stage_minutes"] = laps.minutes
    summary["stages_reused"] = sorted(laps.reused)
    write_card(out, summary)
    return summary


def code_commit() -> str | None:
    """The git commit of the code that runs (with "+changes" where its files differ from it), so a
    card can say which code made its checkpoint; None outside a git checkout."""
    import subprocess

    repo = Path(__file__).resolve().parents[2]
    if not (repo / ".git").exists():  # an installed package (a venv inside a checkout is not its code)
        return None
    try:
        head, changes = (
            subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=20)
            for args in (["rev-parse", "--short", "HEAD"], ["status", "--porcelain", "--", "tts_explorer"])
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if head.returncode or not head.stdout.strip():
        return None
    return head.stdout.strip() + ("+changes" if changes.stdout.strip() else "")


class _Laps:
    """Minutes each stage of this run took (a resumed run counts only what it did again), and
    the stages that read what an earlier run left in the work folder."""

    def __init__(self) -> None:
        self.minutes: dict[str, float] = {}
        self.reused: set[str] = set()
        self._last = time.monotonic()

    def reused_if(self, stage: str, found: bool) -> None:
        if found:
            self.reused.add(stage)

    def __call__(self, stage: str) -> None:
        now = time.monotonic()
        self.minutes[stage] = round((now - self._last) / 60, 1)
        self._last = now
        _log(f"{stage}: {self.minutes[stage]} min")


def feature_reader(cfg: TrainConfig, policy, folder: Path):
    """The probe format's own scorer over the backbone with a placeholder head (saved in `folder`):
    it reads features exactly as the trained probe will."""
    from ..scorers import ScorerEnv, make_scorer
    from ..scorers.probe_model import ProbeHead
    from .probe import save

    head = ProbeHead(cfg.spec().width(policy.model.config.hidden_size))
    save(head, folder, _backbone_ref(cfg, policy, folder), cfg.spec(), {})
    return make_scorer("probe", ScorerEnv(), model=str(folder))


def _backbone_ref(cfg: TrainConfig, policy, folder: Path) -> str:
    """How the checkpoint names its backbone (`policy`, loaded from cfg.model): "embedded", or a
    path relative to the checkpoint (a model named by a registry, as gemma3-270m is, by the folder
    it was converted into)."""
    if cfg.model == EMBEDDED:
        return EMBEDDED
    import os

    source = Path(cfg.model) if Path(cfg.model).exists() else Path(policy.model.name_or_path)
    return os.path.relpath(source.resolve(), folder.resolve())


def _data_summary(sequences: list[Sequence], features, trees: list[SearchTree]) -> dict:
    by_source: dict[str, int] = {}
    positives: dict[str, int] = {}
    for seq in sequences:
        labelled = [v for v in seq.labels if v is not None]
        by_source[seq.source] = by_source.get(seq.source, 0) + len(labelled)
        positives[seq.source] = positives.get(seq.source, 0) + sum(v > 0.5 for v in labelled)
    rollouts = [r for seq in sequences if seq.mc is not None for r, v in zip(seq.rollouts, seq.labels) if v is not None]
    leaves = [n for tree in trees for n in tree.candidates()]
    return {
        "labelled_steps": by_source,
        "right_steps": positives,
        "features": int(features.x.shape[1]),
        "rollouts_per_label": {
            "mean": round(sum(rollouts) / max(len(rollouts), 1), 2),
            "max": max(rollouts, default=0),
        },
        "policy_pass_at_1_on_rollout_problems": round(sum(bool(n.correct) for n in leaves) / max(len(leaves), 1), 3),
        "positive_share": round(float(features.y.gt(0.5).float().mean()), 3),
    }


def _same_scores(
    scorer, head, calibration: tuple[float, float], sequences: list[Sequence], features, count: int = 8
) -> float:
    """Largest difference between the scores the saved checkpoint gives the first `count`
    sequences through the loader and the trained head's (calibrated) scores of the features
    read while training (0 when they are the same model reading the same features)."""
    import torch

    from ..scorers.base import StepPath

    loaded = scorer.score_steps([StepPath(s.question, "", tuple(s.steps)) for s in sequences[:count]])
    scale, bias = calibration
    gaps = []
    with torch.no_grad():
        for i, scores in enumerate(loaded):
            rows = (features.sequence == i).nonzero().squeeze(1)
            direct = torch.sigmoid(scale * head.logits(features.x[rows]) + bias).tolist()
            gaps += [abs(d - scores[k]) for d, k in zip(direct, features.step[rows].tolist())]
    return max(gaps, default=0.0)
