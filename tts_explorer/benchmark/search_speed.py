"""Search throughput of each backend on the same problems, searches and budgets.

Backends: the engine (policy/local.py), the naive way (policy/naive.py: transformers'
generate per candidate, the path re-encoded at every step) and llama.cpp on the same
GGUF doing the same candidates one after another (policy/llamacpp.py, when installed).
Every search starts cold (no cached prompt) with the model loaded. Per row: generated
tokens, tokens per second, problems per minute, the prefill ratio (tokens the model
processed / unique prompt + tree tokens; 1.0 = nothing computed twice), seconds from the
start of the search to the first scored node, and the engine's speed over each baseline.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..config import PAGE_DEFAULTS, SearchConfig
from ..data import Problem
from ..events import NodesScored
from ..prompts import load_template
from ..search import new_tree, search
from .parts import engine_parts

SCORER = "arithmetic"


@dataclass
class Row:
    backend: str
    strategy: str
    n: int
    tokens: int
    seconds: float
    prefill_ratio: float
    first_node_s: float
    problems: int

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / max(self.seconds, 1e-9)


def bench_config(strategy: str, n: int, beam_width: int, max_steps: int) -> SearchConfig:
    return SearchConfig(
        strategy=strategy,
        n=n,
        beam_width=min(beam_width, n),
        max_steps=max_steps,
        step_tokens=PAGE_DEFAULTS.step_tokens,
        final_tokens=PAGE_DEFAULTS.final_tokens,
        seed=0,
    )


def run_one(
    policy, tokenizer, problem: Problem, config: SearchConfig, warm: bool = False, scorer: str = SCORER
) -> tuple[int, float, float, float]:
    """(generated tokens, seconds, prefill ratio, seconds to the first scored node) of one search,
    started cold, or with the template's shared part prefilled as the app does (warm)."""
    policy.forget()
    if warm:
        policy.warm(load_template().warm_up_prompt(policy))
    tree = new_tree(problem.question, config, scorer, problem.answer, policy.name)
    started = time.perf_counter()
    first = None
    for event in search(tree, policy, config, scorer):
        if first is None and isinstance(event, NodesScored):
            first = time.perf_counter() - started
    seconds = time.perf_counter() - started
    compute = tree.meta["compute"]
    prompt = load_template().prompt(policy, problem.question)
    unique = len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) + sum(n.n_tokens for n in tree if n.id)
    processed = compute["prefill_tokens"] + compute["generated_tokens"]
    return compute["generated_tokens"], seconds, processed / max(unique, 1), first or seconds


def measure(
    backends: dict,
    tokenizer,
    problems: list[Problem],
    strategies: list[str],
    budgets: list[int],
    beam_width: int,
    max_steps: int,
    max_n: dict[str, int],
    scorer: str = SCORER,
):
    """Yield, per strategy and budget, one Row per backend (a backend runs budgets up to
    max_n[backend]; one with `for_budget(n)` gives the policy for each budget), each search
    scored by `scorer`."""
    for strategy in strategies:
        for n in budgets:
            config = bench_config(strategy, n, beam_width, max_steps)
            group = []
            for backend, policy in backends.items():
                if n > max_n.get(backend, n):
                    continue
                if hasattr(policy, "for_budget"):  # a server started with one slot per candidate
                    policy = policy.for_budget(n)
                totals = [run_one(policy, tokenizer, p, config, scorer=scorer) for p in problems]
                group.append(
                    Row(
                        backend,
                        strategy,
                        n,
                        sum(t[0] for t in totals),
                        sum(t[1] for t in totals),
                        sum(t[2] for t in totals) / len(totals),
                        sum(t[3] for t in totals) / len(totals),
                        len(problems),
                    )
                )
            yield group


def page_default(policy, problem: Problem) -> str:
    """The page's default search as a visitor's first Run gets it (model loaded, template warmed)."""
    config = PAGE_DEFAULTS
    tokens, seconds, _, first = run_one(policy, engine_parts(policy)[1], problem, config, warm=True)
    return (
        f"page default ({config.strategy}, N={config.n}, M={config.beam_width}, up to {config.max_steps} steps), "
        f"template prefilled as the app does at start: first node {first:.2f} s, done {seconds:.2f} s, "
        f"{tokens} tokens"
    )


HEADER = (
    f"{'strategy':<10}{'N':>4} {'backend':<10}{'tokens':>8}{'tok/s':>8}{'problems/min':>14}"
    f"{'prefill ratio':>15}{'first node s':>14}{'vs naive':>10}{'vs llama.cpp':>14}"
)


def format_header() -> str:
    return HEADER + "\n" + "-" * len(HEADER)


def format_group(rows: list[Row]) -> str:
    """The rows of one strategy and budget, the engine's speed ratios over the baselines on its row."""
    by_backend = {r.backend: r for r in rows}
    lines = []
    for r in rows:
        ratios = []
        for baseline in ("naive", "llama.cpp"):
            base = by_backend.get(baseline)
            ratios.append(f"{r.tokens_per_s / base.tokens_per_s:.2f}x" if base and r.backend == "engine" else "")
        lines.append(
            f"{r.strategy:<10}{r.n:>4} {r.backend:<10}{r.tokens:>8}{r.tokens_per_s:>8.1f}"
            f"{60.0 * r.problems / max(r.seconds, 1e-9):>14.2f}{r.prefill_ratio:>15.2f}"
            f"{r.first_node_s:>14.2f}{ratios[0]:>10}{ratios[1]:>14}"
        )
    return "\n".join(lines)
