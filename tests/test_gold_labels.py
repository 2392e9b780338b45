"""Gold-aligned step labels, the calculator's step features, calibration and the measures the
PRM's evaluation reports (reliability, ECE, path AUC within problems)."""

import json
import time

import pytest
import torch

from tts_explorer.diagnose import reliability
from tts_explorer.scorers.probe_model import ProbeHead, ProbeSpec
from tts_explorer.scorers.step_features import NAMES, VERSION, VERSIONS, path_features, problem_values
from tts_explorer.training.evaluate import paired_auc
from tts_explorer.training.gold import gold_labels
from tts_explorer.training.probe import calibrate

QUESTION = "Sam has 4 boxes with 6 pens in each box. He gives away 5 pens. How many pens are left?"
GOLD = ["Sam has 4 * 6 = 24 pens.", "After giving away 5, he has 24 - 5 = 19 pens.", "The answer is 19."]


@pytest.mark.parametrize(
    "steps, expected",
    [
        (["He has 4 * 6 = 24 pens.", "24 - 5 = 19 pens are left.", "The answer is 19."], [1, 1, 1]),
        (["He has 4 * 6 = 24 pens.", "24 - 5 = 18 pens are left.", "The answer is 18."], [1, 0, 0]),  # arithmetic
        (["He has 4 + 6 = 10 pens.", "10 - 5 = 5 pens are left.", "The answer is 5."], [0, 0, 0]),  # semantic
        (["He has 24 pens.", "So 20 are left.", "The answer is 19."], [1, 0, 0]),  # a claim from nowhere
        (["Each box has 6 pens.", "He has 4 * 6 = 24 pens, and gives away 5.", "The answer is 24."], [1, 1, 0]),
        (["Step 1: 4 * 6 = 24", "24 - 5 = 19", "The answer is $19."], [1, 1, 1]),  # numbering and $ are read
        (["Let me think.", "The answer is 19."], [1, 1]),
    ],
)
def test_gold_aligned_labels_by_hand(steps, expected):
    assert gold_labels(QUESTION, GOLD, "19", steps) == [float(v) for v in expected]


def test_gsm8k_values_rounding_and_words():
    question = "A third of 10 apples are red. Tom eats half of the rest. How many are left?"
    gold = ["10 / 3 = 3.33 red.", "The answer is 3.33."]
    assert gold_labels(question, gold, "3.33", ["10 / 3 = 3.333 apples are red.", "The answer is 3.33."]) == [1.0, 1.0]
    assert {1 / 3, 1 / 2, 10} <= {float(v) for v in problem_values(question)}  # "a third", "half"


def test_step_features_see_what_a_calculator_sees():
    rows = path_features(QUESTION, ["Sam has 4 * 6 = 24 pens.", "24 - 5 = 18 pens are left.", "The answer is 18."])
    named = [dict(zip(VERSIONS[VERSION], row)) for row in rows]
    assert len(rows[0]) == len(VERSIONS[VERSION])
    assert named[0]["eq_wrong"] == 0 and named[0]["results_one_op"] == 1 and named[0]["before_wrong"] == 0
    assert named[1]["eq_wrong"] == 1 and named[2]["before_wrong"] == 1  # carried to later steps
    assert named[2]["answer_step"] == 1 and named[2]["answer_is_last_result"] == 1
    made_up = dict(zip(NAMES, path_features(QUESTION, ["So 977 pens are left."])[0]))
    assert made_up["claims_unknown"] == 1


def test_step_features_count_the_stated_numbers_a_path_has_not_used():
    # 4, 6 and 5 stated; an answer after 4 * 6 alone left 5 unused (a premature answer)
    early = [
        dict(zip(VERSIONS["calc-v2"], r)) for r in path_features(QUESTION, ["4 * 6 = 24 pens.", "The answer is 24."])
    ]
    assert [r["given_unused_count"] for r in early] == [1 / 3, 1 / 3]
    assert early[0]["answer_with_given_unused"] == 0 and early[1]["answer_with_given_unused"] == 1
    whole = [dict(zip(VERSIONS["calc-v2"], r)) for r in path_features(QUESTION, GOLD)]
    assert [r["given_unused_any"] for r in whole] == [1, 0, 0] and whole[2]["answer_with_given_unused"] == 0
    assert path_features("A 20% tip on $50.", ["0.2 * 50 = 10."])[0][-4] == 0  # a percentage used as its fraction
    # the probes trained before calc-v2 read the same first columns and no more
    old = path_features(QUESTION, GOLD, "calc-v1")
    assert [r[: len(NAMES)] for r in path_features(QUESTION, GOLD)] == old and len(old[0]) == len(NAMES)
    with pytest.raises(ValueError, match="unknown text features"):
        path_features(QUESTION, GOLD, "calc-v0")


def test_step_features_are_bounded_on_hostile_text():
    hostile = ["1" * 666 + "=" + " " * 1332 + "a", "9" * 8000, "1+" * 4000, "= " * 4000, "<b>" * 2000]
    started = time.perf_counter()
    rows = path_features("1 2 3 " * 1300, hostile * 4)
    assert len(rows) == 20 and all(len(r) == len(VERSIONS[VERSION]) for r in rows)
    assert time.perf_counter() - started < 20  # bounded (generous for a loaded machine)


def test_reliability_and_ece_by_hand():
    table = reliability([0.05, 0.05, 0.95, 0.95], [0, 0, 1, 0])
    assert table["bins"][0] == {"count": 2, "score": 0.05, "positives": 0.0}
    assert table["bins"][9] == {"count": 2, "score": 0.95, "positives": 0.5}
    assert table["ece"] == pytest.approx((2 * 0.05 + 2 * 0.45) / 4)


def test_paired_auc_counts_pairs_within_a_problem_only():
    groups = [[(0.9, True), (0.1, False), (0.5, False)], [(0.2, True), (0.2, False)], [(0.3, True)]]
    value, both = paired_auc(groups)
    assert both == 2 and value == pytest.approx((2 + 0.5) / 3, abs=1e-4)  # the third problem has no wrong candidate


def test_platt_calibration_fixes_an_overconfident_head():
    torch.manual_seed(0)
    head = ProbeHead(1)
    head.net.weight.data.fill_(8.0)  # logits 8x too steep
    x = torch.randn(4000, 1)
    y = (torch.rand(4000) < torch.sigmoid(x.squeeze(1))).float()
    scale, bias = calibrate(head, x, y)
    assert scale == pytest.approx(1 / 8, rel=0.2) and abs(bias) < 0.2
    raw = reliability(torch.sigmoid(head.logits(x)).tolist(), y.tolist())["ece"]
    fixed = reliability(torch.sigmoid(scale * head.logits(x) + bias).tolist(), y.tolist())["ece"]
    assert fixed < 0.05 < raw


def test_platt_calibration_stays_finite_where_the_head_separates_the_rows_perfectly():
    """Platt's smoothed targets: on 20 separable rows the fitted scale stays finite, and no score
    becomes exactly 0 or 1 (against plain 0/1 targets the scale would grow without bound)."""
    head = ProbeHead(1)
    head.net.weight.data.fill_(1.0)
    head.net.bias.data.zero_()
    x = torch.cat([torch.linspace(-3, -1, 10), torch.linspace(1, 3, 10)]).unsqueeze(1)
    y = torch.cat([torch.zeros(10), torch.ones(10)])
    scale, bias = calibrate(head, x, y)
    scores = torch.sigmoid(scale * head.logits(x).detach() + bias)  # each on its side, as sure as 10 rows allow
    assert 0 < scale < 10 and abs(bias) < 1
    assert 0.0 < float(scores.min()) and float(scores.max()) < 1.0
    assert float(scores[:10].max()) < 0.25 and float(scores[10:].min()) > 0.75


def test_a_probe_of_another_feature_version_is_refused(tmp_path):
    with pytest.raises(ValueError, match="train the probe again"):
        ProbeSpec.from_json({"layers": [1], "text_features": "calc-v0"})
    spec = ProbeSpec.from_json(
        {
            "layers": [1],
            "pool": ["last", "mean"],
            "token_stats": True,
            "text_features": VERSION,
            "calibration": [0.5, -1],
        }
    )
    assert spec.width(10) == 20 + 3 + len(VERSIONS[VERSION]) and spec.calibration == (0.5, -1.0)
    assert ProbeSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec
    assert ProbeSpec.from_json({"layers": [1], "text_features": "calc-v1"}).width(10) == 10 + len(NAMES)
    with pytest.raises(ValueError, match="train the probe again"):
        ProbeSpec.from_json({"layers": [1], "text_features": ["calc-v1"]})  # not a name: one line, no TypeError
    for reading in (["followed"], 1, None, "<b>followed</b>", " " * 8000):  # a probe.json no train-prm wrote
        with pytest.raises(ValueError, match="^last_separator must be one of alone, followed$"):
            ProbeSpec.from_json({"layers": [1], "last_separator": reading})
    assert ProbeSpec.from_json({"layers": [1]}).last_separator == "alone"  # probes before the key read as before
