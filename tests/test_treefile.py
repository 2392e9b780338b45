"""Reading trees from untrusted JSON: every malformed shape is one TreeFormatError line, in bounded time."""

import copy
import json
import time

import pytest

from tts_explorer.selection import apply_selection
from tts_explorer.tree import SearchTree
from tts_explorer.treefile import MAX_DEPTH, TreeFormatError, read_tree


def good() -> dict:
    tree = SearchTree("What is 2+3?", reference="5", meta={"config": {"n": 2, "max_steps": 3}})
    a = tree.add(0, text="2 + 3 = 5.", score=0.9, agg_score=0.9, n_tokens=6, mean_logprob=-0.2)
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
    tree.add(0, text="2 + 3 = 6.", score=0.1, agg_score=0.1, status="pruned")
    apply_selection(tree, "prm_vote")
    return tree.to_dict()


def with_change(change) -> str:
    data = copy.deepcopy(good())
    change(data)
    return json.dumps(data)


def node(data, node_id):
    return next(n for n in data["nodes"] if n["id"] == node_id)


def test_a_good_tree_reads_back_as_written():
    text = json.dumps(good())
    assert read_tree(text).to_json() == read_tree(text).to_json()
    assert json.loads(read_tree(text).to_json()) == good()


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda d: node(d, 1).update(parent=2), "cycle"),  # 1 -> 2 -> 1
        (lambda d: node(d, 1).update(parent=1), "its own parent"),
        (lambda d: node(d, 3).update(parent=99), "orphan"),
        (lambda d: node(d, 1).update(text=5), "node 1: text: Input should be a valid string"),
        (lambda d: node(d, 1).update(score="abc"), "node 1: score: Input should be a valid number"),
        (lambda d: node(d, 1).update(score=1.5), "node 1: score: Input should be less than or equal to 1"),
        (lambda d: node(d, 1).update(depth="abc"), "node 1: depth: Input should be a valid integer"),
        (lambda d: node(d, 1).update(depth=True), "node 1: depth: Input should be a valid integer"),
        (lambda d: node(d, 1).update(depth=2), "depth 2 does not follow"),
        (lambda d: node(d, 1).update(status="<b>"), "node 1: status"),
        (lambda d: node(d, 1).update(evil=1), "node 1: evil: Extra inputs are not permitted"),
        (lambda d: node(d, 1).update(children=[3]), "children list does not match"),
        (lambda d: node(d, 0).update(children=[1]), "children list does not match"),
        (lambda d: d["nodes"].append(dict(node(d, 3))), "appears twice"),
        (lambda d: d.update(meta=[1, 2]), "meta: Input should be a valid dictionary"),
        (lambda d: d["meta"].update(compute={"wall_s": "fast"}), "meta.compute.wall_s"),
        (lambda d: d["meta"].update(selected_leaf=3), "selected_leaf 3 is not a node that ends a path"),
        (lambda d: d.update(question="x" * 5000), "question: String should have at most 4000 characters"),
        (lambda d: d.update(question=["q"]), "question: Input should be a valid string"),
        (lambda d: d.update(schema_version=99), "unsupported tree schema_version"),
        (lambda d: d.update(schema_version=True), "unsupported tree schema_version"),
        (lambda d: d.update(nodes=[]), "nodes: List should have at least 1 item"),
        (lambda d: d.update(nodes=[n for n in d["nodes"] if n["id"] != 0]), "root node 0"),
    ],
)
def test_malformed_trees_are_one_clear_line(change, message):
    with pytest.raises(TreeFormatError) as caught:
        read_tree(with_change(change))
    text = str(caught.value)
    assert message in text and "\n" not in text and len(text) < 300


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"schema_version": 2, "question": "q", "nodes": [{"id": 0, "depth": 0, "score": NaN}]}', "not a JSON number"),
        (
            '{"schema_version": 2, "question": "a\\ud800b", "nodes": [{"id": 0, "depth": 0}]}',
            "question: Input should be a valid string",
        ),
        ("[" * 200_000 + "]" * 200_000, "nested too deeply"),
        (
            '{"schema_version": 2, "question": "q", "meta": ' + "[" * 50_000 + "]" * 50_000 + ', "nodes": []}',
            "nested too deeply",
        ),
    ],
)
def test_hostile_documents(text, message):
    started = time.monotonic()
    with pytest.raises(TreeFormatError, match=message):
        read_tree(text)
    assert time.monotonic() - started < 2


def test_depth_is_capped():
    tree = SearchTree("deep")
    parent = 0
    for _ in range(MAX_DEPTH + 1):
        parent = tree.add(parent, text="step").id
    with pytest.raises(TreeFormatError, match="depth"):
        read_tree(tree.to_json())


def test_a_long_cycle_is_found_and_a_large_tree_reads_fast():
    tree = SearchTree("wide")
    for _ in range(19_000):
        tree.add(0, text="a step")
    data = tree.to_dict()
    started = time.monotonic()
    read_tree(json.dumps(data))
    assert time.monotonic() - started < 5
    chain = SearchTree("chain")
    parent = 0
    for _ in range(10):
        parent = chain.add(parent, text="s").id
    data = chain.to_dict()
    data["nodes"][1]["parent"] = 10  # 1 -> 10 -> 9 -> ... -> 1
    with pytest.raises(TreeFormatError, match="cycle|does not follow"):
        read_tree(json.dumps(data))


def test_schema_1_files_are_converted():
    data = good()
    data["schema_version"] = 1
    leaf = data["meta"].pop("selected_leaf")
    for raw in data["nodes"]:
        if raw["id"] in (1, leaf):
            raw["status"] = "selected"
    tree = read_tree(json.dumps(data))
    assert tree.meta["selected_leaf"] == leaf and tree.chosen_path() == {1, leaf}
    assert tree.nodes[1].status == "active" and tree.nodes[leaf].status == "finished"
