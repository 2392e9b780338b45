"""ProcessBench-style data building and metrics."""

import pytest

from tts_explorer.data import read_rows
from tts_explorer.processbench import (
    Sample,
    build_samples,
    first_flagged,
    gold_steps,
    gsm8k_items,
    length_bias,
    metrics,
    read_samples,
    score_samples,
    sweep,
    write_samples,
)
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.scorers.arithmetic import check_equations


@pytest.fixture(scope="module")
def rows():
    return read_rows("gsm8k-train", 0, 120)  # the GSM8K train rows the project ships


def test_gold_steps_drop_calculator_notes():
    steps, answer = gold_steps("She has 3 * 4 = <<3*4=12>>12 eggs.\nThen 12 - 2 = <<12-2=10>>10.\n#### 10")
    assert steps == ["She has 3 * 4 = 12 eggs.", "Then 12 - 2 = 10.", "The answer is 10."] and answer == "10"


def test_built_labels_hold_by_construction(rows):
    samples = build_samples(gsm8k_items(rows), seed=0)
    assert len(samples) == len(rows)
    kinds = {s.kind for s in samples}
    assert kinds == {"correct", "wrong_number", "wrong_operation", "dropped_step"}
    for sample, row in zip(samples, rows):
        gold, _ = gold_steps(row["answer"])
        if sample.label == -1:
            assert sample.steps == gold
            continue
        k = sample.label
        assert sample.steps[:k] == gold[:k]  # everything before the first error is the gold solution
        if sample.kind == "dropped_step":
            assert sample.steps == gold[:k] + gold[k + 1 :]
        else:
            assert sample.steps[k] != gold[k] and sample.steps[k + 1 :] == gold[k + 1 :]
            if sample.kind == "wrong_operation":  # the stated result no longer follows
                assert check_equations(sample.steps[k])[1] >= 1


def test_metrics_and_sweep():
    samples = [Sample("p", ["a", "b", "c"], 1), Sample("p", ["a", "b"], -1), Sample("p", ["a", "b"], 0)]
    scores = [[0.9, 0.2, 0.1], [0.9, 0.8], [0.7, 0.1]]
    assert first_flagged(scores[0], 0.5) == 1 and first_flagged(scores[1], 0.5) == -1
    m = metrics(samples, scores, 0.5)
    assert m["error_acc"] == 0.5 and m["correct_acc"] == 1.0 and m["f1"] == pytest.approx(2 / 3)
    best = max(sweep(samples, scores), key=lambda r: r["f1"])
    assert best["f1"] == 1.0 and 0.7 < best["threshold"] <= 0.8
    assert length_bias([Sample("p", ["a", "bbbb", "cccccccc"], -1)], [[0.1, 0.5, 0.9]]) == pytest.approx(1.0, abs=0.05)


def test_calibration_against_rollouts():
    from fakes import FakePolicy

    from tts_explorer.processbench import calibration

    samples = [Sample("p", ["a", "b", "The answer is 7."], -1, answer="7"), Sample("p", ["a"], 0, answer="8")]
    cal = calibration(samples, [[0.9, 0.8, 1.0], [0.1]], FakePolicy(answers=("7",)), lambda q: "")
    # the fake policy always reaches 7: MC values are 1, 1, 1 (own answer) and 0 for the second sample
    assert cal["steps"] == 4 and cal["pearson"] > 0.9 and abs(cal["mean_abs_diff"] - 0.1) < 1e-9


def test_round_trip_and_bad_rows(tmp_path, rows):
    path = tmp_path / "pb.jsonl"
    write_samples(build_samples(gsm8k_items(rows[:10])), path)
    with open(path, "a") as handle:
        handle.write('{"problem": "p", "steps": ["a"], "label": 5}\n{"oops"\n')
    samples, skipped = read_samples(path)
    assert len(samples) == 10 and len(skipped) == 2


def test_arithmetic_scorer_finds_broken_calculations(rows):
    samples = [s for s in build_samples(gsm8k_items(rows), seed=1) if s.kind in ("correct", "wrong_operation")]
    scores = score_samples(make_scorer("arithmetic", ScorerEnv()), samples)
    m = metrics(samples, scores, 0.1)
    assert m["error_acc"] > 0.8 and m["correct_acc"] > 0.7
