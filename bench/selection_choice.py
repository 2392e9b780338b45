"""Which way of choosing an answer from scored candidates is best? Chosen on one split, read on another.

For each problem, N independent chains are sampled once with eval's set-B settings (the trees of
`bench/confidence_votes.py`, shared with it and resumed), scored once by the default PRM (or
`--scorer`, with `--scorer-model` for a learned format's folder), and the answer is then chosen
from that one pool by every rule: majority vote, PRM-Max and PRM-Vote under each aggregation of
a path's step scores, and votes weighted by a power of the path score (between PRM-Vote, power
1, and PRM-Max, the limit). Each rule's accuracy is printed for a development split and a test
split side by side, with 95% intervals and the rule the development split picks, so a rule is
chosen where it is not measured.

    python bench/selection_choice.py \
        --dev assets/problems/synthetic-s13.jsonl=assets/scaling/s13-chains.jsonl \
        --test assets/problems/synthetic-s11.jsonl=assets/scaling/set-b/confidence-votes-chains.jsonl
"""

from __future__ import annotations

import argparse
from pathlib import Path

from confidence_votes import chains, kept_trees, sampled_chains, vote

from tts_explorer.answers import Comparer
from tts_explorer.config import SearchConfig
from tts_explorer.scaling.stats import wilson
from tts_explorer.selection import AGGREGATIONS, SELECTIONS
from tts_explorer.training.evaluate import paired_auc

POWERS = (2, 4, 8, 16)


def scored_trees(problems, trees, scorer: str, out: Path, options: dict | None = None) -> dict:
    """The trees scored by `scorer` (min aggregation; the step scores are what the rules read; a
    learned format's model in `options`), from `out` where it holds them, else scored here and
    appended to it."""
    from tts_explorer.rescore import rescore

    return kept_trees(
        problems, out, lambda policy, p: rescore(trees[p.id], scorer, "min", policy, scorer_options=options), "scored"
    )


def rules() -> dict:
    """name -> (pool of (answer, step scores) -> [(answer, weight)] for a weighted vote)."""
    out = {"majority": lambda pool: [(a, 1.0) for a, _ in pool]}
    for name, aggregation in AGGREGATIONS.items():
        fold = aggregation.fold

        def best(pool, fold=fold):
            top = max(fold(s) for _, s in pool)
            return [(a, 1.0) for a, s in pool if fold(s) == top][:1]

        out[f"{name}: {SELECTIONS['prm_max'].label}"] = best
        out[f"{name}: {SELECTIONS['prm_vote'].label}"] = lambda pool, fold=fold: [(a, fold(s)) for a, s in pool]
        for power in POWERS:
            out[f"{name}: vote of score^{power}"] = lambda pool, fold=fold, p=power: [
                (a, fold(s) ** p) for a, s in pool
            ]
    return out


def pools(problems, trees) -> list[list[tuple[str, list[float]]]]:
    """Each problem's finished chains that have scores: (answer, step scores)."""
    out = []
    for problem in problems:
        pool = [
            (path[-1].answer, [n.score for n in path if n.score is not None])
            for path in chains(trees[problem.id])
            if path[-1].answer is not None
        ]
        out.append([(a, s) for a, s in pool if s])
    return out


def path_auc(problems, pooled, comparer: Comparer) -> dict[str, str]:
    """Per aggregation: the path score's ROC-AUC between right and wrong chains of the same problem
    (pairs pooled over the problems that have both, as train-prm's held-out evaluation counts it)."""
    right = [[comparer.equivalent(a, problem.answer) for a, _ in pool] for problem, pool in zip(problems, pooled)]
    out = {}
    for name, aggregation in AGGREGATIONS.items():
        groups = [[(aggregation.fold(s), ok) for (_, s), ok in zip(pool, oks)] for pool, oks in zip(pooled, right)]
        auc, both = paired_auc(groups)
        out[name] = "- (no problem with both)" if auc is None else f"{auc:.3f} ({both} problems)"
    return out


def accuracy(problems, pooled, comparer: Comparer) -> dict[str, list[bool]]:
    hits: dict[str, list[bool]] = {}
    chooses = rules()
    for problem, pool in zip(problems, pooled):
        hits.setdefault("coverage (any chain right)", []).append(
            any(comparer.equivalent(a, problem.answer) for a, _ in pool)
        )
        for name, weigh in chooses.items():
            answer = vote(weigh(pool), comparer) if pool else None
            hits.setdefault(name, []).append(answer is not None and comparer.equivalent(answer, problem.answer))
    return hits


def split(spec: str, limit: int, n: int, scorer: str, model: str | None):
    """(data, problems, their chains scored), the scores kept beside the chains file, named by the
    scorer (a learned format's model: by its folder's name)."""
    data, _, chains_file = spec.partition("=")
    problems, trees = sampled_chains(data, limit, n, Path(chains_file))
    label = scorer if model is None else f"{scorer}-{Path(model).name}"
    options = None if model is None else {"model": model}
    scored = scored_trees(problems, trees, scorer, Path(chains_file + f".{label}.jsonl"), options)
    return data, problems, scored


def label(values: list[bool]) -> str:
    low, high = wilson(sum(values), len(values))
    return f"{100 * sum(values) / len(values):.1f}% [{100 * low:.1f}, {100 * high:.1f}]"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dev", required=True, help="PROBLEMS.jsonl=CHAINS.jsonl (chains resumed or sampled)")
    parser.add_argument("--test", required=True, help="PROBLEMS.jsonl=CHAINS.jsonl")
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--scorer", default="smollm-probe")
    parser.add_argument("--scorer-model", help="a learned format's model folder (the scores kept by its name)")
    args = parser.parse_args()
    comparer = Comparer()
    results = []
    for spec in (args.dev, args.test):
        data, problems, scored = split(spec, args.limit, args.n, args.scorer, args.scorer_model)
        pooled = pools(problems, scored)
        results.append(
            (data, len(problems), accuracy(problems, pooled, comparer), path_auc(problems, pooled, comparer))
        )
    (dev_name, dev_n, dev, dev_auc), (test_name, test_n, test, test_auc) = results
    print(f"best-of-{args.n} pools scored by {args.scorer}: dev {dev_name} ({dev_n}), test {test_name} ({test_n})")
    default = f"{SearchConfig.aggregation}: {SELECTIONS[SearchConfig.selection].label}"  # the shipped rule
    print(f"{'selection':<32}{'dev':>22}{'test':>22}   test against {default} (won / lost)")
    for name in dev:
        print(f"{name:<32}{label(dev[name]):>22}{label(test[name]):>22}   {paired(test[name], test[default])}")
    chosen = max((name for name in dev if not name.startswith("coverage")), key=lambda k: sum(dev[k]))
    print(f"chosen on dev: {chosen} ({label(dev[chosen])}); on test {label(test[chosen])}")
    print(f"on test against majority (won / lost): {paired(test[chosen], test['majority'])}")
    for name in AGGREGATIONS:
        print(f"path AUC within problems, {name}: dev {dev_auc[name]}, test {test_auc[name]}")


def paired(rule: list[bool], base: list[bool]) -> str:
    """Problems `rule` gets right where `base` does not, and the other way."""
    won = sum(r and not b for r, b in zip(rule, base))
    return f"{won} / {sum(b and not r for r, b in zip(rule, base))}"


if __name__ == "__main__":
    main()
