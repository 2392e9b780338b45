"""Step labels for training and evaluating a PRM, and the sequences they come on.

On the policy's own steps (a search tree run with a reference answer) two kinds of label:
gold-aligned (gold.py: the step's arithmetic holds and its results are values of the gold
solution, until the first step that is not) and Monte-Carlo (Math-Shepherd style: every
node's finished descendants are rollouts from it; the soft label is the share of them that
reach the reference, a finished path without an answer counting as not reaching it; the
hard label is whether any does). On perturbed gold steps, labels by construction: 1 before
the first wrong step, 0 from it on. A Sequence is one path to score in one forward pass; a
step whose label another sequence already carries has label None there. `target` reads the
label a PRM is trained on, by kind (LABEL_KINDS), so one set of features serves every kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..processbench import Sample, step_labels
from ..tree import SearchTree
from .gold import gold_labels

# the labels a probe can be trained on; on perturbed gold steps every kind is the construction label
LABEL_KINDS = ("gold", "mc-soft", "mc-hard", "gold+mc-soft")


@dataclass
class Sequence:
    question: str
    steps: list[str]
    labels: list[float | None]  # per step, gold-aligned or by construction; None: not a target in this sequence
    rollouts: list[int]  # per step: how many rollouts back its Monte-Carlo value (0 for labels by construction)
    source: str  # where it comes from, e.g. "rollouts/synthetic" or "perturbed/gsm8k"
    group: str  # the problem it belongs to (splits never cut a problem in two)
    kind: str = ""  # a perturbed sample's perturbation, or "correct"
    mc: list[float | None] | None = None  # per step, the Monte-Carlo value (policy steps only)
    answer_right: bool | None = None  # a policy chain: whether its answer is the reference


def mc_labels(tree: SearchTree) -> dict[int, tuple[float, int]]:
    """node id -> (share of the finished paths through the node whose answer is right, how many)."""
    hits: dict[int, int] = {}
    totals: dict[int, int] = {}
    for leaf in tree.candidates():
        for node in tree.path(leaf.id):
            totals[node.id] = totals.get(node.id, 0) + 1
            hits[node.id] = hits.get(node.id, 0) + bool(leaf.correct)
    return {i: (hits[i] / totals[i], totals[i]) for i in totals}


def tree_sequences(
    tree: SearchTree, source: str, group: str, gold_steps: list[str] | None = None, answer: str | None = None
) -> list[Sequence]:
    """One sequence per finished path; each node labelled in the first sequence that holds it,
    gold-aligned when the gold steps are given (else by its Monte-Carlo value)."""
    values = mc_labels(tree)
    seen: set[int] = set()
    out = []
    for leaf in tree.candidates():
        path = tree.path(leaf.id)
        texts = [n.text for n in path]
        gold = (
            gold_labels(tree.question, gold_steps, answer or tree.reference or "", texts)
            if gold_steps is not None
            else [values[n.id][0] for n in path]
        )
        fresh = [n.id not in seen for n in path]
        out.append(
            Sequence(
                tree.question,
                texts,
                [g if f else None for g, f in zip(gold, fresh)],
                [values[n.id][1] if f else 0 for n, f in zip(path, fresh)],
                source,
                group,
                mc=[values[n.id][0] if f else None for n, f in zip(path, fresh)],
                answer_right=bool(leaf.correct),
            )
        )
        seen.update(n.id for n in path)
    return out


def target(sequence: Sequence, step: int, kind: str) -> float | None:
    """The label of one step for training on `kind` (one of LABEL_KINDS)."""
    label = sequence.labels[step]
    if label is None or sequence.mc is None or kind == "gold":
        return label
    soft = sequence.mc[step]
    return {"mc-soft": soft, "mc-hard": float(soft > 0), "gold+mc-soft": (label + soft) / 2}[kind]


def sample_sequence(sample: Sample, source: str, group: str) -> Sequence:
    """A ProcessBench-style sample as a sequence: 1 before its first wrong step, 0 from it on."""
    labels = step_labels(sample)
    return Sequence(sample.problem, list(sample.steps), labels, [0] * len(labels), source, group, sample.kind)
