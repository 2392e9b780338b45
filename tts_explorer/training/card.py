"""The model card of a trained probe PRM, written from train-prm's summary (metrics.json)."""
from __future__ import annotations

SCORER_ORDER = ("probe", "arithmetic", "probe×arithmetic", "confidence", "judge")


def _pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value) -> str:
    return "–" if value is None else f"{value:.3f}"


def model_card(summary: dict) -> str:
    cfg, data, fit = summary["config"], summary["data"], summary["fit"]
    evaluation = summary["evaluation"]
    layers = ", ".join(str(i) for i in cfg["layers"])
    head = "a linear layer" if cfg["hidden"] == 0 else f"an MLP with {cfg['hidden']} hidden units"
    lines = [
        "# Probe PRM on SmolLM2-135M-Instruct's hidden states" if cfg["model"] == "embedded" else
        f"# Probe PRM on {summary['policy']}'s hidden states",
        "",
        f"A process reward model made by `python -m tts_explorer train-prm` (seed {cfg['seed']}, "
        f"{summary['minutes']} minutes on this machine). Format `probe` (tts_explorer/scorers/learned.py): the text "
        "is the question, then each step followed by a blank line; the score of a step is read at the last token of "
        f"its separator, from the backbone's hidden states of layers {layers} (0 = embeddings), standardised, through "
        f"{head} and a sigmoid. The backbone is the policy itself ({summary['policy']}), frozen and shared with "
        "the search; this folder holds only the head.",
        "",
        "## Data and labels",
        "",
        "| source | labelled steps |",
        "|---|---|",
        *[f"| {source} | {count} |" for source, count in data["labelled_steps"].items()],
        "",
        f"- Problems: {cfg['synthetic']} from the synthetic generator (seed {cfg['seed']}) and GSM8K train rows "
        f"{cfg['gsm8k_rows'][0]}-{cfg['gsm8k_rows'][1] - 1}; none from assets/problems/easy.jsonl or gsm8k_test_dev.",
        f"- Labels by construction (`perturbed/*`): gold steps, {int(100 * cfg['error_share'])}% of them broken by one "
        "perturbation (a wrong stated result, a swapped operator, a dropped step, or a semantic error: the wrong "
        "operation or a wrong number from the problem, computed correctly and carried on); 1 before the first wrong "
        "step, 0 from it on.",
        f"- Monte-Carlo labels (`rollouts/*`): the policy's own steps, from a rollout tree per problem ({cfg['n']} "
        f"leaves, {cfg['n'] // cfg['m']} first steps with {cfg['m']} rollouts each, temperature 0.8); a step's label "
        "is the share of its finished descendants whose answer equals the reference. Rollouts per label: mean "
        f"{data['rollouts_per_label']['mean']}, at most {data['rollouts_per_label']['max']}. The policy's Pass@1 on "
        f"these problems: {_pct(data['policy_pass_at_1_on_rollout_problems'])}.",
        f"- {data['features']} features per step; {_pct(data['positive_share'])} of the labels above 0.5.",
        "",
        "## Fit",
        "",
        f"Binary cross-entropy on the soft labels, AdamW, early stopping on a validation split of "
        f"{int(100 * cfg['val_share'])}% of the problems: {fit['train_steps']} training and {fit['val_steps']} "
        f"validation steps, {fit['epochs']} epochs, validation loss {fit['val_loss']}, validation AUC "
        f"{_num(fit['val_auc'])}. Loading this folder through the learned-PRM loader gives the fitted head's scores "
        f"to within {summary['consistency']:.1e}.",
        "",
        "## Held-out evaluation",
        "",
        "ProcessBench-style F1 (harmonic mean of the accuracy on erroneous samples, first error found at the right "
        "step, and on correct samples, nothing flagged), threshold tuned per scorer on a separate split "
        f"(thresholds: {', '.join(f'{k} {v:.2f}' for k, v in evaluation['processbench']['thresholds'].items())}):",
        "",
    ]
    for set_name, families in evaluation["processbench"]["sets"].items():
        lines += [f"**{set_name}**", "", "| scorer | errors in a stated result: F1 | semantic errors, arithmetic "
                  "right: F1 |", "|---|---|---|"]
        for scorer in SCORER_ORDER:
            cells = [families.get(family, {}).get(scorer) for family in ("stated", "semantic")]
            lines.append(f"| {scorer} | " + " | ".join(
                "–" if c is None else f"{_pct(c['f1'])} ({c['samples']} samples)" for c in cells) + " |")
        lines.append("")
    rollouts = evaluation["rollouts"]
    lines += [
        f"Step-level ROC-AUC against Monte-Carlo labels on the policy's own steps: {rollouts['trees']} held-out "
        f"rollout trees ({rollouts['steps']} steps, {rollouts['positives']} with more than half their rollouts "
        f"right; rollouts per label: mean {rollouts['rollouts_per_label']['mean']}); the policy's Pass@1 there: "
        f"{_pct(rollouts['policy_pass_at_1'])}.",
        "",
        "| scorer | AUC, all steps | AUC, steps backed by ≥ M rollouts | steps scored |",
        "|---|---|---|---|",
        *[f"| {name} | {_num(rollouts['auc'].get(name))} | {_num(rollouts['auc_backed_by_m'].get(name))} | "
          f"{rollouts['steps_scored'].get(name, 0)} |" for name in SCORER_ORDER],
        "",
        "Spread of the probe's scores over those steps (share of steps per tenth of [0, 1]): "
        + ", ".join(f"{i / 10:.1f}-{(i + 1) / 10:.1f}: {c}" for i, c in enumerate(rollouts["probe_histogram"]))
        + f". Mean standard deviation inside one tree: {rollouts['probe_spread_in_a_tree']}; the arithmetic "
          f"verifier's values there: {', '.join(str(v) for v in rollouts['arithmetic_values'])}.",
        "",
        "## Reproduce",
        "",
        "```bash",
        f"tts-explorer train-prm --out {cfg['out']} --work {cfg['work']}   # writes this folder; resumes from --work",
        "```",
        "",
    ]
    return "\n".join(lines)
