"""Where one search's wall time goes on the local engine: the decode loop's forwards (and the
attention inside them), its sampling and bookkeeping, the calls' starts (prefill, batch
building), and everything outside the engine (the strategy, the scorer, the tree); with the
rows per forward, to show how much of a search runs on a batch emptied by its iteration's
barrier. The searches of `tts-explorer bench` (the page's step settings, `arithmetic` as the
scorer, seed 0) on the first problems of assets/problems/easy.jsonl, each started cold. Run it
alone: it times the CPU.

    python bench/search_breakdown.py [--problems 2] [--searches beam:16,dvts:64,best_of_n:64]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

from tts_explorer.benchmark.search_speed import SCORER, bench_config
from tts_explorer.data import read_problems
from tts_explorer.policy import local, steppers
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, search

ROOT = Path(__file__).resolve().parent.parent


class Trace:
    """Times the loop's turns, the calls' starts, the forwards and their attention."""

    def __init__(self) -> None:
        self.reset()
        trace = self
        turn, start = local.TransformersPolicy._loop_step, local.TransformersPolicy._start
        forward, attention = steppers.LlamaStep.forward, steppers.LlamaStep._attention

        def timed(name, fn, rows=None):
            def wrapped(*args, **kwargs):
                if name in ("forward", "attention") and trace.starting:  # a start's prefill: in the start
                    return fn(*args, **kwargs)
                trace.starting = trace.starting or name == "starts"
                at = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    trace.seconds[name] += time.perf_counter() - at
                    trace.starting = trace.starting and name != "starts"
                    if rows is not None:
                        trace.rows[rows(*args)] += 1

            return wrapped

        local.TransformersPolicy._loop_step = timed("turns", turn)
        local.TransformersPolicy._start = timed("starts", start)
        steppers.LlamaStep.forward = timed(
            "forward", forward, lambda step, parts, *_: sum(p[0].shape[0] for p in parts)
        )
        steppers.LlamaStep._attention = timed("attention", attention)

    def reset(self) -> None:
        self.seconds: Counter = Counter()
        self.rows: Counter = Counter()  # rows per decode forward: how many forwards had that many
        self.starting = False


def run(policy, problem, strategy: str, n: int, trace: Trace) -> tuple[int, float]:
    config = bench_config(strategy, n, 4, 8)
    policy.forget()
    tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
    started = time.perf_counter()
    for _ in search(tree, policy, config, SCORER):
        pass
    return tree.meta["compute"]["generated_tokens"], time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--searches", default="beam:16,dvts:64,best_of_n:64")
    args = parser.parse_args()
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=args.problems)
    policy = load_policy()
    trace = Trace()
    run(policy, problems[0], "beam", 4, trace)  # warm-up
    for item in args.searches.split(","):
        strategy, n = item.split(":")
        trace.reset()
        tokens = wall = 0.0
        for problem in problems:
            t, w = run(policy, problem, strategy, int(n), trace)
            tokens, wall = tokens + t, wall + w
        s = trace.seconds
        loop_rest = s["turns"] - s["forward"] - s["starts"]
        outside = wall - s["turns"]
        forwards = sum(trace.rows.values())
        mean_rows = sum(r * c for r, c in trace.rows.items()) / max(forwards, 1)
        small = sum(c for r, c in trace.rows.items() if r < int(n) // 2)
        print(
            f"{strategy} N={n}: {tokens:.0f} tokens in {wall:.1f} s ({tokens / wall:.1f} tok/s); "
            f"forward {s['forward']:.1f} s (attention {s['attention']:.1f}), loop's sampling and bookkeeping "
            f"{loop_rest:.1f}, starts {s['starts']:.1f}, outside the loop {outside:.1f}; {forwards} forwards, "
            f"{mean_rows:.1f} rows on average, {small} with under N/2 rows "
            f"({s['forward'] / max(forwards, 1) * 1000:.1f} ms per forward)"
        )


if __name__ == "__main__":
    main()
