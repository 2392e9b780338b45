"""Step labels for training and evaluating a PRM, and the sequences they come on.

Two sources. Monte-Carlo labels on the policy's own steps (Math-Shepherd style): in a
search tree run with a reference answer, every node's finished descendants are rollouts
from it, and its label is the share of them that reach the reference (a finished path
without an answer counts as not reaching it); each label says how many rollouts back it.
Labels by construction on perturbed gold steps: 1 before the first wrong step, 0 from it on.
A Sequence is one path to score in one forward pass; a step whose label another sequence
already carries has label None there.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..processbench import Sample
from ..tree import SearchTree


@dataclass
class Sequence:
    question: str
    steps: list[str]
    labels: list[float | None]  # per step; None: not a training target in this sequence
    rollouts: list[int]  # per step: how many rollouts back the label (0 for labels by construction)
    source: str  # where it comes from, e.g. "rollouts/synthetic" or "perturbed/gsm8k"
    group: str  # the problem it belongs to (splits never cut a problem in two)
    kind: str = ""  # a perturbed sample's perturbation, or "correct"


def mc_labels(tree: SearchTree) -> dict[int, tuple[float, int]]:
    """node id -> (share of the finished paths through the node whose answer is right, how many)."""
    hits: dict[int, int] = {}
    totals: dict[int, int] = {}
    for leaf in tree.candidates():
        for node in tree.path(leaf.id):
            totals[node.id] = totals.get(node.id, 0) + 1
            hits[node.id] = hits.get(node.id, 0) + bool(leaf.correct)
    return {i: (hits[i] / totals[i], totals[i]) for i in totals}


def tree_sequences(tree: SearchTree, source: str, group: str) -> list[Sequence]:
    """One sequence per finished path; each node labelled in the first sequence that holds it."""
    labels = mc_labels(tree)
    seen: set[int] = set()
    out = []
    for leaf in tree.candidates():
        path = tree.path(leaf.id)
        out.append(Sequence(tree.question, [n.text for n in path],
                            [None if n.id in seen else labels[n.id][0] for n in path],
                            [0 if n.id in seen else labels[n.id][1] for n in path], source, group))
        seen.update(n.id for n in path)
    return out


def sample_sequence(sample: Sample, source: str, group: str) -> Sequence:
    """A ProcessBench-style sample as a sequence: 1 before its first wrong step, 0 from it on."""
    first_wrong = len(sample.steps) if sample.label == -1 else sample.label
    labels = [1.0 if i < first_wrong else 0.0 for i in range(len(sample.steps))]
    return Sequence(sample.problem, list(sample.steps), labels, [0] * len(labels), source, group, sample.kind)
