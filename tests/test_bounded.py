"""Bounded work for every action, not only search: the second hostile probe of the page, each
case a regression test through the page's API (gradio_client and raw HTTP) on a server with
tight caps, with /config latency and resident memory watched while it runs; and the pieces
underneath (linear text parsing, one budget per action, sessions released, disk bounded,
round trips, JSON the browser can read)."""

import json
import os
import random
import time
import urllib.request
from pathlib import Path

import pytest
from gradio_client import Client, handle_file
from test_app_hostile import Pinger, finish, write

from tts_explorer.answers import REQUEST_BUDGET_S, Comparer, extract_answer, normalize, plain_number
from tts_explorer.diagnose import disagreements
from tts_explorer.render import MAX_DRAWN, figure, to_json
from tts_explorer.scorers.arithmetic import check_equations
from tts_explorer.scorers.step_features import path_features
from tts_explorer.search import RunLimits, resident_mb
from tts_explorer.training.gold import gold_labels
from tts_explorer.tree import MAX_BYTES, MAX_NODES, SearchTree
from tts_explorer.treefile import read_tree
from tts_explorer.ui.panels import markdown_text
from tts_explorer.ui.session import Session, close_idle

ADVERSARIAL = [
    "1" * 666 + "=" + " " * 1332 + "a",
    "9" * 8000,
    " " * 8000,
    "1+" * 4000,
    "(" * 4000 + ")" * 4000,
    "1 = " * 2000,
    "=" * 8000,
    "1=1" + "+1" * 3990,
    "The answer is " + "1 " * 3990,
    "\\boxed{" * 2000,
    "$" * 8000,
    "1,000," * 1333,
    "50% of " * 1142,
    "<b>&amp;" * 1000,
]


@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_text_parsing_is_linear_on_adversarial_steps(text):
    started = time.perf_counter()
    check_equations(text)
    extract_answer(text)
    normalize(text)
    plain_number(text[:100])
    path_features("Tom has 3 apples. " * 200, [text, text[:4000]])
    gold_labels("Tom has 3 apples.", ["3 + 5 = 8"], "8", [text])
    markdown_text(text)
    assert time.perf_counter() - started < 5.0  # linear: milliseconds; cubic: minutes
    started = time.perf_counter()
    Comparer().group([text[:200], text[:100]])  # symbolic math: in a worker, each call cut at its limit
    assert time.perf_counter() - started < REQUEST_BUDGET_S + 2.0


def test_disagreements_match_the_pairwise_count_without_comparing_pairs():
    rng = random.Random(0)
    tree = SearchTree("q", reference="1")
    for _ in range(300):
        answer = rng.choice(["1", "2"])
        node = tree.add(0, text="x", stop_reason="answer", answer=answer, status="finished")
        node.agg_score = rng.choice([None, 0.1, 0.5, 0.9, rng.random()])
        node.correct = answer == "1"
    counted = {}  # node id -> the count its row states
    for row in disagreements(tree):
        message = row[-1]
        counted[row[0]] = int(
            message.split("right: ")[1].split()[0] if row[4] == "yes" else message.split("above ")[1].split()[0]
        )
    score = lambda n: float("-inf") if n.agg_score is None else n.agg_score  # noqa: E731
    pool = tree.candidates()
    for node in pool:
        if node.correct:
            expected = sum(1 for o in pool if o.correct is False and score(o) > score(node))
        else:
            expected = sum(1 for o in pool if o.correct and score(o) < score(node))
        assert counted.get(node.id, 0) == expected


def test_figures_are_json_the_browser_can_parse_and_large_trees_are_drawn_in_part():
    tree = SearchTree("q")
    for i in range(5000):
        tree.add(i // 2, text=f"step {i}", score=float("nan") if i % 7 == 0 else 0.5)
    tree.meta["compute"] = {"total_flops": float("inf")}
    fig = figure(tree)
    text = to_json(fig)

    def refuse(name):
        raise ValueError(name)

    json.loads(text, parse_constant=refuse)  # no NaN, no Infinity
    drawn = sum(len(t.get("customdata", [])) for t in fig["data"] if t["name"] != "problem")
    assert drawn <= MAX_DRAWN + 1 and "showing" in fig["layout"]["annotations"][0]["text"]
    focused = figure(tree, focus=3)
    ids = {i for t in focused["data"] for i in t.get("customdata", [])}
    assert 3 in ids and 7 in ids and 1 in ids and 2 not in ids  # the subtree of 3, and its path from the root


def test_a_stop_pressed_while_runs_wait_never_goes_stale():
    session = Session()
    before = time.monotonic()
    session.request_stop(queued=1)
    assert session.start_run(enqueued_at=before) is not None  # queued before the Stop: ends as it starts
    assert session.start_run(enqueued_at=time.monotonic()) is None  # queued after it (the other was dropped): runs
    session.end_run()


def test_an_idle_session_gives_back_its_tree_and_files():
    session = Session()
    session.show(SearchTree("q"), live=False)
    folder = session.folder()
    (folder / "tree.json").write_text("{}")
    session.last_used -= 100
    assert close_idle(50) >= 1
    assert session.tree is None and not folder.exists()


def test_a_tree_file_the_page_writes_it_reads_back():
    tree = SearchTree("q" * 100)
    while not tree.full(margin=300):
        tree.add(0, text="x" * 2000, score=0.5, answer="12", stop_reason="answer", status="finished")
    text = tree.to_json()
    assert len(text.encode()) <= MAX_BYTES and len(read_tree(text)) == len(tree)
    assert tree.json_bytes >= len(text.encode())  # the estimate the caps use is never below the truth


# --- through the page, on a server with tight caps ------------------------------------------------


@pytest.fixture(scope="module")
def tight_url(tiny_model_dir, tmp_path_factory):
    """The app with the tiny model and tight caps: 3 s and 4,000 tokens a run, sessions idle after 2 s."""
    from app_server import running_app

    from tts_explorer.settings import Settings

    settings = Settings(
        models=(str(tiny_model_dir),),
        scorers=("arithmetic", "confidence", "mc-rollout"),
        limits=RunLimits(seconds=3.0, tokens=4000, memory_mb=None),
        session_idle_s=2.0,
    )
    with running_app(settings) as url:
        yield url


def _big_tree(nodes: int, text: str = "4 * 6 = 24 pens.") -> SearchTree:
    tree = SearchTree("Sam has 4 boxes with 6 pens. How many pens?", reference="24", meta={"config": {"max_steps": 6}})
    parent = 0
    for i in range(nodes - 1):
        node = tree.add(parent if i % 5 else 0, text=text, score=0.5, agg_score=0.5, mean_logprob=-0.5)
        parent = node.id if node.depth < 6 else 0
    for leaf in [n for n in tree if n.id and not n.children][:50]:
        leaf.stop_reason, leaf.answer, leaf.status = "answer", "24", "finished"
    return tree


def test_rescoring_a_large_tree_stops_at_the_cap_and_keeps_the_server_answering(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    tree = _big_tree(6000, text="7 * 7 = 49 and " * 30)
    path = write(tmp_path, "large.json", tree)
    assert client.predict(handle_file(path), api_name="/import_tree")[1].startswith("Imported")
    with Pinger(tight_url) as ping:
        started = time.monotonic()
        table, summary, _ = client.predict("mc-rollout", "min", "prm_vote", api_name="/rescore")
        elapsed = time.monotonic() - started
    assert summary.startswith("⚠ re-scoring stopped at this server's limit of ") and elapsed < 30
    assert summary.endswith("nothing was changed")
    assert ping.worst < 2.0


def test_an_adversarial_edit_answers_at_once(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    path = write(tmp_path, "three.json", _big_tree(3))
    client.predict(handle_file(path), api_name="/import_tree")
    with Pinger(tight_url) as ping:
        started = time.monotonic()
        out = client.predict(1, "1" * 666 + "=" + " " * 1332 + "a", "arithmetic", "min", api_name="/edit_step")
        assert time.monotonic() - started < 10 and out[1].startswith("Node")
    assert ping.worst < 2.0


def test_continuing_a_deep_imported_path_is_refused_before_the_model_reads_it(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    tree = SearchTree("q", reference="1", meta={"config": {"max_steps": 12}})
    parent = 0
    for _ in range(10):
        parent = tree.add(parent, text="x" * 7900, score=0.5, agg_score=0.5).id
    path = write(tmp_path, "deep.json", tree)
    assert client.predict(handle_file(path), api_name="/import_tree")[1].startswith("Imported")
    before = resident_mb()
    job = client.submit(
        parent,
        "q",
        "1",
        "greedy",
        1,
        1,
        0.0,
        12,
        "arithmetic",
        "min",
        "majority",
        _model(tight_url),
        api_name="/continue_from",
    )
    status = finish(job)[-1][1]
    assert status.startswith("⚠") and "continue from an earlier step" in status and "\n" not in status
    assert resident_mb() - before < 500


def _model(url) -> str:
    config = json.loads(urllib.request.urlopen(url + "config", timeout=10).read())
    dropdowns = [c for c in config["components"] if c.get("props", {}).get("label") == "Policy model"]
    return dropdowns[0]["props"]["value"]


def test_compare_runs_under_one_budget_as_a_whole(tight_url):
    client = Client(tight_url, verbose=False)
    started = time.monotonic()
    job = client.submit(
        "Sam has 4 boxes with 6 pens in each box. How many pens?",
        "24",
        ["best_of_n", "beam", "dvts", "majority"],
        ["arithmetic"],
        ["min"],
        64,
        4,
        0.8,
        12,
        "prm_vote",
        _model(tight_url),
        api_name="/compare",
    )
    status = finish(job)[-1][0]
    elapsed = time.monotonic() - started
    assert status.startswith("Stopped at this server's limit") and elapsed < 20  # one cap for all four panels


def test_exports_are_written_once_per_tree_and_uploads_over_the_cap_are_refused(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    client.predict(handle_file(write(tmp_path, "t.json", _big_tree(200))), api_name="/import_tree")
    paths = {client.predict(api_name="/export_html") for _ in range(10)}
    assert len({Path(p).read_text() for p in paths}) == 1
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_BYTES + 1024))
    request = urllib.request.Request(
        tight_url + "gradio_api/upload",
        data=b'--x\r\nContent-Disposition: form-data; name="files"; filename="big.json"\r\n\r\n'
        + big.read_bytes()
        + b"\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 413


def test_scaling_rows_with_huge_numbers_are_one_line(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    row = {
        "id": 1,
        "model": "m",
        "strategy": "beam",
        "n": 4,
        "correct": True,
        "compute": {"generated_tokens": 10**4000, "total_flops": 1.0},
    }
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps(row) + "\n" + json.dumps({**row, "id": "a\u2028b", "compute": {"generated_tokens": 1}}))
    out = client.predict(handle_file(str(path)), api_name="/scaling_load")
    status = out[0] if isinstance(out, (list, tuple)) else out
    assert "skipped 1" in status and "Traceback" not in status and "\n" not in status.strip()


def test_sessions_that_leave_give_back_memory_and_disk(tight_url, tmp_path):
    """A soak: 50 sessions import, edit, export (10 of them continue too) and leave; then the
    server's memory and its temporary files come back to within 10% of where they started."""
    import tempfile

    roots = [
        Path(tempfile.gettempdir()),
        Path(os.environ.get("GRADIO_TEMP_DIR", Path(tempfile.gettempdir()) / "gradio")),
    ]

    def disk() -> int:
        files = [f for root in roots for pattern in ("tts-session-*/*", "*/*") for f in root.glob(pattern)]
        return sum(
            f.stat().st_size for f in set(files) if f.is_file() and ("tts-session-" in str(f) or "gradio" in str(f))
        )

    tree_file = write(tmp_path, "soak.json", _big_tree(400, text="6 * 4 = 24 pens. " * 20))
    Client(tight_url, verbose=False).predict(handle_file(tree_file), api_name="/import_tree")  # warm up
    time.sleep(4)
    rss, files = resident_mb(), disk()
    model = _model(tight_url)
    for i in range(50):
        client = Client(tight_url, verbose=False, download_files=False)  # the server's disk, not the client's
        client.predict(handle_file(tree_file), api_name="/import_tree")
        client.predict(1, "4 * 6 = 24 pens in all.", "arithmetic", "min", api_name="/edit_step")
        if i % 5 == 0:
            finish(
                client.submit(
                    1,
                    "q",
                    "24",
                    "greedy",
                    1,
                    1,
                    0.0,
                    6,
                    "arithmetic",
                    "min",
                    "majority",
                    model,
                    api_name="/continue_from",
                )
            )
        client.predict(api_name="/export_html")
        del client
    time.sleep(6)  # sessions idle for 2 s are dropped by the sweep
    assert disk() <= files * 1.1 + 64 * 1024
    assert resident_mb() <= rss * 1.1 + 50


def test_a_session_cannot_grow_a_tree_past_the_caps(tight_url, tmp_path):
    client = Client(tight_url, verbose=False)
    tree = SearchTree("q", reference="1", meta={"config": {"max_steps": 6}})
    while not tree.full(margin=100):  # as large as a tree file may be, nearly
        tree.add(0, text="", score=0.5, agg_score=0.5)
    path = write(tmp_path, "full.json", tree)
    assert os.path.getsize(path) <= MAX_BYTES
    assert client.predict(handle_file(path), api_name="/import_tree")[1].startswith("Imported")
    job = client.submit(
        1,
        "q",
        "1",
        "beam",
        64,
        4,
        0.8,
        6,
        "arithmetic",
        "min",
        "prm_vote",
        _model(tight_url),
        api_name="/continue_from",
    )
    status = finish(job)[-1][1]
    assert status.startswith("Stopped at the tree's cap"), status
    exported = json.loads(Path(finish(job)[-1][-1]).read_text()) if finish(job)[-1][-1] else None
    assert exported is None or len(exported["nodes"]) <= MAX_NODES
