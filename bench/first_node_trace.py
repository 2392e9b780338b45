"""Where a visitor's first node waits when several searches start at once on the local engine.

Runs the searches of bench/server_load.py (its SEARCH: beam search N=8, M=2, 6 steps,
`arithmetic`, one problem each) on threads in this process, no page, after one warm-up
search, and prints: each search's wait for its first node (its first NodesAdded event), the
decode loop's turns until
the last first node (when, how long, rows in the loop, calls joining), how long each joining
call's prefill took, and the share of the forward's time spent in the attention over the
whole run. Then the same searches one at a time, for their first nodes alone.

    python bench/first_node_trace.py [--searches 8]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from server_load import SEARCH, search_config  # bench/ is the script's folder

from tts_explorer.data import read_problems
from tts_explorer.events import NodesAdded
from tts_explorer.policy import local, steppers
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, search

ROOT = Path(__file__).resolve().parent.parent
CONFIG = search_config(8)


class Trace:
    """Wraps the engine's loop turn, call start, forward and attention to time them."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.turns: list[tuple[float, float, int, int]] = []  # (at, seconds, rows before, calls joining)
        self.starts: list[float] = []  # seconds each joining call's start (its prefill) took
        self.forward = self.attention = 0.0
        self._wrap()

    def _wrap(self) -> None:
        trace = self
        loop, start = local.TransformersPolicy._loop_step, local.TransformersPolicy._start
        forward, attention = steppers.LlamaStep.forward, steppers.LlamaStep._attention

        def timed_loop(policy):
            at, rows, joining = time.perf_counter(), sum(len(r.live) for r in policy._runs), len(policy._waiting)
            loop(policy)
            trace.turns.append((at - trace.t0, time.perf_counter() - at, rows, joining))

        def timed_start(policy, job):
            at = time.perf_counter()
            out = start(policy, job)
            trace.starts.append(time.perf_counter() - at)
            return out

        def timed_forward(step, *args, **kwargs):
            at = time.perf_counter()
            out = forward(step, *args, **kwargs)
            trace.forward += time.perf_counter() - at
            return out

        def timed_attention(step, *args):
            at = time.perf_counter()
            out = attention(step, *args)
            trace.attention += time.perf_counter() - at
            return out

        local.TransformersPolicy._loop_step = timed_loop
        local.TransformersPolicy._start = timed_start
        steppers.LlamaStep.forward = timed_forward
        steppers.LlamaStep._attention = timed_attention

    def reset(self) -> None:
        self.t0 = time.perf_counter()
        self.turns, self.starts, self.forward, self.attention = [], [], 0.0, 0.0


def first_node(policy, problem, t0: float) -> float:
    tree = new_tree(problem.question, CONFIG, SEARCH["scorer"], problem.answer, policy.name)
    first = None
    for event in search(tree, policy, CONFIG, SEARCH["scorer"]):
        if first is None and isinstance(event, NodesAdded):
            first = time.perf_counter() - t0
    return first


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--searches", type=int, default=8)
    args = parser.parse_args()
    problems, _ = read_problems(ROOT / "assets" / "problems" / "easy.jsonl", limit=args.searches)
    policy = load_policy()
    trace = Trace()
    first_node(policy, problems[0], time.perf_counter())  # warm: the few-shot part is kept
    trace.reset()
    with ThreadPoolExecutor(len(problems)) as pool:
        firsts = sorted(pool.map(lambda p: first_node(policy, p, trace.t0), problems))
    wall = time.perf_counter() - trace.t0
    print(f"{len(problems)} searches at once (beam N={CONFIG.n}, M={CONFIG.beam_width}), no page; {wall:.1f} s in all")
    print("first nodes, s:", " ".join(f"{f:.2f}" for f in firsts), f"(median {firsts[len(firsts) // 2]:.2f})")
    print("calls' starts (prefill) while joining, s:", " ".join(f"{s:.3f}" for s in trace.starts[: len(problems)]))
    print("loop turns until the last first node (at s, took s, rows in the loop, calls joining):")
    for at, took, rows, joining in trace.turns:
        if at > firsts[-1]:
            break
        print(f"  {at:6.2f} {took:6.3f} {rows:4d} {joining:3d}")
    print(
        f"attention {trace.attention:.1f} s of {trace.forward:.1f} s in the forward "
        f"({100 * trace.attention / max(trace.forward, 1e-9):.0f}%) over the whole run"
    )
    alone = [first_node(policy, p, time.perf_counter()) for p in problems]
    print("first nodes one at a time, s:", " ".join(f"{f:.2f}" for f in alone))


if __name__ == "__main__":
    main()
