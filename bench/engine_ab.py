"""The engine of the working tree against the engine of a git revision, side by side in one
run: tokens per second inside the same searches (the bench's search rows, engine only) and
the peak resident memory of each search, each version in its own fresh process, the two
alternating per search so that both see the same machine.

    python bench/engine_ab.py REV [--data easy] [--problems 2] [--searches beam:16,dvts:64,best_of_n:64]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, os, sys
from tts_explorer.benchmark.parts import engine_parts
from tts_explorer.benchmark.search_speed import bench_config, run_one
from tts_explorer.benchmark.startup import peak_rss_of
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy

data, limit, strategy, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
policy = load_policy("embedded")
loaded = peak_rss_of(os.getpid())
tokenizer = engine_parts(policy)[1]
config = bench_config(strategy, n, 4, 6)
runs = [run_one(policy, tokenizer, p, config) for p in read_problems(data, limit)[0]]
print(json.dumps({"tokens": sum(r[0] for r in runs), "seconds": sum(r[1] for r in runs),
                  "peak_over_loaded": peak_rss_of(os.getpid()) - loaded}))
"""


def run_child(pythonpath: Path, data: str, problems: int, strategy: str, n: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(pythonpath))
    done = subprocess.run(
        [sys.executable, "-c", CHILD, data, str(problems), strategy, str(n)],
        capture_output=True,
        text=True,
        env=env,
        cwd=pythonpath,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1])
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rev")
    parser.add_argument("--data", default="easy")
    parser.add_argument("--problems", type=int, default=2)
    parser.add_argument("--searches", default="beam:16,dvts:64,best_of_n:64")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(old), args.rev], check=True)
        try:
            print(f"{'search':<14}{'version':<10}{'tokens':>8}{'tok/s':>8}{'peak MiB over loaded':>22}{'new/old':>9}")
            for item in args.searches.split(","):
                strategy, n = item.split(":")
                rows = {}
                for label, path in (("old", old), ("new", ROOT)):
                    rows[label] = run_child(path, args.data, args.problems, strategy, int(n))
                for label, row in rows.items():
                    speed = row["tokens"] / row["seconds"]
                    ratio = speed / (rows["old"]["tokens"] / rows["old"]["seconds"])
                    print(
                        f"{strategy + ' N=' + n:<14}{label:<10}{row['tokens']:>8}{speed:>8.1f}"
                        f"{row['peak_over_loaded']:>22.0f}{ratio:>8.2f}x",
                        flush=True,
                    )
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(old)], check=False)


if __name__ == "__main__":
    main()
