"""Which backend serves a model from the package index faster here: the local engine
(transformers' forward for architectures without a lean step, e.g. Gemma 3) or llama.cpp's
own llama-server on the same GGUF (2 threads, continuous batching), side by side on the same
searches: greedy, best-of-N and beam search, tokens per second inside the search.

    python bench/model_backend.py [--model gemma3-270m] [--problems 3]
"""

from __future__ import annotations

import argparse
import time

from tts_explorer.config import PAGE_DEFAULTS, SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.loopback import LlamaServer, usable_cores
from tts_explorer.policy.loading import load_policy
from tts_explorer.policy.server import ServerPolicy
from tts_explorer.policy.sources import gguf_file
from tts_explorer.runs import RunRequest, ScorerChoice, search_events

SEARCHES = [("greedy", 1), ("best_of_n", 16), ("beam", 16)]


def measure(policy, source: str, problems) -> list[tuple[str, int, int, float]]:
    rows = []
    for strategy, n in SEARCHES:
        tokens, seconds = 0, 0.0
        for problem in problems:
            config = SearchConfig(
                strategy=strategy,
                n=n,
                beam_width=4,
                max_steps=6,
                step_tokens=PAGE_DEFAULTS.step_tokens,
                final_tokens=PAGE_DEFAULTS.final_tokens,
            )
            request = RunRequest(problem.question, problem.answer, config, ScorerChoice("arithmetic"), source)
            tree = request.new_tree(policy.name)
            started = time.perf_counter()
            for _ in search_events(tree, policy, request):
                pass
            seconds += time.perf_counter() - started
            tokens += tree.meta["compute"]["generated_tokens"]
        rows.append((strategy, n, tokens, seconds))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--problems", type=int, default=3)
    args = parser.parse_args()
    problems = read_problems("synthetic-s13", args.problems)[0]
    engine = load_policy(args.model)
    results = {"engine": measure(engine, args.model, problems)}
    with LlamaServer(str(gguf_file(args.model)), slots=16, threads=usable_cores()) as server:
        remote = ServerPolicy(f"{server.url}?tokenizer={args.model}")
        results["llama-server"] = measure(remote, args.model, problems)
    print(f"{args.model}, {len(problems)} problems, {usable_cores()} threads; tokens per second inside the search")
    print(f"{'strategy':<12}{'N':>4}{'engine':>12}{'llama-server':>14}{'ratio':>8}")
    for (strategy, n, t1, s1), (_, _, t2, s2) in zip(results["engine"], results["llama-server"]):
        print(f"{strategy:<12}{n:>4}{t1 / s1:>12.1f}{t2 / s2:>14.1f}{(t2 / s2) / (t1 / s1):>7.2f}x")


if __name__ == "__main__":
    main()
