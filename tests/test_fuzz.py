"""Fuzzing the page's handlers in-process (Hypothesis): the Run parameters, the tree import
format, edits, continuations, comparisons, the PRM lab's file format and scaling rows, with
adversarial text (long runs of digits, spaces, operators, nested brackets). Whatever comes
in: no raw exception, one status line, bounded time, and a failed input leaves the session
as it was."""

import json
import math
import time

import pytest
from fakes import FakePolicy, HashScorer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts_explorer.config import SearchConfig
from tts_explorer.scorers import SCORERS
from tts_explorer.search import RunLimits, new_tree, run_to_end
from tts_explorer.settings import Settings
from tts_explorer.ui import prm_lab
from tts_explorer.ui.compare_tab import compare_runs
from tts_explorer.ui.edit_panel import apply_edit, continue_from
from tts_explorer.ui.search_tab import import_tree, run_search
from tts_explorer.ui.session import Session

FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
JUNK = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=40),
    st.lists(st.integers(), max_size=3),
    st.just("\ud800"),
    st.just("<b>x</b>"),
)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**20), 10**20) | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


def one_line(status) -> bool:
    return isinstance(status, str) and "\n" not in status and len(status) < 2000


@pytest.fixture(scope="module")
def app_settings(tiny_model_dir):
    return Settings(
        models=(str(tiny_model_dir),), scorers=("arithmetic", "confidence"), limits=RunLimits(seconds=2.0, tokens=1500)
    )


def field(valid, junk=JUNK):
    return st.one_of(valid, junk)


# text an attacker writes: long runs of what parsers loop over, nested brackets, markup
ADVERSARIAL = st.one_of(
    st.builds(
        lambda c, n: c * n,
        st.sampled_from(["9", " ", "+", "=", "1=", "(", ")", "1 ", "$", "\\boxed{"]),
        st.integers(1, 4000),
    ),
    st.builds(lambda n: "1" * n + "=" + " " * (2 * n) + "a", st.integers(1, 1300)),
    st.builds(lambda n: "(" * n + "1" + ")" * n, st.integers(1, 2000)),
    st.text(max_size=200),
)


@pytest.fixture(scope="module")
def views():
    import gradio as gr

    from tts_explorer.ui.run_views import RunViews

    return RunViews(*(gr.Markdown() for _ in range(8)))


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_run_parameters(app_settings, views, data):
    model = app_settings.models[0]
    valid = [
        st.sampled_from(["Ann has 3 cats and 2 dogs. How many pets?", "What is <b>2</b> + 2?"]),
        st.sampled_from(["5", "", "9^{9^{9}}", "<img src=x onerror=alert(1)>"]),
        st.sampled_from(["greedy", "majority", "best_of_n", "beam", "dvts", "particles", "rebase", "deepconf"]),
        st.sampled_from([1, 2, 4, 8, 16, 64]),
        st.sampled_from([1, 2, 4]),
        st.floats(0, 2),
        st.integers(1, 12),
        st.sampled_from(["arithmetic", "confidence"]),
        st.sampled_from(["last", "min", "avg", "prod"]),
        st.sampled_from(["majority", "prm_max", "prm_vote"]),
        st.just(model),
        st.floats(0.01, 5),  # the newer strategies' parameters (run_views.TUNING)
        st.floats(0.01, 5),
        st.floats(0, 0.95),
        st.integers(1, 64),
    ]
    fields = [data.draw(strategy) for strategy in valid]
    hostile = st.one_of(JUNK, st.sampled_from(["   ", "x" * 4001, "oracle", "qwen-prm", "/etc/passwd", "max", 65, 0]))
    for index in data.draw(st.lists(st.integers(0, len(fields) - 1), max_size=2)):  # junk in a few fields
        fields[index] = data.draw(hostile)
    session = Session()
    started = time.monotonic()
    outputs = list(run_search(session, app_settings, views, fields))
    assert time.monotonic() - started < 20
    assert outputs and all(isinstance(o, dict) and set(o) <= set(views.all) for o in outputs)
    status = outputs[-1][views.status]
    assert one_line(status) and status.startswith(("Done", "Stopped", "⚠"))
    assert not session.running
    if status.startswith("⚠") and len(outputs) == 1:
        assert session.tree is None  # a refused run changes nothing


def base_tree_json() -> dict:
    config = SearchConfig(strategy="beam", n=4, beam_width=2, max_steps=3)
    tree = new_tree("How many?", config, "hash", reference="7")
    SCORERS["hash"] = HashScorer
    try:
        run_to_end(tree, FakePolicy(answer_prob=0.4, length_prob=0.1), config, "hash")
    finally:
        del SCORERS["hash"]
    return tree.to_dict()


BASE = base_tree_json()
NODE_KEYS = list(BASE["nodes"][0])


@st.composite
def mutated_tree(draw):
    data = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["node-field", "drop-field", "top-field", "parent", "meta", "add-node"]))
        node = draw(st.sampled_from(data["nodes"])) if data["nodes"] else {}
        if kind == "node-field":
            node[draw(st.sampled_from(NODE_KEYS))] = draw(JSON)
        elif kind == "drop-field":
            node.pop(draw(st.sampled_from(NODE_KEYS)), None)
        elif kind == "top-field":
            data[draw(st.sampled_from(["schema_version", "question", "reference", "meta", "nodes"]))] = draw(JSON)
            if not isinstance(data.get("nodes"), list):
                return data
        elif kind == "parent":
            node["parent"] = draw(st.integers(-1, len(data["nodes"]) + 1))
        elif kind == "meta" and isinstance(data.get("meta"), dict):
            data["meta"][draw(st.sampled_from(["config", "compute", "answer", "selected_leaf", "notes", "x"]))] = draw(
                JSON
            )
        elif kind == "add-node":
            data["nodes"].append(draw(st.dictionaries(st.sampled_from(NODE_KEYS), JSON, max_size=6)))
    return data


@FUZZ
@given(document=mutated_tree())
def test_import_format(tmp_path_factory, views, document):
    session = Session()
    previous = object()
    session.tree = previous
    path = tmp_path_factory.mktemp("fuzz") / "tree.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    started = time.monotonic()
    result = import_tree(session, views, str(path))
    status = result[views.status]
    assert time.monotonic() - started < 10
    assert isinstance(result, dict) and one_line(status)
    if status.startswith("⚠"):
        assert session.tree is previous  # nothing changed
    else:
        assert status.startswith("Imported") and session.tree is not previous and session.view is session.tree


GOOD_ROW = {
    "problem": "Sam has 4 boxes of 6 pens. How many pens?",
    "steps": ["4 * 6 = 24.", "The answer is 24."],
    "label": -1,
    "answer": "24",
}


@st.composite
def lab_file(draw):
    rows = []
    for _ in range(draw(st.integers(0, 6))):
        if draw(st.booleans()):
            row = dict(GOOD_ROW)
            row[draw(st.sampled_from(list(GOOD_ROW) + ["kind"]))] = draw(JSON)
            rows.append(json.dumps(row))
        else:
            rows.append(draw(st.one_of(st.text(max_size=30), JSON.map(json.dumps))))
    rows.append(json.dumps(GOOD_ROW) if draw(st.booleans()) else "")
    return "\n".join(rows)


@FUZZ
@given(content=lab_file(), index=field(st.integers(0, 5)), threshold=field(st.floats(0, 1)))
def test_prm_lab_format(tmp_path_factory, app_settings, content, index, threshold):
    state = prm_lab.LabState()
    path = tmp_path_factory.mktemp("lab") / "data.jsonl"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    started = time.monotonic()
    status, *_ = prm_lab.load_data(state, str(path))
    assert one_line(status)
    if status.startswith("⚠"):
        assert state.samples == []
    for result in (
        prm_lab.pick_sample(state, index, threshold),
        prm_lab.redraw(state, threshold),
        prm_lab.score_sample(state, app_settings, "arithmetic", threshold),
    ):
        assert isinstance(result, tuple)
    assert time.monotonic() - started < 10
    if state.scores is not None:
        assert all(isinstance(s, float) and math.isfinite(s) for s in state.scores)


def a_session_with_a_tree() -> Session:
    from tts_explorer.treefile import read_tree

    session = Session()
    session.show(read_tree(json.dumps(BASE)), live=False)
    return session


@FUZZ
@given(
    node=field(st.integers(0, 12)),
    text=st.one_of(ADVERSARIAL, JUNK),
    scorer=field(st.sampled_from(["arithmetic", "confidence"])),
    aggregation=field(st.sampled_from(["min", "last"])),
)
def test_edits(app_settings, node, text, scorer, aggregation):
    session = a_session_with_a_tree()
    before = len(session.tree)
    started = time.monotonic()
    result = apply_edit(session, app_settings, node, text, scorer, aggregation)
    assert time.monotonic() - started < 10 and isinstance(result, tuple) and one_line(result[1])
    assert len(session.tree) == before + (0 if result[1].startswith("⚠") else 1)  # one node, or nothing changed
    assert not session.running


@settings(FUZZ, max_examples=20)
@given(node=field(st.integers(0, 12)), text=st.one_of(ADVERSARIAL, JUNK), data=st.data())
def test_continuations(app_settings, views, node, text, data):
    session = a_session_with_a_tree()
    fields = [
        text,
        "7",
        data.draw(field(st.sampled_from(["greedy", "beam"]))),
        2,
        2,
        0.5,
        6,
        "arithmetic",
        "min",
        "majority",
        app_settings.models[0],
    ]
    started = time.monotonic()
    outputs = list(continue_from(session, app_settings, views, node, fields))
    assert time.monotonic() - started < 20 and outputs
    status = outputs[-1][views.status]
    assert one_line(status) and status.startswith(("Done", "Stopped", "⚠")) and not session.running


@settings(FUZZ, max_examples=20)
@given(
    question=st.one_of(ADVERSARIAL, JUNK),
    strategies=field(st.lists(st.sampled_from(["beam", "dvts", "x"]))),
    n=field(st.sampled_from([2, 4, 64])),
)
def test_comparisons(app_settings, question, strategies, n):
    session = Session()
    started = time.monotonic()
    outputs = list(
        compare_runs(
            session,
            app_settings,
            question,
            "4",
            strategies,
            ["arithmetic"],
            ["min"],
            n,
            2,
            0.5,
            4,
            "majority",
            app_settings.models[0],
        )
    )
    assert time.monotonic() - started < 20 and outputs
    assert one_line(outputs[-1][0]) and not session.running


@st.composite
def scaling_rows(draw):
    good = {"id": 1, "model": "m", "strategy": "beam", "n": 4, "correct": True, "compute": {"generated_tokens": 10}}
    rows = []
    for _ in range(draw(st.integers(1, 6))):
        row = json.loads(json.dumps(good))
        target = row["compute"] if draw(st.booleans()) else row
        target[draw(st.sampled_from(["generated_tokens", "total_flops", "n", "id", "model", "pass1", "bin"]))] = draw(
            st.one_of(JSON, ADVERSARIAL, st.just(10**4000), st.just(float("inf")))
        )
        rows.append(json.dumps(row, allow_nan=True))
    return "\n".join(rows + [json.dumps(good)])


@FUZZ
@given(content=scaling_rows())
def test_scaling_rows(tmp_path_factory, content):
    from tts_explorer.ui import scaling_tab

    path = tmp_path_factory.mktemp("scaling") / "rows.jsonl"
    path.write_text(content, encoding="utf-8", errors="surrogatepass")
    started = time.monotonic()
    result = scaling_tab.upload(str(path))
    assert time.monotonic() - started < 10 and one_line(result[0])
    for figure in result[1:4]:
        if isinstance(figure, str):
            json.loads(figure, parse_constant=lambda name: pytest.fail(f"{name} in a figure"))
