"""Each learned-PRM format on a tiny model whose score at the right token is known (0.8)
and is 0.5 anywhere else: exact scores, their count, and a shifted position caught."""

import pytest
from tiny_prms import FORMATS, SCORE_AT_TAG, build_prm

from tts_explorer.errors import UserError
from tts_explorer.scorers import ScorerEnv, StepPath, make_scorer
from tts_explorer.scorers.learned import LEARNED_FORMATS

PATHS = [
    StepPath("Sam has 4 boxes of 6 pens. How many pens?", "", ("4 * 6 = 24 pens.", "The answer is 24.")),
    StepPath("What is 2 + 3?", "", ("2 + 3 = 5.",)),
    StepPath("Count: 1, 2, 3.", "", ("One.", "Two, then three.", "So 3 items.", "The answer is 3.")),
]


@pytest.fixture(scope="module", params=sorted(FORMATS))
def prm(request, tmp_path_factory):
    fmt = request.param
    directory = build_prm(tmp_path_factory.mktemp(fmt), fmt)
    return fmt, make_scorer(fmt, ScorerEnv(), model=str(directory))


def test_scores_are_read_at_the_step_positions(prm):
    fmt, scorer = prm
    scores = scorer.score_steps(PATHS)
    assert [len(s) for s in scores] == [len(p.steps) for p in PATHS]
    for row in scores:
        assert row == pytest.approx([SCORE_AT_TAG] * len(row), abs=1e-4), fmt
    assert scorer.score_last(PATHS) == pytest.approx([SCORE_AT_TAG] * 3, abs=1e-4)
    assert scorer.env.meter.scorer_tokens > 0


def test_a_shifted_position_is_caught(prm, monkeypatch):
    fmt, scorer = prm
    original = type(scorer).positions

    def one_token_early(self, path):
        ids, where = original(self, path)
        return ids, [i - 1 for i in where]

    monkeypatch.setattr(type(scorer), "positions", one_token_early)
    scores = scorer.score_steps(PATHS[:1])[0]
    assert all(abs(s - SCORE_AT_TAG) > 0.1 for s in scores), fmt


def test_formats_need_a_model():
    for fmt in LEARNED_FORMATS:
        with pytest.raises(UserError, match="needs model="):
            make_scorer(fmt, ScorerEnv())
    with pytest.raises(UserError, match="cannot load PRM"):
        make_scorer("qwen-prm", ScorerEnv(), model="/no/such/prm")
