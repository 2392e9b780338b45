"""Questioning a PRM and teaching with it: edit a step and continue, strategies side by side,
disagreements, colour scales, and the tree as one HTML file (API and headless chromium)."""

import json
import time
from pathlib import Path

import pytest
from gradio_client import Client

from tts_explorer.config import PAGE_DEFAULTS
from tts_explorer.diagnose import disagreements, score_histogram
from tts_explorer.edit import edit_step
from tts_explorer.errors import UserError
from tts_explorer.render import Colours, figure
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.selection import apply_selection
from tts_explorer.standalone import tree_page
from tts_explorer.tree import SearchTree
from tts_explorer.treefile import read_tree
from tts_explorer.ui.compare_tab import plan
from tts_explorer.ui.run_views import BASIC_FIELDS, TUNING

QUESTION = "Sam has 4 boxes with 6 pens in each box. He gives away 5 pens. How many pens are left?"


def worked_tree() -> SearchTree:
    tree = SearchTree(QUESTION, reference="19", meta={"config": {"max_steps": 4, "aggregation": "min"}})
    a = tree.add(0, text="Sam has 4 * 6 = 24 pens.", score=0.9, agg_score=0.9)
    tree.add(
        a.id,
        text="He has 24 - 5 = 19 pens left. The answer is 19.",
        score=0.8,
        agg_score=0.8,
        stop_reason="answer",
        answer="19",
        status="finished",
    )
    b = tree.add(0, text="Sam has 4 + 6 = 10 pens.", score=0.9, agg_score=0.9)
    tree.add(
        b.id, text="The answer is 5.", score=0.95, agg_score=0.9, stop_reason="answer", answer="5", status="finished"
    )
    apply_selection(tree, "prm_max")
    return tree


def test_an_edit_is_a_new_node_scored_beside_the_original():
    tree = worked_tree()
    scorer = make_scorer("arithmetic", ScorerEnv())
    before = tree.to_json()
    result = edit_step(tree, 1, "Sam has 4 * 6 = 25 pens.", scorer, "min", "")
    new = result.node
    assert new.edited and new.parent == 0 and new.score == 0.05 and new.text == "Sam has 4 * 6 = 25 pens."
    assert [r["node"] for r in result.rows] == [1, 2]  # the original and the step below it, scored again
    assert result.rows[0]["old"] == 0.9 and result.rows[0]["new"] == 0.05
    assert result.paths["min"] == (0.9, 0.05)
    original = json.loads(before)["nodes"]
    assert [vars(tree.nodes[n["id"]])["text"] for n in original] == [n["text"] for n in original]  # untouched
    assert json.loads(tree.to_json())["nodes"][-1]["edited"] is True  # the export keeps the edit
    answer = edit_step(tree, 0, "The answer is 19.", scorer, "min", "")
    assert answer.node.parent == 0 and answer.node.stop_reason == "answer" and answer.node.answer == "19"
    with pytest.raises(UserError, match="the edited step is empty"):
        edit_step(tree, 1, "   ", scorer, "min", "")
    with pytest.raises(UserError, match="cap is 2000"):
        edit_step(tree, 1, "x" * 2001, scorer, "min", "")
    with pytest.raises(UserError, match="choose a node"):
        edit_step(tree, 999, "step", scorer, "min", "")


def test_disagreements_and_the_score_histogram():
    tree = worked_tree()
    rows = disagreements(tree)
    assert [r[0] for r in rows] == [4, 2]  # the confident wrong one first, then the right one it outranks
    assert "high score, wrong" in rows[0][-1] and "low score, right" in rows[1][-1]
    assert disagreements(SearchTree("q")) == []
    hist = score_histogram(tree)
    assert [t["name"] for t in hist["data"]] == ["step 1", "step 2"]
    assert sum(sum(t["y"]) for t in hist["data"]) == 4


def test_colour_scales_default_to_a_colour_blind_safe_one():
    tree = worked_tree()
    steps = next(t for t in figure(tree)["data"] if t["name"].startswith("steps"))
    assert steps["marker"]["colorscale"] == "Viridis"
    old = next(t for t in figure(tree, colours=Colours("red-green"))["data"] if t["name"].startswith("steps"))
    assert old["marker"]["colorscale"][0] == [0.0, "#d73027"]
    assert "step score 0.900" in steps["hovertext"][0]  # readable without colour


def test_relative_colours_rank_scores_within_the_tree_and_keep_the_raw_score_in_the_hover():
    tree = SearchTree("q")
    for score in (0.004, 0.0041, 0.0039, 0.0041, None):
        tree.add(0, text="s", score=score)
    raw = next(t for t in figure(tree)["data"] if t["name"].startswith("steps"))
    ranked = next(t for t in figure(tree, colours=Colours(relative=True))["data"] if t["name"].startswith("steps"))
    assert raw["marker"]["color"] == [0.004, 0.0041, 0.0039, 0.0041, 0.5]  # one dark colour
    assert ranked["marker"]["color"] == [1 / 3, 2.5 / 3, 0.0, 2.5 / 3, 0.5]  # ties share their mean rank
    assert ranked["marker"]["colorbar"]["title"]["text"].startswith("rank")
    assert "step score 0.004" in ranked["hovertext"][0]
    assert Colours(relative=True).of([0.2]) == [0.5] and Colours(relative=True).of([]) == []


def test_compare_plans_vary_one_thing():
    assert plan(["beam", "dvts", "best_of_n"], ["arithmetic"], ["min"]) == [
        ("beam", "arithmetic", "min", None),
        ("dvts", "arithmetic", "min", None),
        ("best_of_n", "arithmetic", "min", None),
    ]
    assert plan(["beam"], ["arithmetic", "confidence"], ["min"])[1] == ("beam", "confidence", "min", None)
    # models: each with the strategy in the same place (a larger model's greedy beside a smaller one's beam)
    assert plan(["greedy", "beam"], ["arithmetic"], ["min"], ["gemma3-270m", "embedded"]) == [
        ("greedy", "arithmetic", "min", "gemma3-270m"),
        ("beam", "arithmetic", "min", "embedded"),
    ]
    assert [p[3] for p in plan(["beam"], ["arithmetic"], ["min"], ["a", "b", "c"])] == ["a", "b", "c"]
    for bad_models in ((["greedy", "beam", "dvts"], ["a", "b"]), (["beam"], ["a", "b", "c", "d", "e"])):
        with pytest.raises(UserError):
            plan(bad_models[0], ["arithmetic"], ["min"], bad_models[1])
    for bad in (
        (["beam", "dvts"], ["arithmetic", "confidence"], ["min"]),
        (["beam"], ["arithmetic"], ["min"]),
        (["beam"] * 1 + ["dvts", "greedy", "majority", "best_of_n"], ["arithmetic"], ["min"]),
    ):
        with pytest.raises(UserError):
            plan(*bad)


def fields(model, **overrides):
    values = dict(
        question=QUESTION,
        reference="19",
        strategy="beam",
        n=4,
        m=2,
        temperature=0.8,
        max_steps=4,
        scorer="arithmetic",
        aggregation="min",
        selection="prm_vote",
        model=model,
    )
    values.update(overrides)
    return [values[k] for k in BASIC_FIELDS]


def finish(job, timeout=240):
    deadline = time.time() + timeout
    while not job.done():
        assert time.time() < deadline
        time.sleep(0.1)
    return job.outputs()


@pytest.mark.slow
def test_edit_and_continue_through_the_api_leaves_other_sessions_alone(app_url, tiny_model_dir):
    mine, other = Client(app_url, verbose=False), Client(app_url, verbose=False)
    finish(other.submit(*fields(str(tiny_model_dir), question="Ann has 2 cats. How many cats?"), api_name="/run"))
    other_before = json.loads(other.predict(1, api_name="/replay"))
    final = finish(mine.submit(*fields(str(tiny_model_dir), max_steps=3), api_name="/run"))[-1]
    tree = read_tree(open(final[-1]).read())
    first = tree.root.children[0]
    view, status, summary, table, selected, panel = mine.predict(
        first, "Sam has 4 * 6 = 25 pens.", "arithmetic", "min", api_name="/edit_step"
    )
    assert status.startswith(f"Node {selected} added") and "Path score, original → edited" in summary
    assert table["data"][0][0] == first and table["data"][0][3] == "0.050"  # the wrong product scores low
    outputs = finish(mine.submit(selected, *fields(str(tiny_model_dir), max_steps=3), api_name="/continue_from"))
    assert outputs[-1][1].startswith("Done")
    grown = read_tree(open(outputs[-1][-1]).read())
    edited = grown.nodes[int(selected)]
    assert edited.edited and edited.children  # the new branch grew from the edit
    assert all(grown.nodes[c].score is not None for c in edited.children)
    assert json.loads(other.predict(1, api_name="/replay")) == other_before  # the other session is untouched


@pytest.mark.slow
def test_the_newer_strategies_parameters_reach_the_search_from_the_page(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    tuning = [0.3, 2.5, 0.25, 3]  # resampling and frontier temperatures, confidence quantile, warm-up chains
    final = finish(client.submit(*fields(str(tiny_model_dir), strategy="particles"), *tuning, api_name="/run"))[-1]
    config = read_tree(open(final[-1]).read()).meta["config"]
    assert [config[name] for name in TUNING] == tuning
    # left out by a client, they take the page's defaults
    final = finish(client.submit(*fields(str(tiny_model_dir), strategy="particles"), api_name="/run"))[-1]
    config = read_tree(open(final[-1]).read()).meta["config"]
    assert [config[name] for name in TUNING] == [getattr(PAGE_DEFAULTS, name) for name in TUNING]
    with pytest.raises(Exception, match="greater than maximum"):  # gradio's slider refuses it before a run
        client.predict(*fields(str(tiny_model_dir)), 0.3, 2.5, 1.0, 3, api_name="/run")


@pytest.mark.slow
def test_compare_draws_valid_trees_side_by_side(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    job = client.submit(
        QUESTION,
        "19",
        ["best_of_n", "beam", "dvts"],
        ["arithmetic"],
        ["min"],
        4,
        2,
        0.8,
        3,
        "prm_vote",
        str(tiny_model_dir),
        api_name="/compare",
    )
    final = finish(job)[-1]
    status, figures, captions = final[0], final[1:5], final[5:9]
    assert status == "Done"
    drawn = [json.loads(f) for f in figures[:3]]
    assert all(sum(len(t.get("customdata") or []) for t in f["data"]) > 1 for f in drawn)
    assert figures[3] == "" and captions[3] == ""
    assert captions[0].startswith("**Best-of-N, arithmetic, min**") and "FLOPs" in captions[0]


@pytest.mark.slow
def test_the_html_export_works_offline_in_chromium(tmp_path):
    from playwright.sync_api import sync_playwright

    from tts_explorer.loopback import CHROMIUM_ARGS, chromium_path

    tree = worked_tree()
    evil = tree.add(
        2,
        text="<script>window.__pwned = 1</script><img src=x onerror='window.__pwned=2'> more",
        score=0.5,
        agg_score=0.5,
    )
    page_file = tmp_path / "tree.html"
    page_file.write_text(tree_page(tree))
    assert "<script>window.__pwned" not in page_file.read_text()  # never raw in the page
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        context = browser.new_context(offline=True, viewport={"width": 1400, "height": 1200})
        page = context.new_page()
        page.goto(page_file.as_uri())
        page.wait_for_function("document.getElementById('tree')._fullData !== undefined", timeout=20000)
        point = page.evaluate(
            """(id) => { const gd = document.getElementById('tree');
            for (const t of gd._fullData) { const i = (t.customdata || []).indexOf(id);
              if (i < 0) continue; const box = gd.getBoundingClientRect();
              return {x: box.left + gd._fullLayout.xaxis._offset + gd._fullLayout.xaxis.l2p(t.x[i]),
                      y: box.top + gd._fullLayout.yaxis._offset + gd._fullLayout.yaxis.l2p(t.y[i])}; } }""",
            evil.id,
        )
        page.mouse.move(point["x"], point["y"])  # plotly finds the point under the mouse on hover
        page.wait_for_timeout(300)
        page.mouse.click(point["x"], point["y"])
        page.wait_for_selector(f"#path[data-node='{evil.id}']", timeout=10000)
        text = page.inner_text("#path")
        assert "<script>window.__pwned = 1</script>" in text and "Sam has 4 * 6 = 24 pens." in text
        assert page.evaluate("window.__pwned === undefined")
        assert page.locator("#path script, #path img").count() == 0
        assert "no answer" not in page.inner_text("#answer")
        page.screenshot(path=str(Path(__file__).resolve().parent.parent / "artifacts" / "export-html.png"))
        browser.close()
