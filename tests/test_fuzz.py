"""Fuzzing the page's handlers in-process (Hypothesis): the Run parameters, the tree import
format and the PRM lab's file format. Whatever comes in: no raw exception, one status line,
bounded time, and a failed input leaves the session as it was."""

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
from tts_explorer.ui import prm_lab
from tts_explorer.ui.search_tab import import_tree, run_search
from tts_explorer.ui.session import Session
from tts_explorer.ui.settings import Settings

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


@settings(FUZZ, max_examples=60)
@given(data=st.data())
def test_run_parameters(app_settings, data):
    model = app_settings.models[0]
    valid = [
        st.sampled_from(["Ann has 3 cats and 2 dogs. How many pets?", "What is <b>2</b> + 2?"]),
        st.sampled_from(["5", "", "9^{9^{9}}", "<img src=x onerror=alert(1)>"]),
        st.sampled_from(["greedy", "majority", "best_of_n", "beam", "dvts"]),
        st.sampled_from([1, 2, 4, 8, 16, 64]),
        st.sampled_from([1, 2, 4]),
        st.floats(0, 2),
        st.integers(1, 12),
        st.sampled_from(["arithmetic", "confidence"]),
        st.sampled_from(["last", "min", "avg", "prod"]),
        st.sampled_from(["majority", "prm_max", "prm_vote"]),
        st.just(model),
    ]
    fields = [data.draw(strategy) for strategy in valid]
    hostile = st.one_of(JUNK, st.sampled_from(["   ", "x" * 4001, "oracle", "qwen-prm", "/etc/passwd", "max", 65, 0]))
    for index in data.draw(st.lists(st.integers(0, len(fields) - 1), max_size=2)):  # junk in a few fields
        fields[index] = data.draw(hostile)
    session = Session()
    started = time.monotonic()
    outputs = list(run_search(session, app_settings, *fields))
    assert time.monotonic() - started < 20
    assert outputs and all(isinstance(o, tuple) and len(o) == 8 for o in outputs)
    status = outputs[-1][1]
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
def test_import_format(tmp_path_factory, document):
    session = Session()
    previous = object()
    session.tree = previous
    path = tmp_path_factory.mktemp("fuzz") / "tree.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    started = time.monotonic()
    result = import_tree(session, str(path))
    assert time.monotonic() - started < 10
    assert isinstance(result, tuple) and len(result) == 8 and one_line(result[1])
    if result[1].startswith("⚠"):
        assert session.tree is previous  # nothing changed
    else:
        assert result[1].startswith("Imported") and session.tree is not previous and session.view is session.tree


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
