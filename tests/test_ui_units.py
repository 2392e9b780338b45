"""The page's pure pieces: panels, operator settings, the PRM lab's chain view."""

import time

import pytest

from tts_explorer.errors import UserError
from tts_explorer.processbench import Sample
from tts_explorer.scorers import DEFAULT_SCORER
from tts_explorer.selection import apply_selection
from tts_explorer.settings import Settings
from tts_explorer.tree import SearchTree
from tts_explorer.ui.panels import candidate_rows, compute_markdown, path_html, status_line
from tts_explorer.ui.prm_lab import LabState, lab_view, sample_tree


def finished_tree() -> SearchTree:
    tree = SearchTree("Is <b>this</b> bold?", reference="5", meta={"config": {"max_steps": 4}})
    a = tree.add(0, text="<img src=x onerror=alert(1)> 2 + 3 = 5", score=0.9, agg_score=0.9)
    tree.add(
        a.id, text="The answer is 5.", score=0.8, agg_score=0.8, stop_reason="answer", answer="5", status="finished"
    )
    tree.add(0, text="The answer is 6.", score=0.3, agg_score=0.3, stop_reason="answer", answer="6", status="finished")
    apply_selection(tree, "prm_vote")
    return tree


def test_path_panel_escapes_everything():
    panel = path_html(finished_tree(), 2)
    assert "<img" not in panel and "&lt;img src=x onerror=alert(1)&gt;" in panel
    assert "Is &lt;b&gt;this&lt;/b&gt; bold?" in panel and "Answer: <b>5</b> (right)" in panel
    assert "Click a node" in path_html(None, None)


def test_candidates_status_and_compute():
    tree = finished_tree()
    rows = candidate_rows(tree)
    assert [r[0] for r in rows] == [2, 3] and rows[0][-1] == "◀ chosen" and rows[0][5] == "yes"
    assert "answer: 5 ✓ right" in status_line(tree, "Done")
    assert compute_markdown(None) == "No run yet."


def test_operator_settings(monkeypatch):
    monkeypatch.setenv("TTS_SCORERS", "arithmetic,qwen-prm:/models/prm")
    monkeypatch.setenv("TTS_TRUST_REMOTE_CODE", "1")
    settings = Settings.from_env()
    assert settings.scorers == ("arithmetic", "qwen-prm:/models/prm")
    qwen = settings.scorer("qwen-prm:/models/prm")
    assert (qwen.name, dict(qwen.options)) == ("qwen-prm", {"model": "/models/prm", "trust_remote_code": True})
    assert (settings.scorer("arithmetic").name, settings.scorer("arithmetic").options) == ("arithmetic", ())
    monkeypatch.setenv("TTS_SCORERS", "arithmetic,oracle")
    with pytest.raises(UserError, match="unknown scorer 'oracle'"):
        Settings.from_env()


def test_the_default_scorer_is_one_the_offered_policies_can_use(monkeypatch):
    monkeypatch.delenv("TTS_SCORERS", raising=False)
    monkeypatch.delenv("TTS_MODELS", raising=False)
    offered = Settings.from_env().scorers
    assert offered[0] == DEFAULT_SCORER and "smollm-probe-arith" in offered and "arithmetic" in offered
    monkeypatch.setenv("TTS_MODELS", "/models/SmolLM2-1.7B-Instruct")  # another tokenizer: no shipped probe
    offered = Settings.from_env().scorers
    assert offered[0] == "arithmetic" and not any(s.startswith("smollm-probe") for s in offered)


def test_lab_marks_gold_and_flagged_steps():
    state = LabState()
    state.samples = [Sample("p <script>", ["a", "b", "c"], 1, "3", "wrong_number")]
    state.scores = [0.9, 0.6, 0.2]
    fig, panel = lab_view(state, 0.7)
    names = {t["name"]: t for t in __import__("json").loads(fig)["data"]}
    assert names["gold first error"]["customdata"] == [2]
    assert names["first step below 0.70"]["customdata"] == [2]
    assert "right" in panel and "&lt;script&gt;" in panel
    assert [n.score for n in sample_tree(state.samples[0], None) if n.id] == [None, None, None]


def test_clicks_and_replay_read_a_snapshot_not_the_growing_tree():
    from tts_explorer.ui.session import Session

    session = Session()
    tree = finished_tree()
    session.show(tree, live=True)
    tree.add(0, text="a step added after the redraw")
    assert len(session.view) == len(tree) - 1 and session.view.nodes.keys() < tree.nodes.keys()
    session.show(tree, live=False)
    assert session.view is tree


def test_stop_in_every_state():
    from tts_explorer.ui.session import Session

    session = Session()
    assert session.request_stop(queued=0) == "Nothing is running." and not session.should_stop()
    queued_before = time.monotonic()
    assert session.request_stop(queued=2) == "Cancelled 2 run(s) waiting in the queue."
    for _ in range(2):  # both runs queued before the Stop end as they start
        assert session.start_run(enqueued_at=queued_before).startswith("Stopped before it started")
    assert session.start_run(enqueued_at=time.monotonic()) is None and not session.should_stop()  # a later run runs
    assert "going on" in session.start_run()  # one action at a time per session
    assert session.request_stop(queued=0) == "Stopping…" and session.should_stop()
    session.end_run()
    assert not session.should_stop() and session.request_stop(queued=0) == "Nothing is running."
    assert "no answer" in status_line(SearchTree("q", meta={"answer": None}), "Stopped on request")
