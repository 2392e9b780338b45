"""`tts-explorer serve` on loopback, through the `openai` Python client: the model name chooses
policy, strategy and budget; the reply is the chosen solution with the compute in `usage`
and the tree in an extra field; streaming; OpenAI-style errors; the page's checks and caps."""

import http.client
import json
import threading
import time
import urllib.request

import pytest
import uvicorn

from tts_explorer.loopback import free_port, wait_http
from tts_explorer.search import RunLimits
from tts_explorer.serve import create_app
from tts_explorer.settings import Settings
from tts_explorer.treefile import read_tree

openai = pytest.importorskip("openai")
QUESTION = "Sam has 4 boxes with 6 pens in each box. He gives away 5 pens. How many pens are left?"


def _served(settings: Settings):
    port = free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port, log_level="warning")
    running = uvicorn.Server(config)
    thread = threading.Thread(target=running.run, daemon=True)
    thread.start()
    wait_http(f"http://127.0.0.1:{port}/v1/models", timeout=60)
    yield f"http://127.0.0.1:{port}/v1"
    running.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def server(tiny_model_dir, newline_model_dir):
    settings = Settings(
        models=(str(tiny_model_dir), str(newline_model_dir)),
        scorers=("arithmetic", "confidence"),
        limits=RunLimits(seconds=20, tokens=20_000),
    )
    for url in _served(settings):
        yield url, str(tiny_model_dir)


@pytest.fixture(scope="module")
def one_slot(newline_model_dir):
    """One search at a time, each allowed a minute: a search nobody reads would hold the slot."""
    settings = Settings(
        models=(str(newline_model_dir),),
        scorers=("confidence",),
        limits=RunLimits(seconds=LONG_RUN_S, tokens=10**8),
        search_slots=1,
    )
    for url in _served(settings):
        yield url, str(newline_model_dir)


LONG_RUN_S = 60


def test_models_lists_each_policy_and_strategy(server):
    url, model = server
    client = openai.OpenAI(base_url=url, api_key="none")
    ids = [m.id for m in client.models.list().data]
    assert f"{model}/beam/8" in ids and f"{model}/particles/8" in ids and f"{model}/greedy/8" in ids


def test_a_completion_is_a_search(server):
    url, model = server
    client = openai.OpenAI(base_url=url, api_key="none")
    reply = client.chat.completions.create(
        model=f"{model}/beam/4/arithmetic",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"tts": {"beam_width": 2, "max_steps": 3, "reference": "19"}},
    )
    extra = reply.model_extra["tts"]
    tree = read_tree(json.dumps(extra["tree"]))
    assert tree.meta["config"]["strategy"] == "beam" and tree.meta["config"]["n"] == 4
    assert tree.meta["config"]["beam_width"] == 2 and tree.meta["scorer"] == "arithmetic"
    expected = "\n\n".join(n.text for n in tree.chosen_nodes())
    assert reply.choices[0].message.content == expected and reply.choices[0].finish_reason == "stop"
    compute = extra["compute"]
    assert reply.usage.prompt_tokens == compute["prefill_tokens"]
    assert reply.usage.completion_tokens == compute["generated_tokens"] + compute["scorer_tokens"] > 0


@pytest.mark.parametrize("strategy", ["best_of_n", "beam", "deepconf"])
def test_streaming_gives_the_chosen_solution_step_by_step(server, strategy):
    """Settled steps stream during the search (beam search with one kept beam settles each
    iteration's step), the rest at the end: together exactly the chosen solution."""
    url, model = server
    client = openai.OpenAI(base_url=url, api_key="none")
    stream = client.chat.completions.create(
        model=f"{model}/{strategy}/4",
        messages=[{"role": "user", "content": QUESTION}],
        stream=True,
        extra_body={"tts": {"max_steps": 3, "beam_width": 4}},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    tree = read_tree(json.dumps(last.model_extra["tts"]["tree"]))
    assert text == "\n\n".join(n.text for n in tree.chosen_nodes())
    assert last.usage.total_tokens > 0


def test_a_beam_search_streams_its_settled_steps_before_it_ends(server, newline_model_dir):
    """Raw SSE: with one kept beam (N = M), each iteration's kept step is streamed right after
    that iteration's keep-alive comment, before the search goes on."""
    url, _ = server
    body = {
        "model": f"{newline_model_dir}/beam/4/confidence",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": True,
        "tts": {"beam_width": 4, "max_steps": 4, "step_tokens": 64, "temperature": 1.0},
    }
    post = urllib.request.Request(
        f"{url}/chat/completions", json.dumps(body).encode(), {"Content-Type": "application/json"}
    )
    events = [line for line in urllib.request.urlopen(post, timeout=120).read().decode().split("\n\n") if line]
    comments = [i for i, e in enumerate(events) if e.startswith(": iteration")]
    contents = [i for i, e in enumerate(events) if '"content": "' in e and '"content": ""' not in e]
    assert len(comments) >= 2 and contents and contents[0] < comments[-1]  # a step came out mid-search
    last = json.loads(events[-2].removeprefix("data: "))
    tree = read_tree(json.dumps(last["tts"]["tree"]))
    text = "".join(json.loads(events[i].removeprefix("data: "))["choices"][0]["delta"]["content"] for i in contents)
    # this model never states an answer: the reply is the steps the search settled on
    assert not tree.chosen_nodes() and text == "\n\n".join(n.text for n in tree.settled_nodes())
    again = urllib.request.Request(post.full_url, json.dumps({**body, "stream": False}).encode(), post.headers)
    reply = json.loads(urllib.request.urlopen(again, timeout=120).read())
    assert reply["choices"][0]["message"]["content"] == text  # the same search without streaming


@pytest.mark.parametrize(
    "model, body, status, message",
    [
        ("nope/beam/4", {}, 404, "is not offered here"),
        ("{m}/astar/4", {}, 400, "unknown strategy"),
        ("{m}/beam/4", {"tts": {"n": 100000}}, 400, "n must be between"),
        ("{m}/beam/4", {"tts": {"temperature": "nan"}}, 400, "temperature"),
        ("{m}/beam/4", {"tts": {"trust_remote_code": True}}, 400, "tts may set"),
        ("{m}/beam/4/oracle", {}, 400, "is not offered here"),
        ("{m}/beam/4", {"messages": [{"role": "user", "content": "7" * 3990}]}, 400, "does not fit"),
        ("{m}/beam/4", {"messages": [{"role": "user", "content": "x" * 5000}]}, 400, "characters long"),
    ],
)
def test_bad_requests_are_openai_style_errors(server, model, body, status, message):
    url, tiny = server
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0)
    messages = body.pop("messages", [{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.APIStatusError) as caught:
        client.chat.completions.create(model=model.format(m=tiny), messages=messages, extra_body=body)
    assert caught.value.status_code == status
    error = caught.value.body
    assert message in error["message"] and "\n" not in error["message"]


def test_raw_hostile_bodies_get_one_line(server):
    url, _ = server
    for raw in (b"[" * 100_000, b'{"model": NaN}', b"x" * 70_000, b"\xff\xfe"):
        request = urllib.request.Request(
            url + "/chat/completions", data=raw, headers={"Content-Type": "application/json"}
        )
        started = time.monotonic()
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=30)
        assert caught.value.code in (400, 413) and time.monotonic() - started < 5
        assert "message" in json.loads(caught.value.read())["error"]


@pytest.mark.parametrize("stream", [True, False])
def test_a_client_that_leaves_stops_its_search(one_slot, stream):
    """A long search whose client closes the connection gives its only slot back at once: the next
    request is answered long before the first search's run cap (a minute) would have ended it."""
    url, model = one_slot
    host, port = url.removeprefix("http://").removesuffix("/v1").split(":")
    body = {
        "model": f"{model}/beam/256/confidence",
        "messages": [{"role": "user", "content": QUESTION}],
        "stream": stream,
        "tts": {"beam_width": 4, "max_steps": 40, "step_tokens": 128},
    }
    connection = http.client.HTTPConnection(host, int(port), timeout=30)
    connection.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    if stream:
        assert connection.getresponse().readline().startswith(b"data: ")  # the search is under way
    else:
        time.sleep(2)
    connection.close()
    client = openai.OpenAI(base_url=url, api_key="none", max_retries=0, timeout=LONG_RUN_S)
    started = time.monotonic()
    reply = client.chat.completions.create(
        model=f"{model}/best_of_n/1",
        messages=[{"role": "user", "content": QUESTION}],
        extra_body={"tts": {"max_steps": 1}},
    )
    assert reply.choices[0].finish_reason == "stop"
    assert time.monotonic() - started < LONG_RUN_S / 3
