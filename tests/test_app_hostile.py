"""The page as a hostile visitor meets it, through its API (gradio_client): no request
freezes it, grows it without bound or leaks another visitor's tree; bad input gets one line
and changes nothing; Stop works queued, running and idle."""

import json
import re
import threading
import time
import urllib.request

import pytest
from gradio_client import Client, handle_file

from tts_explorer.tree import SearchTree
from tts_explorer.treefile import read_tree
from tts_explorer.ui.run_views import BASIC_FIELDS, TUNING

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
ORDER = [*BASIC_FIELDS, *TUNING]
TUNED = dict(resample_temperature=1.0, frontier_temperature=0.2, confidence_quantile=0.1, warmup=4)


def submit(client, **overrides):
    fields = dict(
        question=QUESTION,
        reference="8",
        strategy="beam",
        n=4,
        m=2,
        temperature=0.8,
        max_steps=2,
        scorer="arithmetic",
        aggregation="min",
        selection="prm_vote",
        model="embedded",
        **TUNED,
    )
    fields.update(overrides)
    return client.submit(*[fields[k] for k in ORDER], api_name="/run")


def finish(job, timeout=240):
    deadline = time.time() + timeout
    while not job.done():
        assert time.time() < deadline, "the run did not finish in time"
        time.sleep(0.1)
    return job.outputs()


def config_latency(url) -> float:
    started = time.monotonic()
    urllib.request.urlopen(url + "config", timeout=10).read()
    return time.monotonic() - started


class Pinger:
    """GET /config every 0.1 s in the background; the worst latency seen."""

    def __init__(self, url):
        self.url, self.worst, self.stop = url, 0.0, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self.stop.is_set():
            self.worst = max(self.worst, config_latency(self.url))
            time.sleep(0.1)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def write(tmp_path, name, tree: SearchTree) -> str:
    path = tmp_path / name
    path.write_text(tree.to_json())
    return str(path)


def answers_tree(answers, reference="1") -> SearchTree:
    tree = SearchTree("What is 2 + 3?", reference=reference, meta={"config": {"max_steps": 2}})
    for answer in answers:
        tree.add(
            0,
            text=f"The answer is {answer}.",
            stop_reason="answer",
            answer=answer,
            status="finished",
            score=0.5,
            agg_score=0.5,
        )
    return tree


def test_a_pathological_reference_does_not_freeze_the_server(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    with Pinger(app_url) as ping:
        started = time.monotonic()
        outputs = finish(submit(client, reference="9^{9^{9}}", strategy="greedy", max_steps=1))
        elapsed = time.monotonic() - started
    status = outputs[-1][1]
    assert status.startswith("Done") and elapsed < 60
    assert re.search(r"answer: \d+ ✗ wrong", status) and "too costly to evaluate" in status  # compared, said so
    assert ping.worst < 2.0  # the server kept answering throughout


def test_pathological_and_many_symbolic_answers_import_in_bounded_time(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    small = write(tmp_path, "bomb.json", answers_tree(["1", "9^{9^{9}}"]))
    assert len(open(small).read()) < 2000
    many = write(tmp_path, "many.json", answers_tree([f"x^{{2}} + {i}y - \\sqrt{{{i}}}" for i in range(400)]))
    with Pinger(app_url) as ping:
        started = time.monotonic()
        status = client.predict(handle_file(small), api_name="/import_tree")[1]
        assert status.startswith("Imported") and "note:" in status
        status = client.predict(handle_file(many), api_name="/import_tree")[1]
        assert status.startswith("Imported") and time.monotonic() - started < 30
    assert ping.worst < 2.0


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: [setattr(t.nodes[1], "parent", 2), setattr(t.nodes[2], "parent", 1)], "cycle"),
        (lambda t: setattr(t.nodes[1], "text", 5), "text: Input should be a valid string"),
        (lambda t: setattr(t.nodes[1], "score", "abc"), "score: Input should be a valid number"),
        (lambda t: setattr(t.nodes[1], "depth", "abc"), "depth: Input should be a valid integer"),
        (lambda t: setattr(t, "meta", [1]), "meta: Input should be a valid dictionary"),
    ],
)
def test_a_bad_import_is_one_line_and_keeps_the_session(app_url, tmp_path, change, message):
    client = Client(app_url, verbose=False)
    good = answers_tree(["5", "6", "7"], reference="5")
    imported = client.predict(handle_file(write(tmp_path, "good.json", good)), api_name="/import_tree")
    before = json.loads(client.predict(1, api_name="/replay"))
    bad = answers_tree(["5", "6", "7"], reference="5")
    change(bad)
    path = tmp_path / "bad.json"
    path.write_text(
        json.dumps(
            {
                "schema_version": 2,
                "question": bad.question,
                "reference": bad.reference,
                "meta": bad.meta,
                "nodes": [vars(n) for n in bad.nodes.values()],
            }
        )
    )
    result = client.predict(handle_file(str(path)), api_name="/import_tree")
    assert result[1].startswith("⚠ cannot import this tree") and message in result[1] and "\n" not in result[1]
    assert json.loads(client.predict(1, api_name="/replay")) == before  # the session still holds the good tree
    assert imported[1].startswith("Imported")


def test_a_deeply_nested_upload_is_refused(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    path = tmp_path / "nested.json"
    path.write_text("[" * 200_000 + "]" * 200_000)
    result = client.predict(handle_file(str(path)), api_name="/import_tree")
    assert result[1] == "⚠ cannot import this tree: the JSON is nested too deeply"


def raw_run(url, **overrides) -> list[tuple[str, object]]:
    """POST /run as raw JSON (NaN, Infinity and lone surrogates included, which gradio_client
    refuses to send) and read the streamed events: [(event, data)]."""
    fields = dict(
        question=QUESTION,
        reference="8",
        strategy="beam",
        n=4,
        m=2,
        temperature=0.8,
        max_steps=2,
        scorer="arithmetic",
        aggregation="min",
        selection="prm_vote",
        model="embedded",
        **TUNED,
    )
    fields.update(overrides)
    body = json.dumps({"data": [fields[k] for k in ORDER]}).encode()  # allow_nan: NaN, Infinity literals
    request = urllib.request.Request(
        url + "gradio_api/call/run", data=body, headers={"Content-Type": "application/json"}
    )
    event_id = json.load(urllib.request.urlopen(request, timeout=30))["event_id"]
    stream = urllib.request.urlopen(url + f"gradio_api/call/run/{event_id}", timeout=120).read().decode()
    events = []
    for block in stream.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events.append((lines.get("event"), json.loads(lines["data"]) if lines.get("data") else None))
    return events


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("n", float("nan"), "N must be a whole number, got nan"),
        ("n", float("inf"), "Value inf is greater than maximum value 64"),  # the slider's own check
        ("n", 1.5, "N must be a whole number, got 1.5"),
        ("m", float("nan"), "beam width M must be a whole number"),
        ("max_steps", 2.5, "max steps must be a whole number"),
        ("temperature", float("nan"), "temperature must be a number"),
        ("temperature", float("-inf"), "Value -inf is less than minimum value 0"),
        ("question", "What is 2\ud800 + 2?", "the problem is not valid Unicode text"),
        ("question", "x" * 5000, "the cap is 4000"),
        ("reference", "9" * 500, "the reference answer is 500 characters long"),
        ("resample_temperature", float("nan"), "the resampling temperature must be a number"),
        ("warmup", 2.5, "the warm-up chains must be a whole number"),
    ],
    ids=[
        "n-nan",
        "n-inf",
        "n-1.5",
        "m-nan",
        "steps-2.5",
        "temperature-nan",
        "temperature-inf",
        "surrogate",
        "long-problem",
        "long-reference",
        "resample-nan",
        "warmup-2.5",
    ],
)
def test_bad_numbers_and_text_get_one_line(app_url, tiny_model_dir, field, value, message):
    events = raw_run(app_url, **{field: value, "model": str(tiny_model_dir)})
    kind, data = events[-1]
    line = data["error"] if kind == "error" else data[1]  # Gradio's own check, or the run's status line
    assert kind in ("complete", "error") and len(events) <= 2
    assert (kind == "error" or line.startswith("⚠")) and message in line and "\n" not in line


def test_out_of_range_sliders_are_refused_by_the_page(app_url, tiny_model_dir):
    client = Client(app_url, verbose=False)
    with pytest.raises(Exception, match="Value 99 is greater than maximum value 12"):
        submit(client, max_steps=99, model=str(tiny_model_dir)).result(timeout=60)


def test_stop_when_idle_says_so(app_url):
    assert Client(app_url, verbose=False).predict(api_name="/stop") == "Nothing is running."


def test_stop_cancels_a_queued_run_and_a_stopped_run_has_no_wrong_answer(app_url, tiny_model_dir):
    first, second = Client(app_url, verbose=False), Client(app_url, verbose=False)
    running = submit(first, n=16, m=4, max_steps=12, question="Ann has 12 cats and 7 dogs. How many pets?")
    deadline = time.time() + 240
    while not any(o and o[1].startswith("Running") for o in running.outputs()):
        assert time.time() < deadline and not running.done()
        time.sleep(0.1)
    queued = submit(second, model=str(tiny_model_dir))
    while queued.status().code.name != "IN_QUEUE":
        assert time.time() < deadline
        time.sleep(0.05)
    assert second.predict(api_name="/stop") == "Cancelled 1 run(s) waiting in the queue."
    assert first.predict(api_name="/stop") == "Stopping…"
    stopped = finish(running, timeout=60)[-1][1]
    assert stopped.startswith("Stopped on request")
    assert "wrong" not in stopped or "answer:" in stopped  # no answer reads "no answer", never "wrong"
    outputs = finish(queued, timeout=60)
    assert len(outputs) == 1 and outputs[0][1].startswith("⚠ Stopped before it started")
    assert second.predict(api_name="/stop") == "Nothing is running."  # nothing left behind
    normal = finish(submit(second, model=str(tiny_model_dir), max_steps=1))  # the next run is not cancelled
    assert normal[-1][1].startswith("Done")


def test_eight_concurrent_sessions_complete_in_queue_and_see_only_their_own_tree(app_url, tiny_model_dir):
    clients = [Client(app_url, verbose=False) for _ in range(8)]
    questions = [f"Session {i}: Ann has {i + 2} cats and 3 dogs. How many pets?" for i in range(8)]
    jobs = [submit(c, question=q, n=4, max_steps=3, model=str(tiny_model_dir)) for c, q in zip(clients, questions)]
    ranks = set()
    deadline = time.time() + 300
    while not all(j.done() for j in jobs):
        assert time.time() < deadline
        for job in jobs:
            status = job.status()
            if status.rank is not None:
                ranks.add(status.rank)
        time.sleep(0.05)
    assert max(ranks, default=0) >= 1  # runs waited in the queue, one search at a time
    for client, job, question in zip(clients, jobs, questions):
        final = job.outputs()[-1]
        assert final[1].startswith("Done")
        assert read_tree(open(final[-1]).read()).question == question
        shown = json.loads(client.predict(1, api_name="/replay"))  # this session's own tree is replayed
        root = next(t for t in shown["data"] if t["name"] == "problem")
        assert question in root["hovertext"][0]


def test_rescore_summary_escapes_answers(app_url, tmp_path):
    client = Client(app_url, verbose=False)
    evil = answers_tree(["<img src=x onerror=alert(1)>", "5"], reference="5")
    client.predict(handle_file(write(tmp_path, "evil.json", evil)), api_name="/import_tree")
    rows, summary, _ = client.predict("arithmetic", "min", "majority", api_name="/rescore")
    assert "<img" not in summary and "&lt;img" in summary


def test_only_runnable_scorers_are_offered(monkeypatch):
    from tts_explorer.errors import UserError
    from tts_explorer.scorers import SCORERS
    from tts_explorer.settings import Settings

    monkeypatch.delenv("TTS_SCORERS", raising=False)
    offered = Settings.from_env().scorers
    assert offered and all(not SCORERS[s].needs_model for s in offered)
    monkeypatch.setenv("TTS_SCORERS", "arithmetic,qwen-prm")
    with pytest.raises(UserError, match="needs a model: write qwen-prm:/path/to/model"):
        Settings.from_env()
