"""Peak resident memory of the engine alone: a fresh Python process loads the model, then
runs the largest search of the benchmark (beam search at the largest N), reporting its
peak after each (Linux: /proc/self/status). The benchmark's own process also holds the
baselines."""

from __future__ import annotations

import json
import subprocess
import sys

PROBE = """
import json, os, sys
from tts_explorer.benchmark.startup import peak_rss_of
from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.search import new_tree, run_to_end

peak = lambda: peak_rss_of(os.getpid())  # VmHWM: ru_maxrss would carry the parent's peak across exec
policy = load_policy(sys.argv[1])
loaded = peak()
problem = read_problems(sys.argv[2], 1)[0][0]
config = SearchConfig(strategy="beam", n=int(sys.argv[3]), beam_width=4, max_steps=6, step_tokens=64,
                      final_tokens=96, seed=0)
run_to_end(new_tree(problem.question, config, "arithmetic", problem.answer, policy.name), policy, config,
           "arithmetic")
print(json.dumps({"loaded": loaded, "searched": peak()}))
"""


def engine_peak_mib(model: str, data: str, n: int) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", PROBE, model, data, str(n)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError((done.stderr.strip().splitlines() or ["the memory probe failed"])[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def format_memory(peaks: dict[str, float], n: int) -> str:
    return (
        f"peak resident memory, engine alone: {peaks['loaded']:.0f} MiB after loading the model, "
        f"{peaks['searched']:.0f} MiB after a beam search at N={n}"
    )
