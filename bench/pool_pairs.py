"""Scorers side by side on one best-of-N pool, problem by problem: the chains of
`bench/confidence_votes.py` as `bench/selection_choice.py` kept them scored (CHAINS.LABEL.jsonl,
LABEL the scorer, or `probe-FOLDER` for a learned format's folder), each chosen from by `min` +
PRM-Vote; per scorer its accuracy and the problems it wins and loses against the first scorer and
against majority on the same chains.

    python bench/pool_pairs.py assets/problems/synthetic-s11.jsonl=assets/scaling/set-b/confidence-votes-chains.jsonl \\
        --labels smollm-probe,probe-rank-alone,probe-rank-followed
"""

from __future__ import annotations

import argparse
from pathlib import Path

from confidence_votes import kept_trees, sampled_chains
from selection_choice import accuracy, label, paired, pools

from tts_explorer.answers import Comparer

RULE = "min: PRM-Vote"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("pool", help="PROBLEMS.jsonl=CHAINS.jsonl")
    parser.add_argument("--labels", required=True, help="comma-separated: the scored files' labels, first the base")
    parser.add_argument("--n", type=int, default=16)
    args = parser.parse_args()
    data, _, chains_file = args.pool.partition("=")
    problems, _ = sampled_chains(data, 100, args.n, Path(chains_file))
    comparer = Comparer()
    results = {}
    for name in (x.strip() for x in args.labels.split(",") if x.strip()):
        scored_file = Path(f"{chains_file}.{name}.jsonl")
        if not scored_file.exists():
            raise SystemExit(f"no scores kept as {scored_file}: run bench/selection_choice.py with that scorer first")
        results[name] = accuracy(problems, pools(problems, kept_trees(problems, scored_file, None, "")), comparer)
    first = next(iter(results))
    base = results[first]
    coverage = label(base["coverage (any chain right)"])
    print(f"{data}: {len(problems)} problems; majority {label(base['majority'])}; coverage {coverage}")
    for name, hits in results.items():
        print(
            f"  {name:<24} {RULE} {label(hits[RULE]):>22}   against {first} {paired(hits[RULE], base[RULE])}"
            f"   against majority {paired(hits[RULE], hits['majority'])}"
        )


if __name__ == "__main__":
    main()
