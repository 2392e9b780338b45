"""The offline scorers: arithmetic verifier, self-confidence, LLM judge, Monte-Carlo rollouts."""

import math

import pytest
from fakes import FakePolicy

from tts_explorer.errors import UserError
from tts_explorer.policy.loading import load_policy
from tts_explorer.scorers import SCORERS, ScorerEnv, StepPath, make_scorer
from tts_explorer.scorers.arithmetic import check_equations


def path(*steps, logprobs=None, ended=False):
    return StepPath("Q?", "prompt: ", tuple(steps), tuple(logprobs or [None] * len(steps)), ended)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Sam has 4 * 6 = 24 pens.", (1, 0)),
        ("he has 24 - 5 = 18 pens", (0, 1)),
        ("costs $12 x 2 = $24.", (1, 0)),
        ("It is 1,200 / 4 = 300.", (1, 0)),
        ("50% of 40 = 20", (1, 0)),
        ("2 × 2 = 4 and 10/4=2.5.", (2, 0)),
        ("so 3x = 9, no arithmetic to check", (0, 0)),
        ("10 / 3 = 3.33", (1, 0)),
    ],
)
def test_check_equations(text, expected):
    assert check_equations(text)[:2] == expected


def test_arithmetic_scores():
    scorer = make_scorer("arithmetic", ScorerEnv())
    got = scorer.score_last(
        [
            path("4 * 6 = 24."),
            path("4 * 6 = 25."),
            path("Let us think."),
            path("4 * 6 = 24.", "The answer is 24."),
            path("4 * 6 = 24.", "The answer is 30."),
        ]
    )
    assert got == [0.9, 0.05, 0.5, 0.8, 0.4]
    assert scorer.score_steps([path("4 * 6 = 24.", "24 - 5 = 18.")]) == [[0.9, 0.05]]


def test_confidence_is_geometric_mean_probability():
    scorer = make_scorer("confidence", ScorerEnv())
    assert scorer.score_last([path("a", "b", logprobs=[-3.0, -0.5])]) == [pytest.approx(math.exp(-0.5))]


def test_judge_reads_yes_against_no(newline_model_dir, tiny_policy):
    # the newline-chain model gives every letter the same probability: P(Yes) = 1/2 exactly
    flat = load_policy(str(newline_model_dir), dtype="fp32")
    scores = make_scorer("judge", ScorerEnv(policy=flat)).score_last([path("2 + 2 = 4."), path("2 + 2 = 5.")])
    assert scores == [pytest.approx(0.5, abs=1e-6)] * 2
    env = ScorerEnv(policy=tiny_policy)
    scores = make_scorer("judge", env).score_last([path("2 + 2 = 4."), path("x", "2 + 2 = 5.")])
    assert all(0 < s < 1 for s in scores) and scores[0] != scores[1]
    assert env.meter.scorer_tokens > 0 and env.meter.generated_tokens == 0


def test_rollout_values():
    policy = FakePolicy(answers=("7",))
    oracle = make_scorer("mc-rollout-oracle", ScorerEnv(policy=policy, reference="7"))
    assert oracle.score_last([path("step one"), path("The answer is 8.", ended=True)]) == [1.0, 0.0]
    wrong_ref = make_scorer("mc-rollout-oracle", ScorerEnv(policy=policy, reference="8"))
    assert wrong_ref.score_last([path("step one")]) == [0.0]
    consensus = make_scorer("mc-rollout", ScorerEnv(policy=policy), rollouts=3)
    env = consensus.env
    assert consensus.score_last([path("step"), path("cut off", ended=True)]) == [1.0, 0.0]
    assert env.meter.scorer_tokens == 3 * 5 and env.meter.generated_tokens == 0
    with pytest.raises(UserError, match="needs a reference"):
        make_scorer("mc-rollout-oracle", ScorerEnv(policy=policy)).score_last([path("x")])


def test_unknown_scorer_lists_valid_names():
    with pytest.raises(UserError) as err:
        make_scorer("nope", ScorerEnv())
    assert all(name in str(err.value) for name in SCORERS)
