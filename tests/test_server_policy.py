"""The policy on a real OpenAI-compatible server: llama.cpp's llama-server on the embedded GGUF,
started on a free loopback port (built from the llama-cpp-python sdist by the install step)."""

import socket
import threading
import time

import pytest

from tts_explorer.config import SearchConfig
from tts_explorer.data import Problem
from tts_explorer.errors import UserError
from tts_explorer.events import Done, NodesAdded
from tts_explorer.loopback import LlamaServer
from tts_explorer.policy import embedded
from tts_explorer.policy.loading import load_policy
from tts_explorer.policy.server import ServerPolicy
from tts_explorer.processbench import Sample, score_samples
from tts_explorer.scaling.grid import Grid, read_rows, run_grid
from tts_explorer.scorers import ScorerEnv, make_scorer
from tts_explorer.search import new_tree, run_to_end, search
from tts_explorer.selection import apply_selection

pytestmark = pytest.mark.slow
QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"


@pytest.fixture(scope="module")
def server():
    with LlamaServer(str(embedded.embedded_gguf()), slots=16) as running:
        yield running


@pytest.fixture(scope="module")
def policy(server):
    return ServerPolicy(server.url + "?tokenizer=embedded")


def small(strategy: str, n: int = 4) -> SearchConfig:
    return SearchConfig(strategy=strategy, n=n, beam_width=2, max_steps=3, step_tokens=32, final_tokens=48, seed=1)


def test_the_server_is_found_and_renders_prompts_like_the_engine(policy, server):
    assert policy.n_params > 100_000_000  # llama-server reports the model's size
    local = load_policy()
    messages = [{"role": "user", "content": QUESTION}]
    assert policy.chat_prompt(messages) == local.chat_prompt(messages)  # the same template, applied locally
    assert load_policy(server.url + "?tokenizer=embedded").name == policy.name  # a URL is a policy source


def test_n_choices_stop_strings_eos_and_usage(policy):
    prompt = policy.chat_prompt([{"role": "user", "content": QUESTION}])
    meter = policy.meter.__class__()
    groups = policy.generate(
        [prompt, prompt + "Tom has 3 + 5 = 8 apples.\n\n"], [4, 2], max_tokens=40, temperature=0.8, meter=meter
    )
    assert [len(g) for g in groups] == [4, 2]  # every n choice returned
    for completion in (c for g in groups for c in g):
        assert completion.n_tokens > 0 and completion.logprob_sum < 0
        assert completion.stop_reason in ("stop", "eos", "length")
        if completion.stop_reason == "stop":
            assert completion.text.endswith("\n\n")  # the separator is kept
        else:
            assert "\n\n" not in completion.text
    ended = policy.generate(
        [prompt + "Tom has 3 + 5 = 8 apples.\n\nThe answer is 8."],
        [1],
        max_tokens=40,
        temperature=0.0,
        stop="\n\n",
        meter=meter,
    )[0][0]
    assert ended.stop_reason in ("eos", "stop")
    assert meter.generated_tokens > 0 and meter.prefill_tokens > 0
    many = policy.generate([prompt], [20], max_tokens=4, temperature=0.8, meter=meter)[0]
    assert len(many) == 20  # llama-server refuses n > 16: asked in requests of at most 16


@pytest.mark.parametrize("strategy", ["greedy", "majority", "best_of_n", "beam", "dvts", "auto"])
def test_every_strategy_runs_through_the_server(policy, strategy):
    config = small(strategy, n=4)
    tree = new_tree(QUESTION, config, "arithmetic", "8", policy.name)
    done = run_to_end(tree, policy, config, "arithmetic")
    assert isinstance(done, Done) and not done.stopped and len(tree) > 1
    steps = [n for n in tree if n.id]
    assert all(n.n_tokens > 0 for n in steps)
    assert all(n.score is not None for n in steps) or strategy in ("greedy", "majority")
    assert tree.meta["compute"]["generated_tokens"] > 0 and tree.meta["compute"]["policy_flops"] > 0


def test_a_named_server_policy_resumes_its_results_on_another_port(server, tmp_path):
    out = tmp_path / "served.jsonl"
    grid = Grid(["greedy"], [1], ["-"], SearchConfig(max_steps=2, step_tokens=24, final_tokens=24, seed=0))
    problems = [Problem(id="1", question=QUESTION, answer="8")]
    url = "?tokenizer=embedded&name=SmolLM2+%40+llama-server"
    first = run_grid(["a"], problems, grid, str(out), lambda m: ServerPolicy(server.url + url), progress=False)
    assert [r["model"] for r in first] == ["SmolLM2 @ llama-server"]
    with LlamaServer(str(embedded.embedded_gguf()), slots=1) as other:  # another port, the same name
        assert other.url != server.url
        again = run_grid(["a"], problems, grid, str(out), lambda m: ServerPolicy(other.url + url), progress=False)
    assert again == first and len(read_rows(out)) == 1  # nothing made twice


def test_the_chat_endpoint_when_no_tokenizer_is_on_disk(server):
    remote = ServerPolicy(server.url)
    assert remote.tokenizer is None
    config = small("beam")
    tree = new_tree(QUESTION, config, "arithmetic", "8", remote.name)
    run_to_end(tree, remote, config, "arithmetic")
    assert len(tree) > 3 and all(n.n_tokens > 0 for n in tree if n.id)


def test_scorers_that_need_the_policy(policy):
    config = small("best_of_n")
    tree = new_tree(QUESTION, config, "judge", "8", policy.name)
    run_to_end(tree, policy, config, "judge")  # the judge reads top log-probs
    scores = [n.score for n in tree if n.id]
    assert all(0.0 <= s <= 1.0 for s in scores) and len(set(scores)) > 1
    sample = Sample(QUESTION, ["Tom has 3 + 5 = 8 apples.", "The answer is 8."], -1, "8")
    confidence = make_scorer("confidence", ScorerEnv(policy=policy))
    template_prompt = lambda q: policy.chat_prompt([{"role": "user", "content": q}])  # noqa: E731
    try:
        values = score_samples(confidence, [sample], template_prompt)[0]
        assert len(values) == 2 and all(0 < v <= 1 for v in values)
    except UserError as exc:  # a server without prompt log-probs says which feature is missing
        assert "prompt log-probs" in str(exc) and "\n" not in str(exc)


def test_stop_closes_the_requests_and_keeps_the_partial_tree(policy):
    config = SearchConfig(strategy="beam", n=16, beam_width=4, max_steps=8, step_tokens=64, seed=2)
    tree = new_tree(QUESTION, config, "arithmetic", "8", policy.name)
    seen = []
    stop = threading.Event()
    started = None
    for event in search(tree, policy, config, "arithmetic", should_stop=stop.is_set):
        seen.append(event)
        if isinstance(event, NodesAdded) and started is None:
            started = time.monotonic()
            stop.set()
    assert isinstance(seen[-1], Done) and seen[-1].stopped == "on request"
    assert time.monotonic() - started < 5 and len(tree) > 1


def test_a_server_that_dies_mid_search_is_one_clear_error(tmp_path):
    with LlamaServer(str(embedded.embedded_gguf()), slots=4, context=4096) as doomed:
        remote = ServerPolicy(doomed.url + "?tokenizer=embedded")
        config = SearchConfig(strategy="best_of_n", n=4, max_steps=8, step_tokens=48, seed=3)
        tree = new_tree(QUESTION, config, "arithmetic", "8", remote.name)
        with pytest.raises(UserError, match="stopped answering|not reachable") as caught:
            for event in search(tree, remote, config, "arithmetic"):
                if isinstance(event, NodesAdded):
                    doomed.process.kill()
        assert "\n" not in str(caught.value) and len(tree) > 1  # the partial tree is kept
        apply_selection(tree, "majority")


@pytest.mark.parametrize(
    "setting",
    [
        "max_n=abc",
        "max_n=0",
        "max_n=1.5",
        "max_n=nan",
        "timeout=abc",
        "timeout=nan",
        "timeout=-1",
        "timeout=inf",
        "params=inf",
        "params=-5",
        "params=<b>x</b>",
        "name=two%0Alines",
        "name=" + "x" * 201,
    ],
)
def test_bad_settings_in_the_server_url_are_one_clear_line(setting):
    name = setting.split("=")[0]
    with pytest.raises(UserError, match=f"the server URL's {name} must be"):  # refused before any request
        ServerPolicy(f"http://127.0.0.1:9/v1?{setting}")


def test_an_unreachable_or_silent_server_is_one_clear_error():
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    with pytest.raises(UserError, match="not reachable"):
        ServerPolicy(f"http://127.0.0.1:{port}/v1")
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections, never answers
    try:
        started = time.monotonic()
        with pytest.raises(UserError, match="did not answer within 1 s"):
            ServerPolicy(f"http://127.0.0.1:{silent.getsockname()[1]}/v1?timeout=1")
        assert time.monotonic() - started < 5
    finally:
        silent.close()


def test_the_benchmark_serves_each_budget_with_one_slot_per_candidate():
    """`bench --server llama-server` compares the engine at N with llama-server run with N
    parallel slots (-np N), one server at a time."""
    import json
    import urllib.request

    from tts_explorer.benchmark import ServedPerBudget

    def slots(policy) -> int:
        base = policy.base.removesuffix("/v1")
        with urllib.request.urlopen(base + "/props", timeout=10) as reply:
            return json.load(reply)["total_slots"]

    served = ServedPerBudget(embedded.embedded_gguf())
    try:
        two = served.for_budget(2)
        assert served.for_budget(2) is two and slots(two) == 2
        first = served.running
        four = served.for_budget(4)
        assert slots(four) == 4 and first.process.poll() is not None  # the 2-slot server was stopped
        path = four.generate([QUESTION], [4], max_tokens=8, temperature=0.7)
        assert len(path[0]) == 4
    finally:
        served.close()
    assert served.running is None
