"""Why the model's work runs on one thread: one decode turn of 8 calls (8 rows each, as 8
visitors' beam searches) timed on the engine thread while it is the only thread that has run
torch's parallel code, then on a second thread (this script's main one), then on the engine
thread again once both have.

Each thread that runs parallel torch code gets OpenMP workers of its own; with more of them
than cores, libgomp stops letting idle workers spin, and every small operation pays for
waking them (tts_explorer/policy/engine_thread.py).

    python bench/engine_thread.py [--turns 20]
"""

from __future__ import annotations

import argparse
import time

import torch

from tts_explorer.policy import engine_thread
from tts_explorer.policy.kv import RowState, empty_state
from tts_explorer.policy.loading import load_policy

CALLS, ROWS = 8, 8


def calls(policy) -> list[list]:
    """CALLS batches of ROWS rows, each under its own 300-token prompt and a 31-token state."""
    step, meter, g = policy.step, policy.meter, torch.Generator().manual_seed(0)
    parts = []
    for c in range(CALLS):
        prompt = torch.randint(100, 40000, (300 + 3 * c,), generator=g).tolist()
        root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_root()
        steps = tuple([11] + torch.randint(100, 40000, (30,), generator=g).tolist())
        state = policy._prefill(RowState(root.cache, root.next_pos, steps), meter, "policy")
        batch = step.new_batch([state], spare=200).select(torch.zeros(ROWS, dtype=torch.long))
        parts.append([torch.full((ROWS, 1), 13), torch.full((ROWS, 1), state.next_pos), batch])
    return parts


def turns(policy, parts, count: int) -> float:
    """Seconds per turn over `count` turns (after one unmeasured)."""
    for turn in range(count + 1):
        if turn == 1:
            start = time.perf_counter()
        outputs = policy.step.forward([tuple(p) for p in parts])
        for part, logits in zip(parts, outputs):
            part[0], part[1] = logits.argmax(-1, keepdim=True), part[1] + 1
    return (time.perf_counter() - start) / count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=20)
    args = parser.parse_args()
    policy = load_policy()  # loaded on the engine thread
    parts = engine_thread.run(calls, policy)
    alone = engine_thread.run(turns, policy, parts, args.turns)
    torch.set_num_threads(torch.get_num_threads())
    second = turns(policy, parts, args.turns)  # this thread now runs parallel code too
    after = engine_thread.run(turns, policy, parts, args.turns)
    print(f"one decode turn, {CALLS} calls x {ROWS} rows ({policy.step.dtype}, {torch.get_num_threads()} threads):")
    print(f"  on the engine thread, the only one to run torch  : {1000 * alone:6.1f} ms")
    print(f"  on a second thread                               : {1000 * second:6.1f} ms ({second / alone:.2f}x)")
    print(f"  on the engine thread again, after the second one : {1000 * after:6.1f} ms ({after / alone:.2f}x)")


if __name__ == "__main__":
    main()
