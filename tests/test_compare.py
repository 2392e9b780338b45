"""Re-scoring a finished tree and comparing ranks and answers (no model needed)."""

from tts_explorer.rescore import reaggregate, rescore
from tts_explorer.selection import apply_selection
from tts_explorer.tree import SearchTree
from tts_explorer.ui.rescore_table import compare


def tree_with_two_answers() -> SearchTree:
    tree = SearchTree("What is 4 * 6?", reference="24", meta={"config": {"n": 2, "aggregation": "last"}})
    a = tree.add(0, text="4 * 6 = 25.", mean_logprob=-0.1)
    tree.add(a.id, text="The answer is 25.", stop_reason="answer", answer="25", status="finished", mean_logprob=-0.1)
    b = tree.add(0, text="4 * 6 = 24.", mean_logprob=-2.0)
    tree.add(b.id, text="The answer is 24.", stop_reason="answer", answer="24", status="finished", mean_logprob=-2.0)
    return tree


def test_rescoring_flips_the_answer():
    tree = rescore(tree_with_two_answers(), "confidence", "min")
    apply_selection(tree, "prm_max")
    assert tree.meta["answer"] == "25"  # the fluent wrong path wins on confidence
    after = rescore(tree, "arithmetic", "min")
    apply_selection(after, "prm_max")
    assert after.meta["answer"] == "24" and after.meta["rescore"]["from_scorer"] == "confidence"
    rows, summary = compare(tree, after)
    assert [r[0] for r in rows] == [4, 2] and [r[-1] for r in rows] == ["↑1", "↓1"]
    assert "25 → 24" in summary and "flips" in summary
    assert tree.nodes[1].score is not None and tree.nodes[1].score != after.nodes[1].score


def test_reaggregate_in_place():
    tree = rescore(tree_with_two_answers(), "arithmetic", "last")
    reaggregate(tree, "min")
    assert tree.nodes[2].agg_score == min(tree.nodes[1].score, tree.nodes[2].score)
    assert tree.meta["config"]["aggregation"] == "min"
