"""Many visitors at once: the page with llama.cpp's llama-server behind it, or on the local
engine (--backend engine, whose searches share one decode loop); --no-page runs the same
searches on the engine in this process, on threads, without the page.

Starts llama-server on the embedded GGUF (16 parallel slots) when asked, starts the app with
TTS_SEARCH_SLOTS searches at once, then runs the same searches (one per client, each its
own problem) twice: one client at a time, and all clients at once (gradio_client). Prints
tokens per second both ways and their ratio, each client's wait for its first drawn nodes
(the first redraw of its running search), and checks that every run completed and that
every client got its own problem's tree back.

    python bench/server_load.py [--clients 8] [--n 8] [--slots 8] [--backend llama-server|engine] [--no-page]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from gradio_client import Client

from tts_explorer.data import read_problems
from tts_explorer.loopback import LlamaServer, free_port, wait_http
from tts_explorer.policy import embedded
from tts_explorer.treefile import read_tree
from tts_explorer.ui.run_views import BASIC_FIELDS

ROOT = Path(__file__).resolve().parent.parent


# every client's search, through the page and in this process alike
SEARCH = dict(
    strategy="beam", m=2, temperature=0.8, max_steps=6, scorer="arithmetic", aggregation="min", selection="prm_vote"
)


def run(client: Client, problem, model: str, n: int) -> tuple[int, str]:
    fields = dict(SEARCH, question=problem.question, reference=problem.answer, n=n, model=model)
    started = time.perf_counter()
    job = client.submit(*[fields[k] for k in BASIC_FIELDS], api_name="/run")
    first = None
    while not job.done():
        if first is None and any(str(out[1]).startswith("Running") for out in job.outputs()):
            first = time.perf_counter() - started
        time.sleep(0.05)
    final = job.outputs()[-1]
    tree = read_tree(open(final[-1]).read())
    assert final[1].startswith("Done"), final[1]
    assert tree.question == problem.question, "a client got another client's tree"
    return tree.meta["compute"]["generated_tokens"], tree.question, first


def search_config(n: int):
    """SEARCH as the engine's SearchConfig (for the searches run in this process)."""
    from tts_explorer.config import SearchConfig

    return SearchConfig(
        strategy=SEARCH["strategy"],
        n=n,
        beam_width=SEARCH["m"],
        max_steps=SEARCH["max_steps"],
        temperature=SEARCH["temperature"],
        aggregation=SEARCH["aggregation"],
        selection=SEARCH["selection"],
    )


def in_process(problems, n: int) -> None:
    """The same searches on the local engine, one after another and then on threads at once."""
    from tts_explorer.policy.loading import load_policy
    from tts_explorer.search import new_tree, run_to_end

    policy = load_policy()
    config = search_config(n)

    def one(problem) -> int:
        tree = new_tree(problem.question, config, SEARCH["scorer"], problem.answer, policy.name)
        run_to_end(tree, policy, config, SEARCH["scorer"])
        return tree.meta["compute"]["generated_tokens"]

    one(problems[0])  # warm: the template is prefilled
    started = time.perf_counter()
    alone = sum(one(p) for p in problems)
    alone_s = time.perf_counter() - started
    started = time.perf_counter()
    with ThreadPoolExecutor(len(problems)) as pool:
        together = sum(pool.map(one, problems))
    together_s = time.perf_counter() - started
    print(f"the local engine in this process, no page; {len(problems)} searches, beam search N={n}, M=2, 6 steps")
    print(f"one at a time : {alone} tokens in {alone_s:.1f} s = {alone / alone_s:.1f} tok/s")
    print(
        f"all at once   : {together} tokens in {together_s:.1f} s = {together / together_s:.1f} tok/s "
        f"({together / together_s / (alone / alone_s):.2f}x); loop turns with several searches: {policy.batched_calls}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--n", type=int, default=8)
    parser.add_argument("--slots", type=int, default=8, help="TTS_SEARCH_SLOTS: searches the page runs at once")
    parser.add_argument("--backend", choices=["llama-server", "engine"], default="llama-server")
    parser.add_argument("--no-page", action="store_true", help="the engine in this process, no page")
    args = parser.parse_args()
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=args.clients)
    if args.no_page:
        in_process(problems, args.n)
        return
    gguf = embedded.embedded_gguf()
    with contextlib.ExitStack() as stack:
        if args.backend == "engine":
            model, where = "embedded", "the local engine"
        else:
            server = stack.enter_context(LlamaServer(str(gguf), slots=16, context=32768))
            model, where = f"{server.url}?tokenizer=embedded", f"llama-server: 16 slots, {gguf.name}"
        port = free_port()
        env = {
            **os.environ,
            "PORT": str(port),
            "HOST": "127.0.0.1",
            "TTS_MODELS": model,
            "TTS_SCORERS": "arithmetic",
            "TTS_SEARCH_SLOTS": str(args.slots),
        }
        app = subprocess.Popen(
            [sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_http(url)
            clients = [Client(url, verbose=False) for _ in problems]
            run(clients[0], problems[0], model, args.n)  # warm: the server has seen the template
            started = time.perf_counter()
            alone = [run(c, p, model, args.n) for c, p in zip(clients, problems)]
            alone_s = time.perf_counter() - started
            started = time.perf_counter()
            with ThreadPoolExecutor(len(clients)) as pool:
                together = list(pool.map(lambda cp: run(cp[0], cp[1], model, args.n), zip(clients, problems)))
            together_s = time.perf_counter() - started
        finally:
            app.terminate()
            app.wait()
    questions = {q for _, q, _ in together}
    alone_rate = sum(t for t, _, _ in alone) / alone_s
    together_rate = sum(t for t, _, _ in together) / together_s
    firsts = [f for _, _, f in together if f is not None]
    print(
        f"{where}; the page: TTS_SEARCH_SLOTS={args.slots}; {len(problems)} clients, "
        f"beam search N={args.n}, M=2, 6 steps"
    )
    print(f"one client at a time : {sum(t for t, _, _ in alone)} tokens in {alone_s:.1f} s = {alone_rate:.1f} tok/s")
    print(
        f"{len(clients)} clients at once   : {sum(t for t, _, _ in together)} tokens in {together_s:.1f} s = "
        f"{together_rate:.1f} tok/s ({together_rate / alone_rate:.2f}x)"
    )
    print(
        f"first nodes drawn, clients at once: slowest {max(firsts, default=float('nan')):.1f} s, "
        f"median {sorted(firsts)[len(firsts) // 2] if firsts else float('nan'):.1f} s "
        f"(one at a time: slowest {max((f for _, _, f in alone if f is not None), default=float('nan')):.1f} s)"
    )
    print(
        f"every run completed: yes; every client got its own tree: {'yes' if len(questions) == len(problems) else 'NO'}"
    )
    print(json.dumps({"alone_tok_s": alone_rate, "together_tok_s": together_rate, "first_node_s": firsts}))


if __name__ == "__main__":
    main()
