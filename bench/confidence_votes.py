"""Why does DeepConf fall below majority vote? Its vote and its stop rule, taken apart on one pool.

For each problem, N independent chains are sampled once, exactly as eval's majority rows are
(same settings and seed). On that one pool every way of weighing a chain by the policy's own
confidence is compared with plain majority: a vote weighted by the chain's confidence, and a
majority over the most confident chains only (DeepConf's filtering), for three measures of a
chain's confidence:

- `step mean`: exp of the mean of its steps' mean token log-probs (each step counts once);
- `token mean`: exp of the mean log-prob over all its tokens (long steps count more);
- `lowest window`: the lowest mean over two consecutive steps (DeepConf's lowest group
  confidence, with steps as the groups).

DeepConf online's stop rule is then simulated on the same pool: the first `--warmup` chains set
the threshold, each other chain is cut at the first step whose running confidence falls below it
and loses its vote. Stopping only removes chains, so the simulation is what the online run
would do with these samples. Trees go to --out (resumed when it exists).

    python bench/confidence_votes.py --data assets/problems/synthetic-s11.jsonl --limit 53 \
        --out assets/scaling/set-b/confidence-votes-chains.jsonl
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

from tts_explorer.answers import Comparer
from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.scaling.stats import wilson
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.selection import steps_confidence as step_mean
from tts_explorer.strategies.deepconf import WINDOW, quantile, window_confidence
from tts_explorer.tree import SearchTree
from tts_explorer.treefile import read_tree


def chains(tree: SearchTree) -> list[list]:
    """Each chain's nodes from its first step to its leaf."""
    return [tree.path(n.id) for n in tree if n.id and not n.children]


def token_mean(path) -> float:
    known = [(n.mean_logprob, n.n_tokens) for n in path if n.mean_logprob is not None and n.n_tokens]
    total = sum(t for _, t in known)
    return math.exp(min(0.0, sum(lp * t for lp, t in known) / total)) if total else 0.0


def windows(path) -> list[float]:
    """The running confidence after each step, as DeepConf computes it online."""
    return [window_confidence(path[max(0, i + 1 - WINDOW) : i + 1]) for i in range(len(path))]


def lowest_window(path) -> float:
    return min(windows(path), default=0.0)


MEASURES: dict[str, Callable] = {"step mean": step_mean, "token mean": token_mean, "lowest window": lowest_window}


def vote(pool: list[tuple[str, float]], comparer: Comparer) -> str | None:
    """The answer with the largest summed weight (the earliest answer wins ties)."""
    if not pool:
        return None
    groups = comparer.group([a for a, _ in pool])
    best = max(groups, key=lambda g: sum(pool[i][1] for i in g))
    return pool[best[0]][0]


def top(pool: list[tuple[str, float]], share: float) -> list[tuple[str, float]]:
    """The most confident `share` of the pool (at least one), in the pool's order."""
    keep = max(1, math.ceil(share * len(pool)))
    cut = sorted((w for _, w in pool), reverse=True)[keep - 1]
    return [(a, w) for a, w in pool if w >= cut]


def deepconf_pool(paths: list[list], warmup: int, q: float) -> tuple[list, int, int]:
    """(finished chains that keep their vote, tokens generated, tokens the stop rule spared)."""
    lowest = [min(windows(p), default=0.0) for p in paths[:warmup]]
    threshold = quantile(lowest, q)
    kept, generated, spared = list(paths[:warmup]), sum(n.n_tokens for p in paths[:warmup] for n in p), 0
    for path in paths[warmup:]:
        running = windows(path)
        cut = next((i for i, value in enumerate(running) if value < threshold), None)
        if cut is None:
            kept.append(path)
            generated += sum(n.n_tokens for n in path)
        else:
            generated += sum(n.n_tokens for n in path[: cut + 1])
            spared += sum(n.n_tokens for n in path[cut + 1 :])
    return kept, generated, spared


def kept_trees(problems, out: Path, make: Callable, what: str) -> dict[str, SearchTree]:
    """Trees by problem id, read from `out` (one JSON line each) where it holds them, the missing
    ones made by make(policy, problem) on the embedded policy and appended to it (resumable)."""
    trees = {}
    if out.exists():
        for line in out.read_text().splitlines():
            tree = read_tree(line)
            trees[tree.meta["problem_id"]] = tree
    missing = [p for p in problems if p.id not in trees]
    if missing:
        from tts_explorer.policy.loading import load_policy

        policy = load_policy()
        with out.open("a") as sink:
            for index, problem in enumerate(missing):
                tree = make(policy, problem)
                tree.meta["problem_id"] = problem.id
                sink.write(tree.to_json() + "\n")
                sink.flush()
                trees[problem.id] = tree
                print(f"{what} [{index + 1}/{len(missing)}] {problem.id}", file=sys.stderr, flush=True)
    return trees


def sampled_chains(data: str, limit: int, n: int, out: Path) -> tuple[list, dict[str, SearchTree]]:
    """(problems, their trees of n independent chains by problem id), sampled with eval's set-B
    settings (README, "Held-out set B"; eval's majority rows come from such chains) where `out`
    does not hold them yet, and appended to it."""
    problems, _ = read_problems(data, limit)
    config = SearchConfig(strategy="majority", n=n, beam_width=4, max_steps=6, step_tokens=64, final_tokens=96)

    def sample(policy, problem) -> SearchTree:
        tree = new_tree(problem.question, config, "-", problem.answer, policy.name)
        run_to_end(tree, policy, config, "-")
        return tree

    return problems, kept_trees(problems, out, sample, "sampled")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="assets/problems/synthetic-s11.jsonl")
    parser.add_argument("--limit", type=int, default=53)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=SearchConfig.warmup)
    parser.add_argument("--quantile", type=float, default=SearchConfig.confidence_quantile)
    parser.add_argument("--out", required=True, help="the chains' trees, one JSON line per problem (resumed)")
    args = parser.parse_args()
    problems, trees = sampled_chains(args.data, args.limit, args.n, Path(args.out))
    comparer = Comparer()
    hits: dict[str, list[bool]] = {}
    tokens: dict[str, list[int]] = {}

    def record(name: str, answer: str | None, reference: str, spent: int) -> None:
        hits.setdefault(name, []).append(answer is not None and comparer.equivalent(answer, reference))
        tokens.setdefault(name, []).append(spent)

    for problem in problems:
        tree = trees[problem.id]
        paths = chains(tree)
        spent = sum(n.n_tokens for p in paths for n in p)
        finished = [p for p in paths if p[-1].answer is not None]
        record(
            "coverage (any chain right)",
            next((p[-1].answer for p in finished if comparer.equivalent(p[-1].answer, problem.answer)), None),
            problem.answer,
            spent,
        )
        record("majority", vote([(p[-1].answer, 1.0) for p in finished], comparer), problem.answer, spent)
        for name, measure in MEASURES.items():
            pool = [(p[-1].answer, measure(p)) for p in finished]
            record(f"{name}: weighted vote", vote(pool, comparer), problem.answer, spent)
            record(
                f"{name}: majority of top 50%",
                vote([(a, 1.0) for a, _ in top(pool, 0.5)], comparer),
                problem.answer,
                spent,
            )
            record(
                f"{name}: majority of top 90%",
                vote([(a, 1.0) for a, _ in top(pool, 0.9)], comparer),
                problem.answer,
                spent,
            )
        kept, generated, spared = deepconf_pool(paths, args.warmup, args.quantile)
        kept = [p for p in kept if p[-1].answer is not None]
        record(
            "DeepConf stop rule + majority",
            vote([(p[-1].answer, 1.0) for p in kept], comparer),
            problem.answer,
            generated,
        )
        record(
            "DeepConf stop rule + step-mean vote (shipped)",
            vote([(p[-1].answer, step_mean(p)) for p in kept], comparer),
            problem.answer,
            generated,
        )
    print(f"{len(problems)} problems of {args.data}, {args.n} independent chains each (one pool per problem)")
    print(f"{'selection':<48}{'accuracy [95% CI]':>24}{'tokens/problem':>16}")
    for name, values in hits.items():
        low, high = wilson(sum(values), len(values))
        label = f"{100 * sum(values) / len(values):.1f}% [{100 * low:.1f}, {100 * high:.1f}]"
        print(f"{name:<48}{label:>24}{sum(tokens[name]) / len(values):>16.0f}")
    right = [
        (step_mean(p), token_mean(p), len(p), comparer.equivalent(p[-1].answer, pr.answer))
        for pr in problems
        for p in chains(trees[pr.id])
        if p[-1].answer is not None
    ]
    for label, index in (("step mean", 0), ("token mean", 1), ("steps", 2)):
        good = [r[index] for r in right if r[3]]
        bad = [r[index] for r in right if not r[3]]
        mean_good, mean_bad = sum(good) / max(len(good), 1), sum(bad) / max(len(bad), 1)
        print(f"{label} (mean): right chains {mean_good:.3f} (n={len(good)}), wrong {mean_bad:.3f} (n={len(bad)})")


if __name__ == "__main__":
    main()
