"""Running an eval grid: models x problems x strategies x budgets x scorers, one JSON line per
cell, resumable, with difficulty and coverage on every row.

Samples are reused where the semantics allow, as the TTS papers' reference code does:
majority vote and best-of-N at every budget come from one set of independent chains per
problem (the first N chains for budget N; best-of-N re-scores them with each scorer
instead of sampling again), and so does the problem's difficulty (the mean correctness
of the first K chains). A row made from a subsample carries the compute of its own chains
(generated tokens and scorer tokens of its nodes, the prompt once). Beam search, DVTS and
auto run a search per budget and scorer. An interrupted eval resumes from its JSONL: rows
already there are not made again.
"""

from __future__ import annotations

import json
import queue
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

from ..config import SearchConfig
from ..data import Problem, jsonl_lines
from ..events import NodesAdded
from ..rescore import rescore
from ..runs import template_for
from ..search import new_tree, search
from ..selection import apply_selection
from ..strategies import get_strategy
from ..tree import SearchTree
from .stats import difficulty_bin

CHAINS = "majority"  # the strategy whose trees are independent chains without a scorer


@dataclass
class Grid:
    strategies: list[str]
    budgets: list[int]
    scorers: list[str]
    base: SearchConfig  # beam width, steps, tokens, temperature, aggregation, selection, seed
    difficulty_samples: int = 0
    template: str | None = None  # None: each model's own (runs.template_for)
    scorer_options: dict | None = None
    auto_table: str | None = None

    def cells(self) -> list[tuple[str, int, str]]:
        """(strategy, budget, scorer) of every row one problem gets; a fixed-N strategy runs once and
        a strategy without a scorer once per budget."""
        out = []
        for strategy in self.strategies:
            spec = get_strategy(strategy)
            for budget in dict.fromkeys(dict(spec.fixed).get("n", b) for b in self.budgets):
                for scorer in self.scorers if spec.uses_scorer else ["-"]:
                    out.append((strategy, budget, scorer))
        return list(dict.fromkeys(out))

    def config(self, strategy: str, n: int) -> SearchConfig:
        # at a budget below the beam width M, beam search and DVTS use M = N
        return get_strategy(strategy).adjust(
            replace(self.base, strategy=strategy, n=n, beam_width=min(self.base.beam_width, n))
        )


def row_key(row: dict) -> tuple:
    return row["model"], str(row["id"]), row["strategy"], row["n"], row.get("scorer") or "-"


def drop_partial_line(path: Path) -> None:
    """Cut a last line an interruption left without its newline, so appended rows start clean."""
    if path.exists() and path.stat().st_size:
        data = path.read_bytes()
        if not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])


def read_rows(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    rows = []
    for line in jsonl_lines(path.read_text(encoding="utf-8")):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # a line cut by an interruption
    return rows


def difficulty_path(out_path: str | Path) -> Path:
    """Where eval keeps each problem's Pass@1 estimate beside a results file."""
    return Path(str(out_path) + ".difficulty.jsonl")


def read_grid(paths: list[str | Path]) -> list[dict]:
    """The rows of several results files of one data set, each row that has no difficulty given its
    problem's estimate (from the most samples) in any of the files' difficulty side files: cells run
    without --difficulty-samples are binned by an estimate made in another eval of the same problems."""
    rows = [row for path in paths for row in read_rows(path)]
    known: dict[tuple[str, str], tuple[float, int]] = {}
    for path in paths:
        for d in read_rows(difficulty_path(path)):
            key = (d["model"], str(d["id"]))
            if d["samples"] > known.get(key, (0.0, 0))[1]:
                known[key] = (d["pass1"], d["samples"])
    for row in rows:
        estimate = known.get((row["model"], str(row["id"])))
        if row.get("bin") is None and estimate is not None:
            row.update(pass1=round(estimate[0], 4), difficulty_samples=estimate[1], bin=difficulty_bin(estimate[0]))
    return rows


def _row(
    problem: Problem,
    policy,
    tree: SearchTree,
    strategy: str,
    n: int,
    scorer: str,
    compute: dict,
    difficulty: tuple[float, int] | None,
) -> dict:
    candidates = tree.candidates()
    return {
        "id": problem.id,
        "model": policy.name,
        "n_params": policy.n_params,
        "strategy": strategy,
        "n": n,
        "scorer": scorer,
        "aggregation": tree.meta["config"].get("aggregation"),
        "selection": tree.meta.get("selection"),
        "answer": tree.meta.get("answer"),
        "reference": problem.answer,
        "correct": bool(tree.meta.get("correct")),
        "covered": any(bool(c.correct) for c in candidates),
        "candidates": len(candidates),
        "nodes": len(tree),
        "compute": compute,
        "pass1": None if difficulty is None else round(difficulty[0], 4),
        "difficulty_samples": None if difficulty is None else difficulty[1],
        "bin": None if difficulty is None else difficulty_bin(difficulty[0]),
        **({"auto": tree.meta["auto"]} if "auto" in tree.meta else {}),
    }


def _run(tree: SearchTree, policy, config: SearchConfig, scorer: str, grid: Grid) -> int:
    """Run a search; returns the prefill tokens of its first policy call (the prompt)."""
    prompt = None
    for event in search(
        tree,
        policy,
        config,
        scorer,
        template=grid.template,
        scorer_options=grid.scorer_options,
        auto_table=grid.auto_table,
    ):
        if prompt is None and isinstance(event, NodesAdded):
            prompt = tree.meta["compute"]["prefill_tokens"]
    return prompt or 0


def first_chains(tree: SearchTree, k: int) -> SearchTree:
    """The first k chains of an independent-chains tree, as a tree of their own."""
    keep_roots = tree.root.children[:k]
    sub = tree.copy()
    keep = {0}
    for first in keep_roots:
        node = tree.nodes[first]
        while True:
            keep.add(node.id)
            if not node.children:
                break
            node = tree.nodes[node.children[0]]
    sub.nodes = {i: n for i, n in sub.nodes.items() if i in keep}
    sub.root.children = list(keep_roots)
    return sub


def _share(compute: dict, generated: int, nodes: float, prompt: int) -> dict:
    """The compute of a subsample: its own generated tokens, the prompt once, its share of the rest
    of the prefill and of the scorer's tokens (by nodes)."""
    params = compute["policy_flops"] / max(compute["generated_tokens"] + compute["prefill_tokens"], 1)
    prefill = prompt + (compute["prefill_tokens"] - prompt) * nodes
    scorer_tokens = compute["scorer_tokens"] * nodes
    scorer_params = compute["scorer_flops"] / max(compute["scorer_tokens"], 1)
    out = {
        "generated_tokens": generated,
        "prefill_tokens": round(prefill),
        "scorer_tokens": round(scorer_tokens),
        "policy_flops": params * (generated + prefill),
        "scorer_flops": scorer_params * scorer_tokens,
        "wall_s": round(compute["wall_s"] * nodes, 3),
    }
    out["total_flops"] = out["policy_flops"] + out["scorer_flops"]
    return out


def problem_rows(problem: Problem, policy, grid: Grid, done: set, difficulty: tuple[float, int] | None):
    """Yield the rows one problem still needs (and, first, its difficulty when asked and unknown)."""
    cells = [c for c in grid.cells() if (policy.name, problem.id, *c) not in done]
    from_chains = [c for c in cells if get_strategy(c[0]).from_chains]
    chain_n = max([c[1] for c in from_chains] + ([grid.difficulty_samples] if difficulty is None else [0]))
    if chain_n:
        config = grid.config(CHAINS, chain_n)
        chains = new_tree(problem.question, config, "-", problem.answer, policy.name)
        prompt = _run(chains, policy, config, "-", grid)
        all_nodes = max(len(chains) - 1, 1)
        if difficulty is None and grid.difficulty_samples:
            sample = first_chains(chains, grid.difficulty_samples)
            right = sum(bool(n.correct) for n in sample.candidates())
            difficulty = (right / grid.difficulty_samples, grid.difficulty_samples)
            yield "difficulty", difficulty
        rescored: dict[str, SearchTree] = {}
        for strategy, n, scorer in from_chains:
            scored = get_strategy(strategy).uses_scorer
            if scored and scorer not in rescored:
                rescored[scorer] = rescore(
                    chains, scorer, grid.base.aggregation, policy, grid.template, grid.scorer_options
                )
            source = rescored[scorer] if scored else chains
            sub = first_chains(source, n)
            apply_selection(sub, get_strategy(strategy).adjust(grid.config(strategy, n)).selection)
            sub.meta["config"] = {**sub.meta.get("config", {}), "n": n, "strategy": strategy}
            nodes = (len(sub) - 1) / all_nodes
            compute = _share(chains.meta["compute"], sum(x.n_tokens for x in sub if x.id), nodes, prompt)
            if scored:
                extra = sub.meta.get("rescore", {}).get("compute", {})
                compute["scorer_tokens"] = round(extra.get("scorer_tokens", 0) * nodes)
                compute["scorer_flops"] = extra.get("scorer_flops", 0.0) * nodes
                compute["total_flops"] = compute["policy_flops"] + compute["scorer_flops"]
            yield "row", _row(problem, policy, sub, strategy, n, scorer, compute, difficulty)
    for strategy, n, scorer in cells:
        if get_strategy(strategy).from_chains:
            continue
        config = grid.config(strategy, n)
        tree = new_tree(problem.question, config, scorer, problem.answer, policy.name)
        _run(tree, policy, config, scorer, grid)
        yield "row", _row(problem, policy, tree, strategy, n, scorer, tree.meta["compute"], difficulty)


def _problems_rows(problems: list[Problem], policy, grid: Grid, done: set, estimates: dict, parallel: int):
    """(problem, kind, value) of every problem's missing rows (problem_rows), `parallel` problems at
    once on threads where the policy gains from serving several searches together (their
    searches share the engine's decode loop or the server's slots), else one after another."""
    if parallel <= 1 or not getattr(policy, "shares_searches", False):
        for problem in problems:
            for kind, value in problem_rows(problem, policy, grid, done, estimates[problem.id]):
                yield problem, kind, value
        return
    results: queue.Queue = queue.Queue()
    ended = object()

    def work(problem: Problem) -> None:
        try:
            for kind, value in problem_rows(problem, policy, grid, done, estimates[problem.id]):
                results.put((problem, kind, value))
            results.put((problem, ended, None))
        except BaseException as exc:  # raised in the caller's thread, once the rows before it are written
            results.put((problem, ended, exc))

    pool = ThreadPoolExecutor(parallel, thread_name_prefix="eval")
    try:
        for problem in problems:
            pool.submit(work, problem)
        for _ in problems:
            while (item := results.get())[1] is not ended:
                yield item
            if item[2] is not None:
                raise item[2]
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def run_grid(
    models: list[str], problems: list[Problem], grid: Grid, out_path: str, load, progress=True, parallel: int = 1
) -> list[dict]:
    """Every row of the grid, those in `out_path` kept and the missing ones made and appended;
    `parallel` problems at once (_problems_rows)."""
    from tqdm import tqdm

    side = difficulty_path(out_path)
    for path in (Path(out_path), side):
        drop_partial_line(path)
    rows = read_rows(out_path)
    done = {row_key(r) for r in rows}
    known = {(d["model"], str(d["id"]), d["samples"]): (d["pass1"], d["samples"]) for d in read_rows(side)}
    total = len(models) * len(problems) * len(grid.cells())
    wanted = {(str(p.id), *cell) for p in problems for cell in grid.cells()}
    # rows are keyed by the policy's name, known only once it is loaded: count the done cells of any model
    made = sum(1 for key in done if key[1:] in wanted)
    bar = tqdm(
        total=total, desc="eval", file=sys.stderr, dynamic_ncols=True, disable=not progress, initial=min(made, total)
    )
    with open(out_path, "a", encoding="utf-8") as out:
        for model in models:
            policy = load(model)
            own = replace(grid, template=grid.template or template_for(model, policy))
            estimates = {p.id: known.get((policy.name, p.id, grid.difficulty_samples)) for p in problems}
            for problem, kind, value in _problems_rows(problems, policy, own, done, estimates, parallel):
                if kind == "difficulty":
                    with open(side, "a", encoding="utf-8") as diff:  # made only when estimates are
                        record = {"model": policy.name, "id": problem.id, "pass1": value[0], "samples": value[1]}
                        diff.write(json.dumps(record) + "\n")
                    continue
                rows.append(value)
                done.add(row_key(value))
                out.write(json.dumps(value) + "\n")
                out.flush()
                bar.update(1)
    bar.close()
    return rows
