"""`tts-explorer eval` with a model served by llama.cpp's own llama-server (built by
scripts/build_llama_server.sh) on the model's GGUF: the server is started on a free loopback
port with the given slots and threads, eval runs against it through the server backend (its
tokenizer named, so prompts and token counts are the model's), and the server is stopped.
Rows name the model "NAME @ llama-server" (the registry's name of the model, else the GGUF's
file name), whichever port the server got, so a stopped run resumes from its results file.

    python bench/served_eval.py --model gemma3-270m --slots 16 -- --data synthetic-s11 \
        --strategies greedy,majority --budgets 4,16 --template base_few_shot --out served.jsonl
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import urllib.parse

from tts_explorer.loopback import LlamaServer, usable_cores
from tts_explorer.policy.embedded import WHEEL_MODELS
from tts_explorer.policy.sources import gguf_file

TIMEOUT_S = 900.0  # a request's wait: the page's 120 s ended a run whose requests queued behind other jobs


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="gemma3-270m", help="a registry model or a .gguf path")
    parser.add_argument("--slots", type=int, default=16)
    parser.add_argument("--threads", type=int, default=usable_cores())
    parser.add_argument("--timeout", type=float, default=TIMEOUT_S, help="seconds a request may wait")
    parser.add_argument("eval_args", nargs=argparse.REMAINDER, help="-- then the eval arguments (not --models)")
    args = parser.parse_args()
    rest = args.eval_args[1:] if args.eval_args[:1] == ["--"] else args.eval_args
    sys.exit(served_eval(args.model, rest, args.slots, args.threads, args.timeout))


def served_eval(
    model: str, eval_args: list[str], slots: int = 16, threads: int | None = None, timeout: float = TIMEOUT_S
) -> int:
    """eval's exit code, run with `model` served by llama-server."""
    gguf = gguf_file(model)
    if gguf is None:
        raise SystemExit(f"not a registry model or a .gguf path: {model!r}")
    name = WHEEL_MODELS[model].display if model in WHEEL_MODELS else gguf.name
    with LlamaServer(str(gguf), slots=slots, threads=threads or usable_cores()) as server:
        url = f"{server.url}?" + urllib.parse.urlencode(
            {"tokenizer": model, "name": f"{name} @ llama-server", "timeout": timeout}
        )
        return subprocess.run([sys.executable, "-m", "tts_explorer", "eval", "--models", url, *eval_args]).returncode


if __name__ == "__main__":
    main()
