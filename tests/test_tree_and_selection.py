"""The tree's JSON round trip and graph view; aggregation, answer extraction and voting."""

import json

import pytest

from tts_explorer.answers import equivalent, gold_answer
from tts_explorer.selection import aggregate, apply_selection, tally
from tts_explorer.tree import SearchTree
from tts_explorer.treefile import TreeFormatError, read_tree


def small_tree() -> SearchTree:
    tree = SearchTree("What is 2+3?", reference="5", meta={"config": {"n": 3}})
    a = tree.add(0, text="2 + 3 = 5.", score=0.9, agg_score=0.9, n_tokens=6, mean_logprob=-0.2)
    b = tree.add(0, text="2 + 3 = 6.", score=0.2, agg_score=0.2)
    tree.add(0, text="2 + 3 = 1.", score=0.1, agg_score=0.1, status="pruned")
    tree.add(
        a.id,
        text="The answer is 5.",
        score=0.8,
        agg_score=0.8,
        stop_reason="answer",
        answer="5",
        status="finished",
        iteration=1,
    )
    tree.add(
        a.id,
        text="The answer is $5.00$",
        score=0.3,
        agg_score=0.3,
        stop_reason="eos",
        answer="5.00",
        status="finished",
        iteration=1,
    )
    tree.add(
        b.id,
        text="The answer is 6.",
        score=0.99,
        agg_score=0.99,
        stop_reason="answer",
        answer="6",
        status="finished",
        iteration=1,
        subtree=1,
    )
    return tree


def test_json_round_trip_loses_nothing():
    tree = small_tree()
    apply_selection(tree, "prm_vote")
    text = tree.to_json()
    again = read_tree(text)
    assert again.to_json() == text
    assert json.loads(text)["schema_version"] == 2


def test_networkx_view():
    graph = small_tree().to_networkx()
    assert graph.number_of_nodes() == 7 and graph.number_of_edges() == 6
    assert graph.nodes[4]["answer"] == "5" and list(graph.successors(1)) == [4, 5]


@pytest.mark.parametrize(
    "bad",
    [
        "[1, 2]",
        "{",
        '{"schema_version": 99, "question": "q", "nodes": []}',
        '{"schema_version": 1, "question": "q", "nodes": [{"id": 0, "parent": null, "depth": 0, "evil": 1}]}',
        '{"schema_version": 1, "question": "q", "nodes": [{"id": 1, "parent": 7, "depth": 1}]}',
        '{"schema_version": 1, "question": "q", "nodes": [{"id": 0, "parent": null, "depth": 0, "status": "x"}]}',
    ],
)
def test_malformed_trees_are_refused(bad):
    with pytest.raises(TreeFormatError):
        read_tree(bad)


def test_aggregations():
    scores = [0.5, 0.8, None, 0.4]
    assert aggregate(scores, "last") == 0.4
    assert aggregate(scores, "min") == 0.4
    assert aggregate(scores, "avg") == pytest.approx(1.7 / 3)
    assert aggregate(scores, "prod") == pytest.approx(0.16)
    assert aggregate([None], "min") is None


def test_equivalence_uses_math_verify():
    assert equivalent("0.5", "\\frac{1}{2}") and equivalent("5.00", "5") and equivalent("1,000", "1000")
    assert not equivalent("5", "6") and not equivalent(None, "5")
    assert gold_answer("She has 3 + 4 = 7.\n#### 7") == "7"


def test_selection_rules_disagree_where_they_should():
    tree = small_tree()
    rows = {r["answer"]: r for r in tally(tree)}
    assert rows["5"]["votes"] == 2 and rows["5"]["vote_sum"] == pytest.approx(1.1)
    assert apply_selection(tree, "majority")[0] == "5"
    assert apply_selection(tree, "prm_max")[0] == "6"  # one very confident wrong path
    assert tree.meta["correct"] is False
    assert tree.chosen_path() == {2, 6}
    answer, leaf = apply_selection(tree, "prm_vote")  # 0.8 + 0.3 > 0.99
    assert answer == "5" and leaf == 4 and tree.meta["correct"] is True
    assert tree.chosen_path() == {1, 4}
    # choosing changes no node's status: the path is one fact of the tree
    assert [tree.nodes[i].status for i in (1, 2, 3, 4, 5, 6)] == [
        "active",
        "active",
        "pruned",
        "finished",
        "finished",
        "finished",
    ]
    assert tree.nodes[5].correct is True and tree.nodes[6].correct is False


def test_missing_scores_rank_last_everywhere():
    from tts_explorer.selection import by_score
    from tts_explorer.ui.panels import candidate_rows
    from tts_explorer.ui.rescore_table import _ranks

    tree = SearchTree("q", reference="1")
    tree.add(0, text="The answer is 1.", stop_reason="answer", answer="1", status="finished")  # no score
    tree.add(0, text="The answer is 2.", score=0.0, agg_score=0.0, stop_reason="answer", answer="2", status="finished")
    tree.add(0, text="The answer is 3.", score=0.4, agg_score=0.4, stop_reason="answer", answer="3", status="finished")
    order = [n.id for n in sorted(tree.candidates(), key=by_score, reverse=True)]
    assert order == [3, 2, 1]
    assert [row[0] for row in candidate_rows(tree)] == order
    assert sorted(_ranks(tree), key=_ranks(tree).get) == order
    assert apply_selection(tree, "prm_max") == ("3", 3)
    rows = {r["answer"]: r for r in tally(tree)}
    assert rows["1"]["vote_sum"] == 0 and rows["1"]["best"] == float("-inf")


def test_a_run_without_an_answer_is_not_wrong():
    tree = SearchTree("q", reference="5")
    tree.add(0, text="Let me think", stop_reason="length", status="finished")
    assert apply_selection(tree, "majority") == (None, None)
    assert tree.meta["correct"] is None and tree.chosen_path() == set()
