"""`tts-explorer bench`: how fast the search engine is, against the alternatives,
measured side by side in one run on this machine.

Sections, always in this order (later runs are compared with this output, keep it stable):
1. the machine and model; model load time;
2. the page's default search as a visitor's first Run gets it; search throughput per
   strategy and budget for the engine, the naive baseline and llama.cpp
   (search_speed.py), with the engine's ratio over each;
3. each offline scorer's cost per step (scorer_cost.py);
4. app start to page served and to model ready, twice (startup.py);
5. tree render time in headless Chromium (render_speed.py);
(with --server, the search rows gain a backend "server": an OpenAI-compatible server, or
llama.cpp's llama-server started on the same GGUF, serving the same searches);
6. peak resident memory: the engine alone in a fresh process (memory.py), and this process.
A section that cannot run here (llama-cpp-python or Chromium missing) says why.
"""

from __future__ import annotations

import contextlib
import platform
import time

from ..config import PAGE_DEFAULTS
from ..data import Problem
from ..policy.embedded import EMBEDDED
from ..policy.naive import NaivePolicy
from ..policy.sources import gguf_file
from .parts import engine_parts, peak_rss_mib


def _llama_cpp(policy, gguf):
    from ..policy.llamacpp import LlamaCppPolicy, llama_cpp_available
    from ..policy.loading import usable_cores

    if gguf is None:
        return None, "llama.cpp: skipped (the model is not a GGUF file)"
    if not llama_cpp_available():
        return None, "llama.cpp: skipped (pip install llama-cpp-python, or bash scripts/install.sh --llama-cpp)"
    return LlamaCppPolicy(gguf, engine_parts(policy)[1], policy.flops_params, usable_cores(), name="llama.cpp"), None


class ServedPerBudget:
    """llama.cpp's own llama-server on the engine's GGUF with as many parallel slots as the
    budget's concurrent requests (`-np N` for N candidates, the comparison the engine issue
    asks for) and 1,024 tokens of context per slot; one server at a time, started when the
    budget changes."""

    def __init__(self, gguf):
        self.gguf, self.running, self.slots, self.policy = gguf, None, 0, None

    def for_budget(self, n: int):
        from ..loopback import LlamaServer, usable_cores
        from ..policy.server import ServerPolicy

        if n != self.slots:
            self.close()
            self.running = LlamaServer(str(self.gguf), slots=n, context=1024 * n, threads=usable_cores()).start()
            self.slots, self.policy = n, ServerPolicy(self.running.url + "?tokenizer=" + str(self.gguf))
        return self.policy

    def close(self) -> None:
        if self.running is not None:
            self.running.stop()
        self.running, self.slots, self.policy = None, 0, None


def _server(server: str, gguf, stack, print_fn):
    """The server backend: a URL, or "llama-server": llama.cpp's own, started here on the same
    GGUF with one slot per candidate of each budget (ServedPerBudget)."""
    from ..errors import UserError
    from ..policy.server import ServerPolicy

    if server == "llama-server":
        if gguf is None:
            raise UserError("--server llama-server needs a GGUF model")
        served = ServedPerBudget(gguf)
        stack.callback(served.close)
        print_fn("server: llama.cpp's llama-server, the same GGUF, N parallel slots for a budget of N (-np N)")
        return served
    print_fn(f"server: {server}")
    return ServerPolicy(server)


def run_bench(
    model: str,
    data: str,
    problems: list[Problem],
    strategies: list[str],
    budgets: list[int],
    beam_width: int,
    max_steps: int,
    scorers: list[str],
    naive_max_n: int = 16,
    llama_max_n: int = 64,
    with_startup: bool = True,
    render_sizes: tuple[int, ...] = (1000, 5000),
    print_fn=print,
    server: str | None = None,
) -> None:
    """Run every section, printing each as soon as it is measured."""
    import torch

    from ..loopback import chromium_path
    from ..policy.loading import load_policy, usable_cores
    from .memory import engine_memory, format_memory
    from .render_speed import format_render, render_timings
    from .scorer_cost import format_costs, scorer_costs
    from .search_speed import SCORER, format_group, format_header, measure, page_default
    from .startup import format_starts, start_timings

    started = time.perf_counter()
    policy = load_policy(model)
    load_s = time.perf_counter() - started
    print_fn(
        f"machine: {platform.processor() or platform.machine()}, {usable_cores()} threads; torch {torch.__version__}"
    )
    weights, tokenizer, step = engine_parts(policy)
    print_fn(
        f"model: {policy.name}, {policy.n_params / 1e6:.0f}M parameters, {weights.dtype}, "
        f"step {type(step).__name__}; model load {load_s:.1f} s"
    )
    print_fn(
        f"searches: {len(problems)} problem(s), scorer {SCORER}, beam width {beam_width}, "
        f"{max_steps} steps, {PAGE_DEFAULTS.step_tokens} tokens per step, {PAGE_DEFAULTS.final_tokens} in the last; "
        "each search starts cold"
    )
    backends = {"engine": policy, "naive": NaivePolicy(weights, tokenizer, name="naive")}
    llama, note = _llama_cpp(policy, gguf_file(model))
    if llama is not None:
        backends["llama.cpp"] = llama
    if note:
        print_fn(note)
    with contextlib.ExitStack() as stack:
        if server:
            backends["server"] = _server(server, gguf_file(model), stack, print_fn)
        print_fn(page_default(policy, problems[0]))
        print_fn(format_header())
        for group in measure(
            backends,
            tokenizer,
            problems,
            strategies,
            budgets,
            beam_width,
            max_steps,
            {"naive": naive_max_n, "llama.cpp": llama_max_n},
        ):
            print_fn(format_group(group))
    print_fn(f"(naive rows up to N={naive_max_n}, llama.cpp rows up to N={llama_max_n})")
    print_fn(format_costs(scorer_costs(policy, problems[0], scorers) if scorers else {}))
    if with_startup and model == EMBEDDED:
        print_fn(format_starts(start_timings()))
    if render_sizes:
        if chromium_path() is None:
            print_fn("render: skipped (no chromium; bash scripts/install.sh --dev installs it)")
        else:
            print_fn(format_render(render_timings(list(render_sizes))))
    print_fn(format_memory(engine_memory(model, data, max(budgets)), max(budgets)))
    print_fn(f"peak resident memory of this process (engine, naive and llama.cpp): {peak_rss_mib():.0f} MiB")
