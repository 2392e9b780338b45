"""Peak resident memory of the engine alone, per generated token: a fresh Python process
loads the model, runs a greedy search, then beam search (or another strategy) at the largest
N for 8 steps, on the same problem (the arithmetic scorer: the engine's memory, not a PRM's),
reading its peak after each (Linux: /proc/self/status) and its resident memory after every
event of that search (the curve of memory against generated tokens). The benchmark's own
process also holds the baselines.

Also runnable alone: python -m tts_explorer.benchmark.memory [MODEL] [DATA] [N] [STRATEGY]
"""

from __future__ import annotations

import json
import subprocess
import sys

STEPS = 8  # the search's depth
STRATEGY = "beam"  # the search measured, unless another is named
CURVE_POINTS = 12

PROBE = """
import json, os, sys
from tts_explorer.benchmark.startup import peak_rss_of
from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, resident_mb, run_to_end, search

peak = lambda: peak_rss_of(os.getpid())  # VmHWM: ru_maxrss would carry the parent's peak across exec
model, data, n, steps, strategy = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
policy = load_policy(model)
loaded = peak()
problem = read_problems(data, 1)[0][0]
def config(strategy, n):
    return SearchConfig(strategy=strategy, n=n, beam_width=4, max_steps=steps, step_tokens=64, final_tokens=96, seed=0)
greedy = config("greedy", 1)
run_to_end(new_tree(problem.question, greedy, "arithmetic", problem.answer, policy.name), policy, greedy, "arithmetic")
after_greedy = peak()
wide = config(strategy, n)
tree = new_tree(problem.question, wide, "arithmetic", problem.answer, policy.name)
curve = []
for event in search(tree, policy, wide, "arithmetic"):
    curve.append((tree.meta["compute"]["generated_tokens"], resident_mb()))
print(json.dumps({"loaded": loaded, "greedy": after_greedy, "searched": peak(),
                  "tokens": tree.meta["compute"]["generated_tokens"], "curve": curve}))
"""


def engine_memory(model: str, data: str, n: int, steps: int = STEPS, strategy: str = STRATEGY) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, model, data, str(n), str(steps), strategy], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["the memory probe failed"])[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_memory(measured: dict, n: int, steps: int = STEPS, strategy: str = STRATEGY) -> str:
    extra = measured["searched"] - measured["greedy"]
    per_token = extra * 1024 / max(measured["tokens"], 1)
    curve = measured["curve"]
    picked = curve[:: max(1, len(curve) // CURVE_POINTS)] + curve[-1:]
    points = ", ".join(f"{tokens}:{rss:.0f}" for tokens, rss in dict(picked).items())
    return (
        f"peak resident memory, engine alone: {measured['loaded']:.0f} MiB after loading the model, "
        f"{measured['greedy']:.0f} MiB after a greedy search, {measured['searched']:.0f} MiB after "
        f"a {strategy} search at N={n}, {steps} steps ({measured['tokens']} tokens generated): "
        f"{per_token:.1f} KB per generated token over greedy\n"
        f"resident MiB against generated tokens in that {strategy} search (tokens:MiB): {points}"
    )


if __name__ == "__main__":
    from ..policy.embedded import EMBEDDED

    model, data, n, strategy = (sys.argv[1:] + [EMBEDDED, "easy", "64", STRATEGY][len(sys.argv) - 1 :])[:4]
    print(format_memory(engine_memory(model, data, int(n), strategy=strategy), int(n), strategy=strategy))
