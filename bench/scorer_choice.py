"""Which offline scorer makes the best default for the embedded policy?

For each problem, N chains are sampled once (majority-vote sampling, no scorer); the same
candidates are then re-scored by every scorer and aggregation, and the answer chosen by
PRM-Max and PRM-Vote is compared with majority vote and with a random pick (the mean
correctness of the pool). Prints one table; writes the trees with --out.

    python bench/scorer_choice.py --data assets/problems/easy.jsonl --n 16 --limit 50
"""

from __future__ import annotations

import argparse
import sys
import time

from tts_explorer.answers import equivalent
from tts_explorer.config import SearchConfig
from tts_explorer.data import read_problems
from tts_explorer.policy.loading import load_policy
from tts_explorer.rescore import reaggregate, rescore
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.selection import apply_selection


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", default="assets/problems/easy.jsonl")
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--scorers", default="arithmetic,confidence,judge,mc-rollout")
    parser.add_argument("--aggregations", default="last,min,avg,prod")
    parser.add_argument("--rollout-limit", type=int, default=20, help="problems scored by mc-rollout (costly)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    policy = load_policy()
    problems, _ = read_problems(args.data, args.limit)
    scorers = args.scorers.split(",")
    aggregations = args.aggregations.split(",")
    hits: dict[str, list[float]] = {}
    cost: dict[str, float] = {}
    out = open(args.out, "w") if args.out else None
    for index, problem in enumerate(problems):
        config = SearchConfig(strategy="majority", n=args.n, max_steps=8, step_tokens=96, final_tokens=128)
        tree = new_tree(problem.question, config, "arithmetic", problem.answer, policy.name)
        run_to_end(tree, policy, config, "arithmetic")
        hits.setdefault("majority vote", []).append(float(tree.meta["correct"]))
        pool = tree.candidates()
        hits.setdefault("random pick", []).append(
            sum(bool(n.answer and equivalent(n.answer, problem.answer)) for n in pool) / max(len(pool), 1)
        )
        for scorer in scorers:
            if scorer.startswith("mc-rollout") and index >= args.rollout_limit:
                continue
            started = time.perf_counter()
            scored = rescore(tree, scorer, aggregations[0], policy)
            cost[scorer] = cost.get(scorer, 0.0) + time.perf_counter() - started
            for aggregation in aggregations:
                reaggregate(scored, aggregation)
                for how in ("prm_max", "prm_vote"):
                    apply_selection(scored, how)
                    hits.setdefault(f"{scorer} / {aggregation} / {how}", []).append(float(scored.meta["correct"]))
        if out:
            out.write(tree.to_json() + "\n")
        print(
            f"[{index + 1}/{len(problems)}] majority so far "
            f"{100 * sum(hits['majority vote']) / len(hits['majority vote']):.1f}%",
            file=sys.stderr,
            flush=True,
        )
    print(
        f"best-of-{args.n} on {args.data} ({len(problems)} problems; mc-rollout on the first "
        f"{min(args.rollout_limit, len(problems))}), embedded policy"
    )
    print(f"{'selection':<40}{'accuracy':>10}{'problems':>10}")
    for name, values in hits.items():
        print(f"{name:<40}{100 * sum(values) / len(values):>9.1f}%{len(values):>10}")
    print(
        "scoring time per problem: "
        + ", ".join(
            f"{s} {cost.get(s, 0) / max(len(hits.get(f'{s} / {aggregations[0]} / prm_max', [])), 1):.2f} s"
            for s in scorers
        )
    )
    if out:
        out.close()


if __name__ == "__main__":
    main()
