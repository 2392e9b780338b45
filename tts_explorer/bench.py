"""`python -m tts_explorer bench`: the search engine against the naive way, side by side.

For each strategy and budget N the same problems are searched twice in one run, by the
engine (batched candidates, KV states reused) and by the naive baseline (transformers'
generate per candidate, the path re-encoded at every step), with the same model and
thread count. Printed per row: generated tokens per second, problems per minute, the
prefill ratio (tokens the model processed / unique prompt + tree tokens; 1.0 = nothing
computed twice), time to the first scored node, and the engine/naive speed ratio.
Also: model load time, peak resident memory, and each offline scorer's cost per step.
llama.cpp and browser render times are not measured here yet.

The output format is kept stable so later runs can be compared with it.
"""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass

from .config import SearchConfig
from .data import Problem
from .events import NodesScored
from .policy.naive import NaivePolicy
from .search import new_tree, search

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


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def run_one(policy, problem: Problem, config: SearchConfig) -> tuple[int, float, float, float]:
    """(generated tokens, seconds, prefill ratio, seconds to the first scored node) of one search."""
    tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
    started = time.perf_counter()
    first = None
    for event in search(tree, policy, config, SCORER):
        if first is None and isinstance(event, NodesScored):
            first = time.perf_counter() - started
    seconds = time.perf_counter() - started
    compute = tree.meta["compute"]
    from .prompts import load_template

    prompt_tokens = len(policy.tokenizer(policy.chat_prompt(load_template().messages(problem.question)),
                                         add_special_tokens=False)["input_ids"])
    unique = prompt_tokens + sum(n.n_tokens for n in tree if n.id)
    processed = compute["prefill_tokens"] + compute["generated_tokens"]
    return compute["generated_tokens"], seconds, processed / max(unique, 1), first or seconds


def measure(policy, naive, problems: list[Problem], strategies: list[str], budgets: list[int],
            beam_width: int, max_steps: int, with_naive: bool = True) -> list[Row]:
    rows = []
    for strategy in strategies:
        for n in budgets:
            m = min(beam_width, n)
            config = SearchConfig(strategy=strategy, n=n, beam_width=m, max_steps=max_steps, step_tokens=64,
                                  final_tokens=96, seed=0)
            for backend, pol in (("engine", policy), ("naive", naive)) if with_naive else (("engine", policy),):
                totals = [run_one(pol, p, config) for p in problems]
                rows.append(Row(backend, strategy, n, sum(t[0] for t in totals), sum(t[1] for t in totals),
                                sum(t[2] for t in totals) / len(totals), sum(t[3] for t in totals) / len(totals),
                                len(problems)))
    return rows


def scorer_costs(policy, problem: Problem, scorers: list[str]) -> dict[str, float]:
    """Seconds per scored step for each scorer, re-scoring one best-of-8 tree."""
    from .rescore import rescore

    config = SearchConfig(strategy="majority", n=8, max_steps=6, step_tokens=64, final_tokens=96, seed=0)
    tree = new_tree(problem.question, config, SCORER, problem.answer, policy.name)
    for _ in search(tree, policy, config, SCORER):
        pass
    steps = len(tree) - 1
    out = {}
    for name in scorers:
        started = time.perf_counter()
        rescore(tree, name, "min", policy, scorer_options={"rollouts": 2} if name.startswith("mc-") else None)
        out[name] = (time.perf_counter() - started) / max(steps, 1)
    return out


def format_rows(rows: list[Row]) -> str:
    head = (f"{'strategy':<10}{'N':>4} {'backend':<8}{'tok/s':>8}{'problems/min':>14}{'prefill ratio':>15}"
            f"{'first node s':>14}{'speed-up':>10}")
    lines = [head, "-" * len(head)]
    naive = {(r.strategy, r.n): r for r in rows if r.backend == "naive"}
    for r in rows:
        base = naive.get((r.strategy, r.n))
        ratio = f"{r.tokens_per_s / base.tokens_per_s:.2f}x" if base and r.backend == "engine" else ""
        lines.append(f"{r.strategy:<10}{r.n:>4} {r.backend:<8}{r.tokens_per_s:>8.1f}"
                     f"{60.0 * r.problems / max(r.seconds, 1e-9):>14.2f}{r.prefill_ratio:>15.2f}"
                     f"{r.first_node_s:>14.2f}{ratio:>10}")
    return "\n".join(lines)


def run_bench(model: str, problems: list[Problem], strategies: list[str], budgets: list[int], beam_width: int,
              max_steps: int, scorers: list[str], with_naive: bool = True) -> str:
    from .policy.loading import load_policy, usable_cores

    started = time.perf_counter()
    policy = load_policy(model)
    load_s = time.perf_counter() - started
    naive = NaivePolicy(policy.model, policy.tokenizer, name=policy.name + " (naive)")
    rows = measure(policy, naive, problems, strategies, budgets, beam_width, max_steps, with_naive)
    costs = scorer_costs(policy, problems[0], scorers) if scorers else {}
    out = [f"model: {policy.name}, {policy.n_params / 1e6:.0f}M parameters, {policy.model.dtype}, "
           f"{usable_cores()} threads; {len(problems)} problem(s); scorer {SCORER}",
           f"model load: {load_s:.1f} s", format_rows(rows),
           "scorer cost per step: " + (", ".join(f"{k} {v * 1000:.1f} ms" for k, v in costs.items()) or "-"),
           f"peak resident memory: {peak_rss_mib():.0f} MiB"]
    return "\n".join(out)
