"""Whether the local engine reads a GGUF as llama.cpp does: greedy chains of the same model on
the same problems through llama.cpp's own llama-server (built by scripts/build_llama_server.sh;
its own tokenizer and kernels) and an engine results file, compared problem by problem (the
answer each states; the engine runs the dequantized weights in fp32, llama.cpp its quantized
kernels, so near-ties may fall either way and a chain then goes on differently).

    python bench/backend_agreement.py --model gemma3-270m --limit 20 \
        assets/scaling/set-b/gemma3-270m-greedy.jsonl
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from served_eval import served_eval

from tts_explorer.scaling.grid import read_rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine_results", help="an eval results file of the model's greedy rows on the engine")
    parser.add_argument("--model", default="gemma3-270m")
    parser.add_argument("--data", default="synthetic-s11")
    parser.add_argument("--template", default="base_few_shot")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2, help="llama-server's threads")
    args = parser.parse_args()
    engine = {r["id"]: r for r in read_rows(args.engine_results) if r["strategy"] == "greedy"}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "server.jsonl"
        eval_args = ["--data", args.data, "--limit", str(args.limit), "--strategies", "greedy", "--budgets", "1",
                     "--max-steps", "6", "--step-tokens", "64", "--final-tokens", "96", "--template", args.template,
                     "--out", str(out)]  # fmt: skip
        if served_eval(args.model, eval_args, slots=1, threads=args.threads):
            sys.exit("eval through llama-server failed")
        served = read_rows(out)
    shared = [r for r in served if r["id"] in engine]
    print(f"{'problem':<14}{'reference':>10}{'engine':>10}{'llama-server':>14}")
    for r in shared:
        print(f"{r['id']:<14}{r['reference']:>10}{str(engine[r['id']]['answer']):>10}{str(r['answer']):>14}")
    same = sum(engine[r["id"]]["answer"] == r["answer"] for r in shared)
    right = (sum(bool(engine[r["id"]]["correct"]) for r in shared), sum(bool(r["correct"]) for r in shared))
    print(f"{same} of {len(shared)} problems: the same answer; right: engine {right[0]}, llama-server {right[1]}")


if __name__ == "__main__":
    main()
