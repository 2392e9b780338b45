"""The strategies the field added since, each checked on its defining rule with the scripted
fake policy: which particles survive a resampling with a fixed seed, how REBASE shares a
budget of 16 among given scores, which chains DeepConf stops and when."""

import math
import random

import pytest
from fakes import FakePolicy, HashScorer

from tts_explorer.config import SearchConfig
from tts_explorer.events import Done, NodesAdded
from tts_explorer.policy.base import Completion
from tts_explorer.scorers import SCORERS
from tts_explorer.search import new_tree, search
from tts_explorer.selection import path_confidence
from tts_explorer.strategies import STRATEGIES
from tts_explorer.strategies.deepconf import quantile
from tts_explorer.strategies.particles import resample, softmax
from tts_explorer.strategies.rebase import split_by_weight


@pytest.fixture(autouse=True)
def hash_scorer():
    SCORERS["hash"] = HashScorer
    yield
    del SCORERS["hash"]


def run(strategy, policy=None, **settings):
    config = SearchConfig(**{"strategy": strategy, "n": 8, "beam_width": 2, "max_steps": 5, "seed": 3, **settings})
    tree = new_tree("How many?", config, "hash", reference="8")
    events = list(search(tree, policy or FakePolicy(answer_prob=0.25, seed=1), config, "hash"))
    return tree, events


def test_resampling_draws_in_proportion_to_the_softmax_of_scores_with_the_run_seed():
    weights, draws = resample([0.9, 0.1, 0.5], 0.5, random.Random(0))
    exps = [math.exp(0.9 / 0.5), math.exp(0.1 / 0.5), math.exp(0.5 / 0.5)]
    assert weights == pytest.approx([e / sum(exps) for e in exps])
    expected = random.Random(0).choices(range(3), weights=weights, k=3)
    assert sorted(draws.elements()) == sorted(expected) and sum(draws.values()) == 3


def test_particles_that_survive_carry_their_draws_into_the_next_step():
    tree, events = run("particles", resample_temperature=0.5)
    assert isinstance(events[-1], Done)
    first = [tree.nodes[i] for i in next(e for e in events if isinstance(e, NodesAdded)).ids]
    live = [n for n in first if not n.terminal]
    # the same draw, made again from the run's seed, picks the same particles
    weights, draws = resample([n.score or 0.0 for n in live], 0.5, random.Random(3))
    for i, node in enumerate(live):
        assert node.weight == pytest.approx(round(weights[i], 4))
        assert node.budget == draws.get(i, 0)
        assert (node.status == "pruned") == (i not in draws)
        if i in draws:
            assert len(node.children) == draws[i]  # k particles on a node: k children next step
    assert sum(n.budget for n in live) == len(live)


def test_rebase_shares_a_budget_of_16_by_the_softmax_of_scores():
    weights = softmax([0.9, 0.5, 0.1, 0.7], 0.2)
    # by hand: exp((s - 0.9) / 0.2) = 1, e^-2, e^-4, e^-1; x16 / sum = 10.52, 1.42, 0.19, 3.87; floors 10, 1, 0, 3,
    # and the two left go to the largest remainders (0.87, then 0.52)
    assert split_by_weight(weights, 16) == [11, 1, 0, 4]
    assert split_by_weight([0.25] * 4, 6) == [2, 2, 1, 1]  # equal remainders: the earlier first
    assert sum(split_by_weight(softmax([0.3, 0.31, 0.9], 1.0), 7)) == 7


def test_rebase_grants_every_unfinished_node_its_share_and_prunes_the_rest():
    tree, events = run("rebase", frontier_temperature=0.2)
    assert isinstance(events[-1], Done)
    granted = [n for n in tree if n.budget is not None]
    assert granted
    for node in granted:
        assert len(node.children) == node.budget and (node.status == "pruned") == (node.budget == 0)
    assert len(tree.candidates()) <= 8


class ConfidencePolicy(FakePolicy):
    """The fake policy, with each chain's step log-probs scripted: chain k (by its first step's
    number) has log-prob -0.1 * k on every step."""

    def generate(self, prompts, n, max_tokens, temperature, **kwargs):
        groups = super().generate(prompts, n, max_tokens, temperature, **kwargs)
        out = []
        for prompt, group in zip(prompts, groups):
            fixed = []
            for c in group:
                first = prompt.split("A: ", 1)[-1].split("\n\n")[0] if "\n\n" in prompt.split("A: ", 1)[-1] else c.text
                k = int(first.split(".")[-1][:3]) % 10 if first.startswith("step") else 1
                fixed.append(Completion(c.text, c.n_tokens, -0.1 * k, c.stop_reason, c.token_ids))
            out.append(fixed)
        return out


def test_deepconf_stops_the_chains_below_the_warm_up_threshold_when_they_fall():
    policy = ConfidencePolicy(answer_prob=0.15, seed=2)
    tree, events = run("deepconf", policy=policy, n=16, warmup=4, confidence_quantile=0.5, max_steps=6)
    meta = tree.meta["deepconf"]
    warm = sorted({n.iteration for n in tree if n.id and n.iteration < min(x.iteration for x in tree if x.id) + 6})
    assert meta["warmup"] == 4 and warm
    stopped = [n for n in tree if n.status == "pruned"]
    assert meta["stopped"] == len(stopped) > 0
    for node in stopped:  # stopped exactly when its running confidence fell below the threshold
        assert node.confidence < meta["threshold"] and not node.children
    for node in tree:
        if node.id and node.status != "pruned" and node.confidence is not None and node.iteration > max(warm):
            assert node.confidence >= meta["threshold"]
    assert tree.meta["selection"] == "confidence_vote"
    chosen = tree.meta["answer"]
    sums = {}
    for leaf in tree.candidates():
        sums[leaf.answer] = sums.get(leaf.answer, 0.0) + path_confidence(tree, leaf)
    if sums:
        assert sums[chosen] == max(sums.values())


def test_the_warm_up_threshold_is_the_asked_quantile():
    assert quantile([0.5, 0.1, 0.9, 0.3], 0.1) == 0.1
    assert quantile([0.5, 0.1, 0.9, 0.3], 0.5) == 0.5
    assert quantile([], 0.3) == 0.0


@pytest.mark.parametrize("name", ["particles", "rebase", "deepconf"])
def test_the_new_strategies_are_registered_offered_and_choosable(name):
    strategy = STRATEGIES[name]
    assert strategy.on_page and strategy.choosable and strategy.label
    tree, events = run(name)
    assert isinstance(events[-1], Done) and len(tree.candidates()) <= 16
