"""How long one decode turn of the local engine takes at a given number of rows: the first
example's three-shot prompt, N rows sampled 48 tokens (no stop string, nothing kept), on the
engine thread; the best of three runs per row count, in milliseconds a turn. With --calls K, the
same rows again split among K calls made at once from K threads, each its own question (K
visitors' searches sharing the decode loop), beside one call of all the rows. With --profile R,
PyTorch's profiler table (self CPU time per operator) of 32 turns at R rows. Run it alone: it
times the CPU; to compare two versions of the engine, run it from a checkout of each in turn.

    python bench/turn_time.py [--rows 64,16,4] [--calls 8] [--profile 4]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tts_explorer.data import read_problems
from tts_explorer.policy import engine_thread
from tts_explorer.policy.loading import load_policy
from tts_explorer.prompts import load_template

QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
TOKENS = 48
ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="64,16,4")
    parser.add_argument("--calls", type=int, default=0, help="also split the rows among this many calls at once")
    parser.add_argument("--profile", type=int, default=0, help="rows of the profiled turns (0: no profile)")
    args = parser.parse_args()
    policy = load_policy()
    template = load_template()
    prompt = template.prompt(policy, QUESTION)
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=max(args.calls, 1))
    prompts = [template.prompt(policy, p.question) for p in problems]

    def generate(rows: int, tokens: int, text: str = prompt):
        return policy.generate([text], [rows], tokens, 0.8, stop=None, keep_state=False)

    def at_once(rows: int, tokens: int) -> float:
        """Seconds for args.calls calls of rows/calls rows each, made together from threads."""
        each = max(rows // args.calls, 1)
        with ThreadPoolExecutor(args.calls) as pool:
            started = time.perf_counter()
            list(pool.map(lambda text: generate(each, tokens, text), prompts))
            return time.perf_counter() - started

    if args.calls:
        for text in prompts:  # each question's prompt state, kept as a search's would be
            engine_thread.run(policy.warm, text)
        at_once(args.calls, 4)
        for rows in (int(r) for r in args.rows.split(",")):
            alone = min(_timed(engine_thread.run, generate, rows, TOKENS) for _ in range(3))
            together = min(at_once(rows, TOKENS) for _ in range(3))
            print(
                f"{rows} rows: one call {1000 * alone / TOKENS:.1f} ms a turn, "
                f"{args.calls} calls at once {1000 * together / TOKENS:.1f} ms a turn ({together / alone:.2f}x)",
                flush=True,
            )
        return

    def measure():
        generate(64, 8)  # warm: the prompt's state and the buffers
        for rows in (int(r) for r in args.rows.split(",")):
            best = float("inf")
            for _ in range(3):
                started = time.perf_counter()
                generate(rows, TOKENS)
                best = min(best, time.perf_counter() - started)
            print(f"{rows} rows: {1000 * best / TOKENS:.1f} ms a turn", flush=True)
        if args.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU]) as profiled:
                generate(args.profile, 32)
            print(profiled.key_averages().table(sort_by="self_cpu_time_total", row_limit=25))

    engine_thread.run(measure)  # on the engine thread, as the decode loop runs


def _timed(fn, *args) -> float:
    started = time.perf_counter()
    fn(*args)
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
