"""Strategy invariants on a scripted policy and a hash scorer."""

import math
from collections import Counter

import pytest
from fakes import FakePolicy, HashScorer

from tts_explorer.config import SearchConfig
from tts_explorer.events import Done, IterationDone, NodesAdded, NodesPruned, NodesScored
from tts_explorer.scorers import SCORERS
from tts_explorer.search import RunLimits, new_tree, search
from tts_explorer.selection import AGGREGATIONS
from tts_explorer.strategies import STRATEGIES
from tts_explorer.strategies.base import _classify
from tts_explorer.strategies.beam import split_budget
from tts_explorer.tree import SearchTree

QUESTION = "How many?"


@pytest.fixture(autouse=True)
def hash_scorer(monkeypatch):
    monkeypatch.setitem(SCORERS, "hash", HashScorer)


def run(strategy, n=8, m=4, steps=5, selection="prm_vote", aggregation="last", seed=0, policy=None, **kw):
    config = SearchConfig(
        strategy=strategy, n=n, beam_width=m, max_steps=steps, selection=selection, aggregation=aggregation, seed=seed
    )
    tree = new_tree(QUESTION, config, "hash")
    policy = policy or FakePolicy(**kw)
    events = list(search(tree, policy, config, "hash"))
    return tree, events, policy


def added_by_iteration(events):
    return [e for e in events if isinstance(e, NodesAdded)]


@pytest.mark.parametrize("strategy", [name for name, s in STRATEGIES.items() if s.on_page])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_common_invariants(strategy, seed):
    tree, events, policy = run(strategy, seed=seed)
    assert isinstance(events[-1], Done) and sum(isinstance(e, Done) for e in events) == 1
    for event in events:
        for node_id in getattr(event, "ids", []):
            assert node_id in tree.nodes
    n = dict(STRATEGIES[strategy].fixed).get("n", 8)
    for event in added_by_iteration(events):
        assert len(event.ids) <= n  # budget: at most N candidates per iteration
    for node in tree:
        if node.status == "pruned" or node.terminal:
            assert node.children == []  # pruned and finished nodes are never expanded
        for child in node.children:
            assert tree.nodes[child].parent == node.id and tree.nodes[child].depth == node.depth + 1
    assert len(tree.candidates()) <= n
    assert max(n.depth for n in tree) <= 5
    # every policy call is one batch for the whole iteration
    assert len(policy.calls) == len(added_by_iteration(events))


@pytest.mark.parametrize("strategy", [name for name, s in STRATEGIES.items() if s.on_page and s.settles])
@pytest.mark.parametrize("seed", range(6))
def test_settled_steps_only_grow_and_start_the_chosen_path(strategy, seed):
    """What the API streams before a search ends: each iteration's settled steps extend the last
    ones, and the chosen path starts with them (beam search settles some; best-of-N none)."""
    config = SearchConfig(strategy=strategy, n=4, beam_width=4, max_steps=6, aggregation="last", seed=seed)
    tree = new_tree(QUESTION, config, "hash")
    seen = []
    for event in search(tree, FakePolicy(answer_prob=0.2, seed=seed), config, "hash"):
        if isinstance(event, IterationDone):
            settled = [n.id for n in tree.settled_nodes()]
            assert settled[: len(seen[-1]) if seen else 0] == (seen[-1] if seen else [])
            seen.append(settled)
    chosen = [n.id for n in tree.chosen_nodes()]
    assert chosen and chosen[: len(seen[-1])] == seen[-1]
    if strategy in ("best_of_n", "majority"):
        assert seen[-1] == []  # independent chains share no step until the vote


def test_beam_search_settles_on_its_only_beam():
    config = SearchConfig(strategy="beam", n=4, beam_width=4, max_steps=5, aggregation="last", seed=0)
    tree = new_tree(QUESTION, config, "hash")
    depths = []
    for event in search(tree, FakePolicy(answer_prob=0.0), config, "hash"):
        if isinstance(event, IterationDone):
            depths.append(len(tree.settled_nodes()))
    assert depths[:3] == [1, 2, 3]  # one beam kept: its step is settled the iteration it is kept


def test_chains_never_prune_and_end_with_n_leaves():
    tree, events, _ = run("best_of_n", n=8)
    assert not any(isinstance(e, NodesPruned) for e in events)
    assert len(tree.root.children) == 8
    assert all(len(n.children) <= 1 for n in tree if n.id)
    assert len([n for n in tree.leaves() if n.terminal]) == 8


def nodes_of(tree, event):
    return [tree.nodes[i] for i in event.ids]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("n, m", [(8, 4), (8, 2), (12, 4)])
def test_beam_keeps_exactly_the_best_n_over_m_and_shares_out_n(seed, n, m):
    steps = 6
    tree, events, _ = run("beam", n=n, m=m, steps=steps, seed=seed, answer_prob=0.15, length_prob=0.1)
    added = added_by_iteration(events)
    keep = n // m
    for index, event in enumerate(added):
        new = nodes_of(tree, event)
        assert len(new) == n  # every iteration generates exactly N candidates
        open_ = sorted((x for x in new if not x.terminal), key=lambda x: -x.agg_score)
        survivors = open_[:keep]
        assert all(x.status == "pruned" and not x.children for x in open_[keep:])
        if index + 1 < len(added):  # the survivors, and only they, share out the next N
            parents = [tree.nodes[i].parent for i in added[index + 1].ids]
            assert list(dict.fromkeys(parents)) == [x.id for x in survivors]
            assert [len(x.children) for x in survivors] == split_budget(n, len(survivors))
        else:
            assert not survivors or index == steps - 1  # stopped early only when nothing survived
    pool = tree.candidates()
    assert len(pool) <= n
    finished = [x for x in tree if x.terminal]
    best = sorted(finished, key=lambda x: -x.agg_score)[:n]
    assert {x.id for x in pool} == {x.id for x in best}  # the pool keeps the N best finished
    assert all(x.status == "pruned" for x in finished if x not in best)  # the rest are pruned at the end


@pytest.mark.parametrize("seed", range(6))
def test_dvts_rule_for_finished_and_unfinished_siblings(seed):
    n, m, steps = 8, 2, 6
    tree, events, _ = run("dvts", n=n, m=m, steps=steps, seed=seed, answer_prob=0.25, length_prob=0.1)
    assert Counter(tree.nodes[c].subtree for c in tree.root.children) == {0: 2, 1: 2, 2: 2, 3: 2}
    ended = set()
    for event in added_by_iteration(events):
        new = nodes_of(tree, event)
        for subtree in range(n // m):
            siblings = [x for x in new if x.subtree == subtree]
            if subtree in ended:
                assert siblings == []  # an ended subtree grows no more
                continue
            assert len(siblings) == m and len({x.parent for x in siblings}) == 1
            best = max(siblings, key=lambda x: x.agg_score)
            others = [x for x in siblings if x is not best]
            if best.terminal:  # the subtree ends: its finished candidates stay, the unfinished are pruned
                ended.add(subtree)
                assert best.status == "finished"
                assert all(x.status == ("finished" if x.terminal else "pruned") for x in others)
            else:  # the best goes on (M children next, unless this was the last step); every sibling is pruned
                assert best.status == "active"
                assert len(best.children) in (0, m) and (best.children or event.iteration == steps - 1)
                assert all(x.status == "pruned" and not x.children for x in others)
    for node in tree:
        if node.id:
            for child in node.children:
                assert tree.nodes[child].subtree == node.subtree


BY_HAND = {"last": lambda v: v[-1], "min": min, "avg": lambda v: sum(v) / len(v), "prod": math.prod}


def test_prm_aggregation_is_applied():
    assert set(BY_HAND) == set(AGGREGATIONS)
    for how, fold in BY_HAND.items():
        tree, _, _ = run("beam", aggregation=how)
        for node in tree:
            if node.id:
                assert node.agg_score == pytest.approx(fold([p.score for p in tree.path(node.id)]))


def _expected(tree: SearchTree, how: str):
    pool = [n for n in tree.candidates() if n.answer]
    votes = Counter(n.answer for n in pool)
    sums = Counter()
    best = {}
    for n in pool:
        sums[n.answer] += n.agg_score
        best[n.answer] = max(best.get(n.answer, -1), n.agg_score)
    if how == "majority":
        return max(votes, key=lambda a: (votes[a], best[a]))
    if how == "prm_max":
        return max(best, key=best.get)
    return max(sums, key=sums.get)


@pytest.mark.parametrize("how", ["majority", "prm_max", "prm_vote"])
@pytest.mark.parametrize("strategy", ["best_of_n", "beam", "dvts"])
def test_selected_answer_follows_the_rule(how, strategy):
    for seed in range(4):
        tree, events, _ = run(strategy, selection=how, seed=seed, n=8, m=2)
        done = events[-1]
        assert done.answer == _expected(tree, how)
        leaf = tree.nodes[done.selected[0]]
        assert leaf.answer == done.answer
        assert tree.chosen_path() == {n.id for n in tree.path(leaf.id)}


def test_stop_keeps_the_partial_tree():
    calls = {"n": 0}

    def should_stop():
        calls["n"] += 1
        return calls["n"] > 20

    config = SearchConfig(strategy="beam", n=8, beam_width=2, max_steps=10)
    tree = new_tree(QUESTION, config, "hash")
    events = list(search(tree, FakePolicy(answer_prob=0.0), config, "hash", should_stop=should_stop))
    assert events[-1].stopped and tree.meta["stopped"]
    assert 1 < len(tree) < 80
    assert all(any(isinstance(e, NodesScored) and n.id in e.ids for e in events) for n in tree if n.id)


def test_compute_is_recorded():
    tree, _, _ = run("beam")
    compute = tree.meta["compute"]
    assert compute["generated_tokens"] == 5 * (len(tree) - 1)
    assert compute["policy_flops"] == 2 * 1000 * compute["generated_tokens"]


@pytest.mark.parametrize(
    "text, reason, final, expected",
    [
        ("The answer is 7.\n\n", "stop", False, ("The answer is 7.", "answer", "7")),
        (
            "So she has 3 + 4 = 7 apples. The answer is 7.",
            "eos",
            False,
            ("So she has 3 + 4 = 7 apples. The answer is 7.", "eos", "7"),
        ),
        ("The answer is 15.", "length", False, ("The answer is 15.", "answer", "15")),
        ("The answer is 1", "length", False, ("The answer is 1", "length", None)),  # cut: maybe 15
        (
            "The answer is 12 minus the 5 she ate\n\n",
            "stop",
            False,
            ("The answer is 12 minus the 5 she ate", "step", None),
        ),
        ("the answer is not 5 yet\n\n", "stop", False, ("the answer is not 5 yet", "step", None)),
        ("She has 12 - 5 = 7 left.\n\n", "stop", False, ("She has 12 - 5 = 7 left.", "step", None)),
        ("She has 12 - 5 = 7 left.\n\n", "stop", True, ("She has 12 - 5 = 7 left.", "length", None)),
        ("", "eos", False, ("", "eos", None)),
    ],
)
def test_a_step_ends_its_path_only_on_a_readable_answer(text, reason, final, expected):
    assert _classify(text, reason, final) == expected


def test_answer_length_and_eos_ends_all_occur_and_are_classified():
    tree, _, _ = run("best_of_n", n=16, steps=4, answer_prob=0.3, length_prob=0.2)
    reasons = Counter(n.stop_reason for n in tree if n.id)
    assert reasons["answer"] and reasons["eos"] and reasons["length"] and reasons["step"]
    for node in tree:
        if node.stop_reason == "length":
            assert node.answer is None and node.status == "finished"
        if node.stop_reason == "answer":
            assert node.answer in ("7", "8", "9") and not node.text.endswith("\n")


@pytest.mark.parametrize(
    "limits, cause",
    [
        (RunLimits(tokens=40), "at this server's limit of 40 tokens per run"),
        (RunLimits(seconds=0.0), "at this server's limit of 0 s per run"),
    ],
)
def test_run_limits_stop_a_search_like_stop_does(limits, cause):
    config = SearchConfig(strategy="beam", n=8, beam_width=2, max_steps=10)
    tree = new_tree(QUESTION, config, "hash")
    events = list(search(tree, FakePolicy(answer_prob=0.0), config, "hash", limits=limits))
    assert events[-1].stopped == cause and tree.meta["stopped"] == cause
    assert tree.meta["compute"]["generated_tokens"] <= 40 + 5
    unlimited = new_tree(QUESTION, config, "hash")
    assert list(search(unlimited, FakePolicy(answer_prob=0.0), config, "hash"))[-1].stopped is None
