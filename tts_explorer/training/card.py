"""The model card of a trained probe PRM, written from train-prm's summary (metrics.json)."""

from __future__ import annotations

from ..policy.embedded import EMBEDDED

FIXED_ORDER = ("probe", "arithmetic", "confidence")  # then any compared checkpoints, in their order


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def _scorers(evaluation: dict) -> list[str]:
    return [*FIXED_ORDER, *(name for name, _ in evaluation["config"].get("compare", ()))]


def _reads(cfg: dict, spec: dict) -> str:
    """What the head reads; `spec` is the checkpoint's probe.json recipe (absent in older summaries)."""
    layers = ", ".join(str(i) for i in cfg["layers"])
    pools = " and ".join(
        {"last": "at the last token of its separator", "mean": "averaged over its tokens"}[p] for p in cfg["pool"]
    )
    extras = []
    if cfg["token_stats"]:
        extras.append("the backbone's mean and minimum token log-probability and mean entropy over the step")
    if cfg["text_features"]:
        extras.append(
            "the calculator's features of the step (tts_explorer/scorers/step_features.py: are its "
            "calculations exact, are their operands and results values the problem states or earlier "
            "steps computed, or one operation away from them, does it state numbers from nowhere, how its "
            "answer relates to what was computed, the same for the steps before it"
            + (
                ", and how many of the numbers the problem states the path has not written yet)"
                if spec.get("text_features", "calc-v1") != "calc-v1"
                else ")"
            )
        )
    head = "a linear layer" if cfg["hidden"] == 0 else f"an MLP with {cfg['hidden']} hidden units"
    if cfg.get("ensemble", 1) > 1:
        head = f"{cfg['ensemble']} MLPs with {cfg['hidden']} hidden units each, their logits averaged"
    if spec.get("last_separator") == "followed":
        extras.append("each step's blank line tokenized as when another step follows it, last step or not")
    return (
        f"the backbone's hidden states of layers {layers} (0 = embeddings), {pools}"
        + "".join(f"; {e}" for e in extras)
        + f". Standardised, through {head}, then Platt-calibrated"
    )


def _stages(summary: dict) -> str:
    """The run's minutes per stage, as ": data 0.1, rollouts 30.2, ..." ("" in a card made before they were kept),
    and the stages that read what an earlier run made."""
    stages = summary.get("stage_minutes") or {}
    if not stages:
        return ""
    line = ": " + ", ".join(f"{stage} {minutes}" for stage, minutes in stages.items())
    reused = summary.get("stages_reused") or []
    if reused:
        line += f"; read, in part or whole, from an earlier run's work folder: {'; '.join(reused)}"
    return line


def model_card(summary: dict) -> str:
    cfg, data, fit = summary["config"], summary["data"], summary["fit"]
    evaluation = summary["evaluation"]
    scorers = _scorers(evaluation)
    cal = summary["calibration"]
    lines = [
        "# Probe PRM on SmolLM2-135M-Instruct" if cfg["model"] == EMBEDDED else f"# Probe PRM on {summary['policy']}",
        "",
        f"A process reward model made by `tts-explorer train-prm` (seed {cfg['seed']}, {summary['minutes']} minutes "
        f"in the run that wrote it, on a 2-core CPU{_stages(summary)}). "
        "Format `probe` (tts_explorer/scorers/probe_model.py): "
        "the text is the question, then each step followed by a blank line; "
        f"a step's features are {_reads(cfg, summary.get('spec') or {})} (scale {cal['scale']}, bias "
        f"{cal['bias']}, fitted on {cal['fitted_on_steps']} validation steps of the policy), so a score reads as the "
        f"probability that the step is right. The backbone is the policy itself ({summary['policy']}), frozen and "
        "shared with the search; this folder holds only the head.",
        "",
        "## Data and labels",
        "",
        "| source | labelled steps | right |",
        "|---|---|---|",
        *[
            f"| {source} | {count} | {data['right_steps'].get(source, 0)} |"
            for source, count in data["labelled_steps"].items()
        ],
        "",
        f"- Problems: {cfg['synthetic']} from the synthetic generator (seed {cfg['seed']}) and GSM8K train rows "
        f"{cfg['gsm8k_rows'][0]}-{cfg['gsm8k_rows'][1] - 1} (shipped in assets/data); none from the held-out sets "
        "below or assets/problems.",
        f"- Labels by construction (`perturbed/*`): gold steps, {int(100 * cfg['error_share'])}% of them broken by one "
        "perturbation (a wrong stated result, a swapped operator, a dropped step, or a semantic error: the wrong "
        "operation or a wrong number from the problem, computed correctly and carried on); 1 before the first wrong "
        "step, 0 from it on.",
        f"- The policy's own steps (`rollouts/*`): a rollout tree per problem ({cfg['n']} leaves, "
        f"{cfg['n'] // cfg['m']} first steps with {cfg['m']} rollouts each, temperature 0.8, prompt "
        f"`{cfg['template']}`). Gold-aligned labels (tts_explorer/training/gold.py): a step is right when its "
        "arithmetic holds and every result it states is a value of the gold solution or of the problem (an answer "
        "must be the reference); every step from the first one that is not is wrong. Monte-Carlo values: the share "
        "of a step's finished descendants whose answer is the reference (rollouts per step: mean "
        f"{data['rollouts_per_label']['mean']}, at most {data['rollouts_per_label']['max']}). The policy's Pass@1 on "
        f"these problems: {_pct(data['policy_pass_at_1_on_rollout_problems'])}. Trained on: `{cfg['labels']}`.",
        f"- {data['features']} features per step; {_pct(data['positive_share'])} of the training labels above 0.5.",
        "",
        "## Which labels (ablation)",
        "",
        "One head per label kind for the policy's steps (the perturbed chains keep their labels by construction), the "
        f"same features, fitted the same way, measured on the validation problems ({int(100 * cfg['val_share'])}% of "
        "them, never trained on): ROC-AUC against gold-aligned labels on the policy's steps, ROC-AUC on perturbed "
        "chains with a semantic error, and the ECE of the raw (uncalibrated) scores on the policy's steps.",
        "",
        *_validation_table(
            "labels",
            [(f"{kind}{' (shipped)' if kind == cfg['labels'] else ''}", r) for kind, r in summary["ablation"].items()],
        ),
        "",
        "## Fit",
        "",
        "Binary cross-entropy"
        + (
            f" plus {fit['rank_weight']} x a pairwise term on the policy's chains of one problem (softplus of a wrong "
            "chain's score minus a right one's, a chain's score the soft minimum of its steps' logits; "
            f"{fit['ranked_problems'][0]} training and {fit['ranked_problems'][1]} validation problems with both)"
            if fit.get("rank_weight")
            else ""
        )
        + f", AdamW, early stopping on the validation problems: {fit['train_steps']} training and "
        f"{fit['val_steps']} validation steps, {fit['epochs']} epochs, validation loss {fit['val_loss']}, validation "
        f"AUC {_num(fit['val_auc'])}. Loading this folder through the learned-PRM loader gives the fitted head's "
        f"scores to within {summary['consistency']:.1e}.",
        "",
        *_ensemble_lines(fit.get("ensemble")),
        "## Held-out evaluation",
        "",
        "Scorers: this probe, `arithmetic`, `confidence` (the policy's own token probability)"
        + "".join(f", `{name}` ({folder})" for name, folder in evaluation["config"].get("compare", ()))
        + ".",
        "",
    ]
    own = evaluation["own_steps"]
    for set_name, entry in own["sets"].items():
        lines += [
            f"**The policy's own steps, {set_name}**: {entry['trees']} rollout trees (N={evaluation['config']['n']}, "
            f"M={evaluation['config']['m']}, prompt `{evaluation['template']}`), {entry['steps']} steps, "
            f"{entry['right_steps']} right by the gold-aligned labels; the policy's Pass@1 there "
            f"{_pct(entry['policy_pass_at_1'])}; {entry['problems_with_both']} problems with both right and wrong "
            "finished candidates.",
            "",
            "| scorer | step AUC, gold-aligned | step AUC, Monte-Carlo | ECE | path AUC within problems (min) | "
            "(last) |",
            "|---|---|---|---|---|---|",
            *[
                f"| {name} | {_num(entry['auc_gold'].get(name))} | {_num(entry['auc_mc'].get(name))} | "
                f"{_num(entry['reliability'][name]['ece'])} | {_num(entry['path_auc'][name]['min'])} | "
                f"{_num(entry['path_auc'][name]['last'])} |"
                for name in scorers
            ],
            "",
            f"Reliability of this probe ({entry['reliability']['probe']['steps']} steps; per tenth of [0, 1]: steps, "
            "mean score, share right): "
            + "; ".join(
                f"{i / 10:.1f}-{(i + 1) / 10:.1f}: {b['count']}, {_num(b['score'])}, {_num(b['positives'])}"
                for i, b in enumerate(entry["reliability"]["probe"]["bins"])
                if b["count"]
            )
            + ".",
            "",
        ]
    pb = evaluation["processbench"]
    lines += [
        "ProcessBench-style F1 on perturbed gold steps (harmonic mean of the accuracy on erroneous samples, first "
        "error found at the right step, and on correct samples, nothing flagged), threshold tuned per scorer on a "
        f"separate split (thresholds: {', '.join(f'{k} {v:.3f}' for k, v in pb['thresholds'].items())}):",
        "",
    ]
    for set_name, families in pb["sets"].items():
        lines += [
            f"**{set_name}**",
            "",
            "| scorer | errors in a stated result: F1 | semantic errors, arithmetic right: F1 |",
            "|---|---|---|",
        ]
        for name in scorers:
            cells = [families.get(family, {}).get(name) for family in ("stated", "semantic")]
            lines.append(
                f"| {name} | "
                + " | ".join("–" if c is None else f"{_pct(c['f1'])} ({c['samples']} samples)" for c in cells)
                + " |"
            )
        lines.append("")
    lines += [
        "Spread of this probe's scores over the policy's held-out steps (steps per tenth of [0, 1]): "
        + ", ".join(f"{i / 10:.1f}-{(i + 1) / 10:.1f}: {c}" for i, c in enumerate(own["probe_histogram"]))
        + f". Mean standard deviation inside one tree: {own['probe_spread_in_a_tree']}.",
        "",
        "## Reproduce",
        "",
        "```bash",
        *_checkout(summary.get("code")),
        # a run before --parallel made its rollout trees one at a time, and its code has no such flag
        f"tts-explorer train-prm --out {cfg['out']} --work {cfg['work']}"
        + (f" --parallel {cfg['parallel']}" if "parallel" in cfg else "")
        + (f" --ensemble {cfg['ensemble']}" if cfg.get("ensemble", 1) > 1 else "")
        + "   # writes this folder; resumes from --work",
        "```",
        "",
    ]
    return "\n".join(lines)


def _checkout(code: str | None) -> list[str]:
    """The line that checks out the code a run used (train-prm's defaults change between releases)."""
    if not code:
        return []
    commit, _, changed = code.partition("+")
    note = "the code it was made with" + (", plus changes not committed then" if changed else "")
    return [f"git checkout {commit}   # {note}; train-prm's defaults change between releases"]


def _ensemble_lines(ensemble: dict | None) -> list[str]:
    """The ensemble's heads and their mean beside each other on the validation problems."""
    if not ensemble:
        return []
    rows = [(f"seed {seed}", r) for seed, r in zip(ensemble["seeds"], ensemble["heads"])]
    rows.append((f"**the {len(ensemble['heads'])} averaged (shipped)**", ensemble["ensemble"]))
    return [
        f"The head is {len(ensemble['heads'])} heads fitted alike with seeds {', '.join(map(str, ensemble['seeds']))}, "
        "their logits averaged (one MLP with their hidden units side by side), each beside the average on the "
        "validation problems (the ensemble's validation AUC is the one above):",
        "",
        *_validation_table("head", rows),
        "",
    ]


def _validation_table(first: str, rows: list[tuple[str, dict]]) -> list[str]:
    """Heads' validation reports (training/probe.validation_report) as a table, one row per (name, report)."""
    return [
        f"| {first} | AUC, own steps (synthetic) | AUC, own steps (GSM8K) | AUC, semantic-error chains | ECE (raw) |",
        "|---|---|---|---|---|",
        *[
            f"| {name} | {_num(r['auc_own_synthetic'])} | {_num(r['auc_own_gsm8k'])} | "
            f"{_num(r['auc_semantic_chains'])} | {_num(r['ece_own_raw'])} |"
            for name, r in rows
        ],
    ]
