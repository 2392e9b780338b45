"""How long one decode turn of the local engine takes at a given number of rows: the first
example's three-shot prompt, N rows sampled 48 tokens (no stop string, nothing kept), on the
engine thread; the best of three runs per row count, in milliseconds a turn. With --profile R,
PyTorch's profiler table (self CPU time per operator) of 32 turns at R rows. Run it alone: it
times the CPU; to compare two versions of the engine, run it from a checkout of each in turn.

    python bench/turn_time.py [--rows 64,16,4] [--profile 4]
"""

from __future__ import annotations

import argparse
import time

from tts_explorer.policy import engine_thread
from tts_explorer.policy.loading import load_policy
from tts_explorer.prompts import load_template

QUESTION = "Tom has 3 apples and buys 5 more. How many apples does he have now?"
TOKENS = 48


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", default="64,16,4")
    parser.add_argument("--profile", type=int, default=0, help="rows of the profiled turns (0: no profile)")
    args = parser.parse_args()
    policy = load_policy()
    prompt = load_template().prompt(policy, QUESTION)

    def generate(rows: int, tokens: int):
        return policy.generate([prompt], [rows], tokens, 0.8, stop=None, keep_state=False)

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


if __name__ == "__main__":
    main()
