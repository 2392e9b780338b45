"""Training the probe PRM: the generator, the perturbations, Monte-Carlo labels, and the whole
train-prm command on a tiny model, read back through the learned-PRM loader."""

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tts_explorer.answers import extract_answer
from tts_explorer.perturb import FAMILIES, perturb
from tts_explorer.processbench import Sample, build_samples
from tts_explorer.scorers import ScorerEnv, StepPath, make_scorer
from tts_explorer.scorers.arithmetic import check_equations
from tts_explorer.selection import apply_selection
from tts_explorer.training.labels import LABEL_KINDS, mc_labels, sample_sequence, tree_sequences
from tts_explorer.training.synth import generate
from tts_explorer.tree import SearchTree


def test_the_generator_is_seeded_varied_and_right():
    problems = generate(300, 7)
    assert [p.question for p in problems] == [p.question for p in generate(300, 7)]
    assert len({p.question for p in problems}) == 300
    assert len({p.question for p in problems} & {p.question for p in generate(300, 8)}) < 10
    assert {len(p.steps) - 1 for p in problems} >= {1, 2, 3}
    for p in problems:
        assert all(check_equations(step)[1] == 0 for step in p.steps)  # every gold calculation is right
        assert extract_answer(p.steps[-1]) == p.answer and int(p.answer) > 0
        assert check_equations(p.steps[-2])[2][-1] == int(p.answer)  # the last calculation gives the answer


def test_semantic_errors_keep_the_arithmetic_right_and_carry_on():
    rng = random.Random(0)
    arithmetic = make_scorer("arithmetic", ScorerEnv())
    found = 0
    for p in generate(200, 3):
        broken = perturb(p.question, list(p.steps), FAMILIES["semantic"], rng)
        if broken is None:
            continue
        steps, first_wrong, kind = broken
        found += 1
        assert kind in FAMILIES["semantic"] and steps[:first_wrong] == list(p.steps[:first_wrong])
        assert steps[first_wrong] != p.steps[first_wrong]
        assert all(check_equations(s)[1] == 0 for s in steps)  # right arithmetic everywhere
        assert extract_answer(steps[-1]) != p.answer  # carried on to another final answer
        scores = arithmetic.score_steps([StepPath(p.question, "", tuple(steps))])[0]
        assert min(scores) > 0.05  # the rule-based verifier sees nothing wrong
    assert found > 150


def test_a_hand_made_example_of_each_semantic_kind():
    question = "Sam has 4 boxes with 6 pens in each box. He gives away 5 pens. How many pens are left?"
    gold = ["Sam has 4 * 6 = 24 pens.", "After giving away 5, he has 24 - 5 = 19 pens.", "The answer is 19."]
    seen = {}
    for seed in range(40):
        broken = perturb(question, gold, FAMILIES["semantic"], random.Random(seed))
        if broken:
            seen[(broken[2], tuple(broken[0]))] = broken[1]
    assert (
        "semantic_number",
        ("Sam has 4 * 5 = 20 pens.", "After giving away 5, he has 20 - 5 = 15 pens.", "The answer is 15."),
    ) in seen
    assert (
        "semantic_operation",
        ("Sam has 4 + 6 = 10 pens.", "After giving away 5, he has 10 - 5 = 5 pens.", "The answer is 5."),
    ) in seen


def test_monte_carlo_labels_match_a_hand_computed_tree():
    tree = SearchTree("q", reference="5")
    a = tree.add(0, text="a")
    b = tree.add(0, text="b")
    for parent, answer in ((a, "5"), (a, "6"), (a, "5"), (b, "7")):
        tree.add(parent.id, text=f"The answer is {answer}.", stop_reason="answer", answer=answer, status="finished")
    tree.add(b.id, text="cut", stop_reason="length", status="finished")  # no answer: not right
    tree.add(b.id, text="pruned", status="pruned")  # never finished: not a rollout
    apply_selection(tree, "majority")
    labels = mc_labels(tree)
    assert labels[a.id] == (2 / 3, 3) and labels[b.id] == (0.0, 2)
    assert labels[3] == (1.0, 1) and labels[4] == (0.0, 1) and 8 not in labels
    sequences = tree_sequences(tree, "rollouts/test", "q")
    assert len(sequences) == 5 and sequences[0].labels == [2 / 3, 1.0] and sequences[1].labels == [None, 0.0]
    assert sequences[0].rollouts == [3, 1]
    by_construction = sample_sequence(Sample("q", ["s0", "s1", "s2"], 1), "perturbed/test", "q")
    assert by_construction.labels == [1.0, 0.0, 0.0]


def test_build_samples_reports_the_kind_and_label():
    items = [(p.question, list(p.steps), p.answer) for p in generate(60, 4)]
    samples = build_samples(items, seed=0, error_share=1.0, kinds=FAMILIES["semantic"])
    broken = [s for s in samples if s.label != -1]
    assert len(broken) > 50 and {s.kind for s in broken} == set(FAMILIES["semantic"])


def test_rollout_trees_made_several_at_once_share_the_loop_and_are_written_in_order(tiny_policy, tmp_path):
    from tts_explorer.training.pipeline import TrainConfig
    from tts_explorer.training.rollouts import rollout_trees

    items = [(f"p{i}", f"Sam has {i} pens and buys 2 more. How many pens?", str(i + 2)) for i in range(5)]
    cfg = TrainConfig(model=str(tmp_path), template="default", parallel=3, max_steps=2, step_tokens=6, final_tokens=6)
    path = tmp_path / "rollouts.jsonl"
    shared = tiny_policy.batched_calls
    trees = rollout_trees(tiny_policy, items, cfg, path, "rollouts", 4, 2, seed=0)
    assert tiny_policy.batched_calls > shared  # turns of the decode loop that served several trees
    assert [json.loads(line)["id"] for line in path.read_text().splitlines()] == [key for key, _, _ in items]
    assert all(tree.candidates() and tree.question == q for tree, (_, q, _) in zip(trees, items))
    again = rollout_trees(tiny_policy, items, cfg, path, "rollouts", 4, 2, seed=0)  # resumed: nothing made again
    assert len(path.read_text().splitlines()) == 5 and [t.to_json() for t in again] == [t.to_json() for t in trees]


@pytest.mark.slow
def test_an_ensemble_is_one_head_giving_the_mean_of_its_heads_logits():
    import torch

    from tts_explorer.scorers.probe_model import ProbeHead
    from tts_explorer.training.probe import ensemble

    torch.manual_seed(0)
    heads = [ProbeHead(6, 4) for _ in range(3)]
    for head in heads:
        head.mean.copy_(torch.arange(6.0))
        head.std.fill_(2.0)
    x = torch.randn(5, 6)
    combined = ensemble(heads)
    assert combined.net[0].out_features == 12
    expected = torch.stack([h.logits(x) for h in heads]).mean(0)
    assert torch.allclose(combined.logits(x), expected, atol=1e-6)
    heads[1].std.fill_(3.0)  # heads that standardise differently cannot be merged this way
    with pytest.raises(ValueError):
        ensemble(heads)


def test_the_rank_term_learns_to_put_right_chains_above_wrong_ones_where_step_labels_cannot():
    """Step labels are coin flips; whether a chain's answer is right is written in its last
    step's first feature. Cross-entropy alone cannot rank the chains of a problem; with the
    rank term the held-out problems' right chains outscore their wrong ones."""
    import torch

    from tts_explorer.training.evaluate import paired_auc
    from tts_explorer.training.labels import Sequence
    from tts_explorer.training.probe import Features, fit, ranked_chains

    rng = random.Random(0)
    sequences, rows, owners, steps = [], [], [], []
    for p in range(60):
        shared = [rng.gauss(0, 1) for _ in range(4)]  # every chain of a problem starts with the same step
        for c in range(4):
            right = c < 2
            last = [(1.0 if right else -1.0) + rng.gauss(0, 0.3)] + [rng.gauss(0, 1) for _ in range(3)]
            labels = [None if c else float(rng.random() < 0.5), float(rng.random() < 0.5)]
            sequences.append(
                Sequence(
                    f"q{p}", ["first", f"last {c}"], labels, [0, 0], "rollouts/synthetic", f"g{p}", answer_right=right
                )
            )
            for k, features in ((0, shared), (1, last)):
                if labels[k] is not None:
                    rows.append(features)
                    owners.append(len(sequences) - 1)
                    steps.append(k)
    x = torch.tensor(rows)
    features = Features(
        x,
        torch.tensor([sequences[i].labels[k] for i, k in zip(owners, steps)]),
        torch.tensor(owners),
        torch.tensor(steps),
    )
    chains = ranked_chains(features, sequences)
    assert chains.rows.shape == (240, 2) and int(chains.right.sum()) == 120
    assert len(set(chains.rows[:, 0].tolist())) == 60  # a shared first step is read from one row
    val_rows = torch.tensor([r for r, i in enumerate(owners) if int(sequences[i].group[1:]) >= 45])

    def held_out_auc(head):
        with torch.no_grad():
            scores = head.logits(x).tolist()
        groups = {}
        for chain, right, problem in zip(chains.rows.tolist(), chains.right.tolist(), chains.problem.tolist()):
            if chain[0] in set(val_rows.tolist()):
                groups.setdefault(problem, []).append((min(scores[r] for r in chain), right))
        return paired_auc(list(groups.values()))[0]

    plain, report = fit(features, val_rows, 8, 0, batch=8, chains=chains, rank_weight=0.0)
    ranked, ranked_report = fit(features, val_rows, 8, 0, batch=8, chains=chains, rank_weight=2.0)
    assert report["rank_weight"] == 0.0 and ranked_report["ranked_problems"] == [45, 15]
    assert held_out_auc(ranked) > 0.9 and held_out_auc(ranked) > held_out_auc(plain) + 0.2


@pytest.mark.parametrize("ensemble", [0, -1, 9, 10**9, 2.5, "5", None, float("nan")])
def test_a_bad_ensemble_size_is_one_line_before_anything_runs(ensemble):
    from tts_explorer.errors import UserError
    from tts_explorer.training.pipeline import TrainConfig

    with pytest.raises(UserError, match="ensemble must be an integer from 1 to 8"):
        TrainConfig(ensemble=ensemble)
    with pytest.raises(UserError, match="needs heads with hidden units"):
        TrainConfig(ensemble=2, hidden=0)


def test_the_command_line_refuses_a_bad_ensemble_size_in_one_short_line():
    for value, first in (("9", "error: ensemble must be an integer from 1 to 8"), ("1" + "0" * 8000, None)):
        done = subprocess.run(
            [sys.executable, "-m", "tts_explorer", "train-prm", "--ensemble", value],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and len(lines[0]) <= 310
        assert lines[0] == first if first else lines[0].startswith("error: argument --ensemble: invalid int value")


@pytest.mark.parametrize("weight", [-0.5, 100.5, 1e308, float("nan"), float("inf"), "0.5", None, True, [1]])
def test_a_bad_rank_weight_is_one_line_before_anything_runs(weight):
    from tts_explorer.errors import UserError
    from tts_explorer.training.pipeline import TrainConfig

    with pytest.raises(UserError, match="^rank_weight must be a number from 0 to 100$"):
        TrainConfig(rank_weight=weight)
    assert TrainConfig(rank_weight=0).rank_weight == 0 and TrainConfig(rank_weight=100.0).rank_weight == 100.0


def test_the_command_line_refuses_a_bad_rank_weight_or_reading_in_one_short_line():
    for flag, value, start in (
        ("--rank-weight", "nan", "error: rank_weight must be a number from 0 to 100"),
        ("--rank-weight", "9" * 8000, "error: rank_weight must be a number from 0 to 100"),
        ("--rank-weight", "<b>1</b>", "error: argument --rank-weight: invalid float value"),
        ("--last-separator", " " * 8000, "error: argument --last-separator: invalid choice"),
    ):
        done = subprocess.run(
            [sys.executable, "-m", "tts_explorer", "train-prm", flag, value],
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 2 and len(lines) == 1 and lines[0].startswith(start), (flag, lines[:2])


def test_train_prm_runs_end_to_end_and_the_loader_reads_it_back(tiny_model_dir, tmp_path):
    out, work = tmp_path / "probe", tmp_path / "work"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tts_explorer",
            "train-prm",
            "--quick",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--work",
            str(work),
            "--layers",
            "1,2",
            "--parallel",
            "1",  # one tree at a time: the same rollouts, hence the same head, however busy the machine
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checkpoint:" in done.stdout and "rollouts (train)" in done.stderr  # progress bars on stderr
    summary = json.loads((out / "metrics.json").read_text())
    # the loader gives the fitted head's scores (bf16 forwards differ by a hair with the batch's padding)
    assert summary["consistency"] < 1e-2
    assert summary["data"]["labelled_steps"]["perturbed/synthetic"] > 0
    assert summary["data"]["labelled_steps"]["rollouts/synthetic"] > 0
    assert list(summary["ablation"]) == list(LABEL_KINDS)  # one head per label kind, compared
    config = json.loads((out / "probe.json").read_text())
    assert config["pool"] == ["last", "mean"] and config["token_stats"] and config["text_features"]
    assert len(config["calibration"]) == 2
    ensemble = summary["fit"]["ensemble"]  # --quick averages two heads, each reported beside their average
    assert ensemble["seeds"] == [0, 1] and len(ensemble["heads"]) == 2
    assert config["hidden"] == 2 * summary["config"]["hidden"]
    assert summary["fit"]["val_auc"] == ensemble["val_auc"]
    assert "seeds 0, 1, their logits averaged" in (out / "README.md").read_text()
    assert "--ensemble 2   # writes this folder" in (out / "README.md").read_text()  # the card's command reproduces it
    own = summary["evaluation"]["own_steps"]["sets"]
    assert all({"auc_gold", "reliability", "path_auc"} <= set(entry) for entry in own.values())
    stages = [
        "data",
        "rollouts",
        "features",
        "fit",
        "evaluation: ProcessBench F1",
        "evaluation: the policy's own steps",
    ]
    assert list(summary["stage_minutes"]) == stages  # where a run's time goes, stage by stage
    card = (out / "README.md").read_text()
    assert "## Data and labels" in card and "## Held-out evaluation" in card and "train-prm" in card
    code = summary["code"]  # the commit of the code that made it, which the card checks out to reproduce it
    if (Path(__file__).resolve().parents[1] / ".git").exists():
        assert code and re.fullmatch(r"[0-9a-f]{7,40}(\+changes)?", code) and f"git checkout {code[:7]}" in card
    else:  # a copy without git history (CI's, an unpacked sdist): no commit to name
        assert code is None and "git checkout" not in card
    assert "on a 2-core CPU: data " in card and "not written yet" in card  # calc-v2's features, described
    assert "tokenized as when another step follows it, last step or not" in card  # the spec's reading, described
    assert "earlier run's work folder" not in card and not summary["stages_reused"]
    scorer = make_scorer("probe", ScorerEnv(), model=str(out))
    path = StepPath("Sam has 3 pens and buys 2 more. How many pens?", "", ("3 + 2 = 5 pens.", "The answer is 5."))
    scores = scorer.score_steps([path])[0]
    assert len(scores) == 2 and all(0.0 < s < 1.0 for s in scores)
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "tts_explorer",
            "train-prm",
            "--quick",
            "--model",
            str(tiny_model_dir),
            "--out",
            str(out),
            "--work",
            str(work),
            "--layers",
            "1,2",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    resumed = json.loads((out / "metrics.json").read_text())
    assert again.returncode == 0 and resumed["fit"] == summary["fit"]  # seeded
    # the card says what this run did not make itself
    reused = ["evaluation: the policy's own steps", "features", "rollouts"]
    assert resumed["stages_reused"] == reused
    assert "from an earlier run's work folder: " + "; ".join(reused) in (out / "README.md").read_text()


@pytest.mark.slow
def test_the_shipped_probe_loads_scores_and_refuses_a_foreign_policy(tiny_policy):
    from tts_explorer.errors import UserError
    from tts_explorer.policy.loading import load_policy
    from tts_explorer.scorers.shipped import SHIPPED_PROBE

    assert (SHIPPED_PROBE / "probe.safetensors").stat().st_size < 20_000_000
    card = (SHIPPED_PROBE / "README.md").read_text()
    assert "tts-explorer train-prm --out assets/prm/smollm2-135m-probe" in card and "## Held-out evaluation" in card
    # made by older code (calc-v1 features, defaults since changed): the card checks that code out and
    # describes only the features its head reads
    assert "git checkout 7045702" in card and "not written yet" not in card
    smollm = load_policy()
    scorer = make_scorer("smollm-probe", ScorerEnv(policy=smollm))
    assert scorer.model.backbone is smollm.model  # the backbone is the search's policy, shared, not a copy
    question = "Sam has 4 boxes with 6 pens in each box. He gives away 5 pens. How many pens are left?"
    right = StepPath(question, "", ("Sam has 4 * 6 = 24 pens.", "He has 24 - 5 = 19 pens left.", "The answer is 19."))
    scores = scorer.score_steps([right, right])
    assert len(scores[0]) == 3 and scores[0] == scores[1] and all(0.0 < s < 1.0 for s in scores[0])
    combined = make_scorer("smollm-probe-arith", ScorerEnv(policy=smollm))
    wrong = StepPath(question, "", ("Sam has 4 * 6 = 25 pens.",))
    assert combined.score_last([wrong])[0] < 0.05 * 1.0001  # the verifier's 0.05 times the probe's score
    with pytest.raises(UserError, match="uses another tokenizer"):
        make_scorer("smollm-probe", ScorerEnv(policy=tiny_policy))


def test_a_followed_last_separator_reads_a_new_step_as_training_reads_it_inside_a_path(tmp_path):
    """A search scores each new step as the last of its path, training mostly reads steps with
    another after them; with the "alone" reading the two differ (a blank line ending the text is
    one token, before a step two), with "followed" they are the same, kept paths or not."""
    import shutil

    from tts_explorer.policy.loading import load_policy
    from tts_explorer.scorers.shipped import SHIPPED_PROBE

    followed = tmp_path / "followed"
    followed.mkdir()
    for name in ("probe.json", "probe.safetensors"):
        shutil.copy(SHIPPED_PROBE / name, followed / name)
    config = json.loads((followed / "probe.json").read_text())
    assert config.get("last_separator", "alone") == "alone"  # the shipped probe reads as before
    (followed / "probe.json").write_text(json.dumps({**config, "last_separator": "followed"}))
    smollm = load_policy()
    question = "Kai practices 18 songs each week. How many songs in 8 weeks?"
    steps = ("In 8 weeks, Kai practices 18 * 8 = 144 songs.", "The answer is 144.")
    path = StepPath(question, "", steps)
    for folder, same in ((str(SHIPPED_PROBE), False), (str(followed), True)):
        for keep in (0, 128):  # every path read whole, or each new step fed after the kept path
            scorer = make_scorer("probe", ScorerEnv(policy=smollm), model=folder, keep_paths_mb=keep)
            as_searched = [scorer.score_last([StepPath(question, "", steps[: k + 1])])[0] for k in range(len(steps))]
            whole = make_scorer("probe", ScorerEnv(policy=smollm), model=folder, keep_paths_mb=0).score_steps([path])[0]
            # the last step: read alike, to bf16's rounding (a step fed after a kept path and the
            # path read whole differed by 0.014 on an Intel Xeon with AMX, under 0.01 on an AMD EPYC);
            # the first step: alike only with "followed" (read "alone" it differs by about 0.5)
            assert as_searched[-1] == pytest.approx(whole[-1], abs=0.03), (folder, keep, as_searched, whole)
            assert (abs(as_searched[0] - whole[0]) < 0.03) == same, (folder, keep, as_searched, whole)
    alone, reads_followed = (make_scorer("probe", ScorerEnv(policy=smollm), model=f) for f in (SHIPPED_PROBE, followed))
    one_step = StepPath(question, "", steps[:1])
    assert len(reads_followed.spans(one_step).ids) == len(alone.spans(one_step).ids) + 1  # "\n", "\n" for "\n\n"
