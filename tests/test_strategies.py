"""Strategy invariants on a scripted policy and a hash scorer."""
from collections import Counter

import pytest

from fakes import FakePolicy, HashScorer
from tts_explorer.config import SearchConfig
from tts_explorer.events import Done, IterationDone, NodesAdded, NodesPruned, NodesScored
from tts_explorer.scorers import SCORERS
from tts_explorer.search import new_tree, search
from tts_explorer.selection import aggregate
from tts_explorer.tree import SearchTree

QUESTION = "How many?"


@pytest.fixture(autouse=True)
def hash_scorer(monkeypatch):
    monkeypatch.setitem(SCORERS, "hash", HashScorer)


def run(strategy, n=8, m=4, steps=5, selection="prm_vote", aggregation="last", seed=0, policy=None, **kw):
    config = SearchConfig(strategy=strategy, n=n, beam_width=m, max_steps=steps, selection=selection,
                          aggregation=aggregation, seed=seed)
    tree = new_tree(QUESTION, config, "hash")
    policy = policy or FakePolicy(**kw)
    events = list(search(tree, policy, config, "hash"))
    return tree, events, policy


def added_by_iteration(events):
    return [e for e in events if isinstance(e, NodesAdded)]


@pytest.mark.parametrize("strategy", ["greedy", "majority", "best_of_n", "beam", "dvts"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_common_invariants(strategy, seed):
    tree, events, policy = run(strategy, seed=seed)
    assert isinstance(events[-1], Done) and sum(isinstance(e, Done) for e in events) == 1
    for event in events:
        for node_id in getattr(event, "ids", []):
            assert node_id in tree.nodes
    n = 1 if strategy == "greedy" else 8
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


def test_chains_never_prune_and_end_with_n_leaves():
    tree, events, _ = run("best_of_n", n=8)
    assert not any(isinstance(e, NodesPruned) for e in events)
    assert len(tree.root.children) == 8
    assert all(len(n.children) <= 1 for n in tree if n.id)
    assert len([n for n in tree.leaves() if n.terminal]) == 8


@pytest.mark.parametrize("seed", range(5))
def test_beam_keeps_top_n_over_m_each_iteration(seed):
    tree, events, _ = run("beam", n=8, m=4, steps=6, seed=seed, answer_prob=0.15)
    keep = 8 // 4
    for event in added_by_iteration(events):
        new = [tree.nodes[i] for i in event.ids]
        open_ = [n for n in new if not n.terminal]
        expanded = [n for n in open_ if n.children]
        assert len(expanded) <= keep
        if expanded:  # survivors are the best-scored of the unfinished candidates
            worst_kept = min(n.agg_score for n in expanded)
            assert all(n.agg_score <= worst_kept for n in open_ if n.status == "pruned")
        if event.iteration > 0:
            assert len(event.ids) == 8  # survivors share out all N children
    for node in tree:
        if node.id and node.children:
            parents_children = len(node.children)
            assert parents_children in (4, 8)  # N split among 1 or 2 survivors


@pytest.mark.parametrize("seed", range(5))
def test_dvts_subtrees_never_mix(seed):
    tree, events, _ = run("dvts", n=8, m=2, steps=6, seed=seed, answer_prob=0.2)
    assert Counter(tree.nodes[c].subtree for c in tree.root.children) == {0: 2, 1: 2, 2: 2, 3: 2}
    for node in tree:
        if node.id:
            for child in node.children:
                assert tree.nodes[child].subtree == node.subtree
    for event in events:
        if isinstance(event, IterationDone):
            kept = [n for n in tree if n.iteration == event.iteration and n.children]
            assert len({n.subtree for n in kept}) == len(kept)  # one beam per subtree
    for node in tree:
        if node.id and node.children:
            assert len(node.children) == 2


def test_prm_aggregation_is_applied():
    for how in ("last", "min", "avg", "prod"):
        tree, _, _ = run("beam", aggregation=how)
        for node in tree:
            if node.id:
                assert node.agg_score == pytest.approx(aggregate([p.score for p in tree.path(node.id)], how))


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
        assert [n.id for n in tree.with_status("selected")] == [n.id for n in tree.path(leaf.id)]


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
