"""Which way of choosing an answer from scored candidates is best? Chosen on one split, read on another.

For each problem, N independent chains are sampled once with eval's set-B settings (the trees of
`bench/confidence_votes.py`, shared with it and resumed), scored once by the default PRM (or
`--scorer`, with `--scorer-model` for a learned format's folder), and the answer is then chosen
from that one pool by every rule: majority vote, PRM-Max and PRM-Vote under each aggregation of
a path's step scores, and votes weighted by a power of the path score (between PRM-Vote, power
1, and PRM-Max, the limit). Each rule's accuracy is printed for a development split and a test
split side by side, with 95% intervals and the rule the development split picks, so a rule is
chosen where it is not measured.

Where the problems carry gold steps (the generator's files), the pools are also read by process:
a chain is process-right when the gold-aligned labeller (training/gold.py, the labels train-prm
trains on) passes every step of it. The bench prints how many right answers come through a step
the labeller calls wrong (its "wrong" is reliable: README, "The shipped PRM"), the coverage by
process-right chains, what an oracle of process reaches (a process-right chain's answer where
there is one, else majority), and the path score's ROC-AUC within problems against process
rather than against the answer: a PRM that judges steps must score a right answer reached
through a wrong step low.

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
from tts_explorer.data import read_rows
from tts_explorer.scaling.stats import wilson
from tts_explorer.selection import AGGREGATIONS, SELECTIONS
from tts_explorer.training.evaluate import paired_auc
from tts_explorer.training.gold import gold_labels

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


def process_view(data: str, problems, trees, comparer: Comparer, chosen: list[bool]) -> str:
    """The pools read by process (module docstring), with where `chosen` (the shipped rule's hits)
    is right, or a line saying the problems carry no gold steps."""
    gold = {str(row.get("id")): row.get("steps") for row in read_rows(data, 0, 10**6)}
    if not all(isinstance(gold.get(p.id), list) for p in problems):
        return "process: the problems carry no gold steps"
    right = process_right = lucky = covered = oracle = hits_with = 0
    groups = []
    fold = AGGREGATIONS[SearchConfig.aggregation].fold
    for problem, hit in zip(problems, chosen):
        finished = [path for path in chains(trees[problem.id]) if path[-1].answer is not None]
        kinds = []
        for path in finished:
            steps = [n.text for n in path]
            ok = comparer.equivalent(path[-1].answer, problem.answer)
            sound = all(gold_labels(problem.question, gold[problem.id], problem.answer, steps))
            kinds.append((path, ok, sound))
            right, lucky, process_right = right + ok, lucky + (ok and not sound), process_right + sound
        has = any(sound for _, _, sound in kinds)
        majority = vote([(path[-1].answer, 1.0) for path, _, _ in kinds], comparer) if kinds else None
        covered, hits_with = covered + has, hits_with + (has and hit)
        oracle += has or (majority is not None and comparer.equivalent(majority, problem.answer))
        scored = [(path, sound) for path, _, sound in kinds if any(n.score is not None for n in path)]
        groups.append([(fold([n.score for n in path if n.score is not None]), sound) for path, sound in scored])
    auc, both = paired_auc(groups)
    n = len(problems)
    return (
        f"process: {right} chains with the right answer, {lucky} of them through a step the labeller calls wrong; "
        f"{process_right} process-right chains; coverage by them {100 * covered / n:.1f}%, "
        f"an oracle of process (else majority) {100 * oracle / n:.1f}%; the shipped rule right on {hits_with} "
        f"problems with a process-right chain, {sum(chosen) - hits_with} without; path AUC within problems "
        f"({SearchConfig.aggregation}) against process " + ("-" if auc is None else f"{auc:.3f} ({both} problems)")
    )


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
    default = f"{SearchConfig.aggregation}: {SELECTIONS[SearchConfig.selection].label}"  # the shipped rule
    results = []
    for spec in (args.dev, args.test):
        data, problems, scored = split(spec, args.limit, args.n, args.scorer, args.scorer_model)
        pooled = pools(problems, scored)
        hits = accuracy(problems, pooled, comparer)
        results.append(
            (
                data,
                len(problems),
                hits,
                path_auc(problems, pooled, comparer),
                process_view(data, problems, scored, comparer, hits[default]),
            )
        )
    (dev_name, dev_n, dev, dev_auc, dev_process), (test_name, test_n, test, test_auc, test_process) = results
    print(f"best-of-{args.n} pools scored by {args.scorer}: dev {dev_name} ({dev_n}), test {test_name} ({test_n})")
    print(f"{'selection':<32}{'dev':>22}{'test':>22}   test against {default} (won / lost)")
    for name in dev:
        print(f"{name:<32}{label(dev[name]):>22}{label(test[name]):>22}   {paired(test[name], test[default])}")
    chosen = max((name for name in dev if not name.startswith("coverage")), key=lambda k: sum(dev[k]))
    print(f"chosen on dev: {chosen} ({label(dev[chosen])}); on test {label(test[chosen])}")
    print(f"on test against majority (won / lost): {paired(test[chosen], test['majority'])}")
    for name in AGGREGATIONS:
        print(f"path AUC within problems, {name}: dev {dev_auc[name]}, test {test_auc[name]}")
    print(f"dev {dev_process}\ntest {test_process}")


def paired(rule: list[bool], base: list[bool]) -> str:
    """Problems `rule` gets right where `base` does not, and the other way."""
    won = sum(r and not b for r, b in zip(rule, base))
    return f"{won} / {sum(b and not r for r, b in zip(rule, base))}"


if __name__ == "__main__":
    main()
