"""Synthetic search trees of any size, for render benchmarks and tests of drawing."""

from __future__ import annotations

import random

from .tree import SearchTree


def synthetic_tree(n_nodes: int, width: int = 4, seed: int = 0):
    """A beam-search-shaped tree of about n_nodes nodes with random scores and statuses."""
    rng = random.Random(seed)
    tree = SearchTree("A synthetic problem", meta={"config": {"max_steps": 99}})
    frontier = [0]
    iteration = 0
    while len(tree) < n_nodes:
        new = []
        for parent in frontier:
            for _ in range(width):
                if len(tree) >= n_nodes:
                    break
                score = rng.random()
                new.append(
                    tree.add(
                        parent,
                        text=f"step {iteration} <i>{rng.random():.3f}</i>",
                        score=score,
                        agg_score=score,
                        iteration=iteration,
                        n_tokens=rng.randrange(5, 40),
                    )
                )
        for node in new:
            node.status = "pruned"
        keep = sorted(new, key=lambda n: -n.score)[: max(1, len(new) // 2)]
        for node in keep:
            node.status = "active"
        frontier = [n.id for n in keep]
        iteration += 1
    for node in tree.leaves():
        if node.status == "active":
            node.status, node.stop_reason, node.answer = "finished", "answer", str(rng.randrange(3))
    return tree
