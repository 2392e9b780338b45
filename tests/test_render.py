"""The pure tree drawing: layout, colours, statuses, escaping, replay, size."""

import json

from tts_explorer.render import figure, layout_positions
from tts_explorer.selection import apply_selection
from tts_explorer.synthetic import synthetic_tree
from tts_explorer.tree import SearchTree


def traces(fig):
    return {t["name"]: t for t in fig["data"]}


def test_tidy_layout_has_no_overlaps_and_root_on_top():
    tree = synthetic_tree(300)
    pos = layout_positions(tree, list(tree))
    assert len(set(pos.values())) == len(tree)  # no two nodes share a place
    assert pos[0][1] == 0 and all(y == -tree.nodes[i].depth for i, (_, y) in pos.items())
    for node in tree:  # parents sit above their children, within the children's span
        if node.children:
            xs = [pos[c][0] for c in node.children]
            assert min(xs) <= pos[node.id][0] <= max(xs)


def test_statuses_colours_and_selected_path():
    tree = synthetic_tree(120, seed=3)
    apply_selection(tree, "prm_max")
    fig = figure(tree)
    t = traces(fig)
    steps, pruned = t["steps (colour = PRM score)"], t["pruned"]
    assert len(steps["x"]) + len(pruned["x"]) == len(tree) - 1
    assert set(pruned["customdata"]) == {n.id for n in tree.with_status("pruned")}
    by_id = dict(zip(steps["customdata"], steps["marker"]["color"]))
    assert all(by_id[n.id] == n.score for n in tree if n.id in by_id)
    assert steps["marker"]["cmin"] == 0 and steps["marker"]["cmax"] == 1  # a fixed scale
    gold_edges = [x for x in t["selected path"]["x"] if x is not None]
    assert len(gold_edges) == 2 * len(tree.chosen_path())
    assert fig["layout"]["xaxis"]["visible"] is False


def test_hover_is_escaped_and_truncated():
    tree = SearchTree("q")
    tree.add(0, text="<script>alert(1)</script> " + "x" * 500, score=0.5)
    hover = traces(figure(tree))["steps (colour = PRM score)"]["hovertext"][0]
    assert "<script>" not in hover and "&lt;script&gt;" in hover
    assert len(hover) < 400


def test_replay_shows_the_tree_as_it_was():
    tree = synthetic_tree(200)
    early = figure(tree, upto_iteration=1)
    shown = sum(len(t.get("customdata") or []) for t in early["data"])
    assert shown == 1 + sum(1 for n in tree if n.id and n.iteration <= 1)


def test_two_thousand_nodes_use_webgl_and_serialise():
    tree = synthetic_tree(2000)
    fig = figure(tree)
    assert all(t["type"] == "scattergl" for t in fig["data"])
    assert sum(len(t.get("customdata") or []) for t in fig["data"]) == 2000
    assert len(json.dumps(fig)) < 3_000_000
