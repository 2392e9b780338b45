"""The spread of step scores over a typical tree: the page's default search on its examples,
grown once, then scored by each scorer (the same steps for all), printed as text histograms
side by side with the number of distinct values and the standard deviation inside the tree.

    python bench/score_spread.py [--examples 3] [--scorers smollm-probe,arithmetic,...]
"""

from __future__ import annotations

import argparse
import statistics

from tts_explorer.config import PAGE_DEFAULTS
from tts_explorer.diagnose import score_counts
from tts_explorer.policy.loading import load_policy
from tts_explorer.rescore import rescore
from tts_explorer.search import new_tree, run_to_end
from tts_explorer.ui.search_tab import example_rows

BINS = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--scorers", default="smollm-probe,smollm-probe-arith,arithmetic,confidence")
    args = parser.parse_args()
    scorers = args.scorers.split(",")
    policy = load_policy()
    pooled = {name: [] for name in scorers}
    for question, reference in example_rows()[: args.examples]:
        tree = new_tree(question, PAGE_DEFAULTS, scorers[0], reference, policy.name)
        run_to_end(tree, policy, PAGE_DEFAULTS, scorers[0])
        print(f"\n{question[:70]!r}: {len(tree) - 1} steps (page defaults: beam, N={PAGE_DEFAULTS.n})")
        for name in scorers:
            scored = rescore(tree, name, PAGE_DEFAULTS.aggregation, policy)
            scores = [n.score for n in scored if n.id and n.score is not None]
            pooled[name] += scores
            print(
                f"  {name:20s} distinct {len(set(round(s, 3) for s in scores)):3d}  "
                f"std {statistics.pstdev(scores):.3f}  mean {statistics.fmean(scores):.3f}"
            )
    print("\nall steps of these trees, per tenth of [0, 1] (one # per step):")
    for name in scorers:
        print(f"\n{name}")
        for i, count in enumerate(score_counts(pooled[name], BINS)):
            print(f"  {i / BINS:.1f}-{(i + 1) / BINS:.1f} {count:4d} {'#' * count}")


if __name__ == "__main__":
    main()
