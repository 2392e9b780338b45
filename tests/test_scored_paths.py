"""The probe PRM feeds a path that extends one it scored from where that one ended: the
features are those of the whole path read at once, and only the new tokens are fed."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from tts_explorer.scorers import ScorerEnv, StepPath, make_scorer
from tts_explorer.scorers.probe_model import ProbeHead, ProbeModel, ProbeSpec, ScoredPaths, StepSpans

SEP = 7  # the separator's token in the hand-made paths


def path(question: list[int], steps: list[list[int]]) -> StepSpans:
    """The trl layout: the question, then each step after a separator, and one at the end."""
    ids, starts, ends, cuts = list(question), [], [], []
    for step in steps:
        ids.append(SEP)
        starts.append(len(ids))
        ids += step
        cuts.append(len(ids))
        ends.append(len(ids))  # the separator after the step (the next one's, or the last)
    return StepSpans(ids + [SEP], starts, ends, cuts=cuts)


@pytest.fixture(scope="module")
def probe(tiny_model_dir):
    backbone = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32).eval()
    spec = ProbeSpec(layers=(1, 2), pool=("last", "mean"), token_stats=True)
    width = spec.width(backbone.config.hidden_size)
    return ProbeModel(backbone, ProbeHead(width), spec)


@torch.inference_mode()
def test_an_extended_path_is_fed_from_where_it_was_scored(probe):
    question = [11, 12, 13, 14, 15]
    a1 = path(question, [[20, 21, 22]])
    b1 = path(question, [[30, 31]])
    a2 = path(question, [[20, 21, 22], [23, 24, 25, 26]])
    b2 = path(question, [[30, 31], [32]])
    a3 = path(question, [[20, 21, 22], [23, 24, 25, 26], [27, 28]])
    c2 = path(question, [[40, 41], [42, 43, 44]])  # another branch of the same question
    d1 = path([50, 51, 52], [[53, 54]])  # another question
    scored = ScoredPaths(1 << 30)
    batches = [[a1, b1], [a2, b2, c2, d1], [a3]]
    fed = []
    for batch in batches:
        features, tokens = probe.step_features(batch, 0, scored)
        fed.append(tokens)
        alone, all_tokens = probe.step_features(batch, 0)
        assert all_tokens == sum(len(s.ids) for s in batch)
        for got, want in zip(features, alone):
            assert got.shape == want.shape
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    assert fed[0] == len(a1.ids) + len(b1.ids)
    # a2, b2 from the end of a1's, b1's step text (their separator fed again); c2 from its first
    # step (the question is kept on its own); d1 whole
    assert fed[1] == sum(len(x.ids) - y.cuts[-1] for x, y in ((a2, a1), (b2, b1))) + len(c2.ids) - c2.starts[0] + 7
    assert fed[2] == len(a3.ids) - a2.cuts[-1]
    sibling = path(question, [[20, 21, 22], [60, 61], [62]])  # shares a3's first step, scored whole before
    features, tokens = probe.step_features([sibling], 0, scored)
    assert tokens == len(sibling.ids) - sibling.cuts[0]  # fed from the end of that step's text
    torch.testing.assert_close(features[0], probe.step_features([sibling], 0)[0][0], rtol=1e-4, atol=1e-5)
    again, tokens = probe.step_features([a3], 0, scored)  # a path scored again: its last separator alone
    assert tokens == 1
    torch.testing.assert_close(again[0], probe.step_features([a3], 0)[0][0], rtol=1e-4, atol=1e-5)


@torch.inference_mode()
def test_the_kept_paths_stay_under_their_cap_and_a_dropped_one_is_fed_again(probe):
    question = [11, 12, 13]
    one = path(question, [[20, 21]])
    two = path(question, [[20, 21], [22, 23]])
    scored = ScoredPaths(1)  # room for one path only
    probe.step_features([one], 0, scored)
    assert len(scored.entries) == 1 and scored.entries.get(tuple(one.ids[: one.cuts[-1]])) is not None
    probe.step_features([path([90, 91], [[92]])], 0, scored)  # pushes `one` out
    features, tokens = probe.step_features([two], 0, scored)
    assert tokens == len(two.ids)
    torch.testing.assert_close(features[0], probe.step_features([two], 0)[0][0], rtol=1e-4, atol=1e-5)


def test_the_scorer_scores_a_growing_path_as_it_would_score_it_whole(tmp_path):
    from tiny_prms import build_probe

    folder = str(build_probe(tmp_path / "probe"))
    growing = make_scorer("probe", ScorerEnv(), model=folder)
    fresh = make_scorer("probe", ScorerEnv(), model=folder, keep_paths_mb=0)  # reads each path whole
    question = "Tom has 3 apples and buys 5 more. He eats 2. How many are left?"
    steps = ("Tom has 3 + 5 = 8 apples.", "He eats 2, so 8 - 2 = 6.", "The answer is 6.")
    for k in range(1, len(steps) + 1):  # a search scores each new step of a path
        grown = StepPath(question, "", steps[:k])
        assert growing.score_steps([grown])[0] == pytest.approx(fresh.score_steps([grown])[0], abs=1e-6)
    assert growing.env.meter.scorer_tokens < fresh.env.meter.scorer_tokens
    # each path fed from the end of the text of the one it extends
    grown = [growing.spans(StepPath(question, "", steps[:k])) for k in range(1, len(steps) + 1)]
    expected = len(grown[0].ids) + sum(len(b.ids) - a.cuts[-1] for a, b in zip(grown, grown[1:]))
    assert growing.env.meter.scorer_tokens == expected


def test_train_prm_reads_a_questions_chains_one_per_batch_and_feeds_only_what_they_do_not_share(tmp_path):
    """extract: the chains of a question asked several times (a rollout tree's leaves) go one per
    batch, so each after the first extends the question and steps the scorer kept; the
    features equal those of each chain read whole, and fewer tokens are fed."""
    from tiny_prms import build_probe

    from tts_explorer.training.labels import Sequence
    from tts_explorer.training.probe import extract, reading_batches

    folder = str(build_probe(tmp_path / "probe"))
    question = "Tom has 3 apples and buys 5 more. He eats 2. How many are left?"
    leaves = [
        ["Tom has 3 + 5 = 8 apples.", "He eats 2, so 8 - 2 = 6.", "The answer is 6."],
        ["Tom has 3 + 5 = 8 apples.", "He eats 2, so 8 - 2 = 5.", "The answer is 5."],
        ["Tom has 3 + 5 = 9 apples.", "The answer is 7."],
        ["He buys 5, so 3 + 5 = 8.", "8 - 2 = 6. The answer is 6."],
    ]
    sequences = [Sequence(question, steps, [1.0] * len(steps), [1] * len(steps), "rollouts", "q") for steps in leaves]
    sequences.append(Sequence("Ann has 4 pens. She buys 2. How many?", ["4 + 2 = 6."], [1.0], [0], "perturbed", "a"))
    batches = reading_batches(sequences, batch_size=2)
    assert batches[0] == [4] and sorted(len(b) for b in batches[1:]) == [1, 1, 1, 1]  # one leaf per batch
    shared = make_scorer("probe", ScorerEnv(), model=folder)
    whole = make_scorer("probe", ScorerEnv(), model=folder, keep_paths_mb=0)
    read, alone = extract(shared, sequences, batch_size=2), extract(whole, sequences, batch_size=2)
    assert read.sequence.tolist() == alone.sequence.tolist() and read.step.tolist() == alone.step.tolist()
    torch.testing.assert_close(read.x, alone.x, rtol=1e-4, atol=1e-5)
    question = shared.spans(StepPath(question, "", tuple(leaves[0]))).starts[0]  # tokens before the first step
    assert shared.env.meter.scorer_tokens <= whole.env.meter.scorer_tokens - 3 * question  # not fed for 3 leaves
