"""Counterfactual edits: a visitor writes their own version of a step (or a new step beside
it), and sees what the PRM makes of it.

The edit never changes what the model wrote: it becomes a new node beside the original
(same parent), marked `edited`, classified like a model's step (an answer the reader can
parse ends its path) and scored by the tree's scorer. Beside it, a preview: the original
step and every step below it scored again as if the edit stood in the original's place,
old and new scores side by side, and the path score under each aggregation. A search can
then continue from the edited node (search(start=...)).
"""

from __future__ import annotations

from dataclasses import dataclass

from .answers import extract_answer
from .config import check_text
from .errors import UserError
from .scorers.base import Scorer, StepPath
from .selection import AGGREGATIONS, aggregate
from .tree import Node, SearchTree

MAX_EDIT_CHARS = 2000
MAX_PREVIEW = 100  # nodes below the edit scored again in the preview (a scorer may run a model per node)


@dataclass
class EditResult:
    node: Node  # the new, edited node
    rows: list[dict]  # per original node (the edited one, then those below it): old and new scores
    paths: dict[str, tuple[float | None, float | None]]  # aggregation -> (original path score, edited path score)


def _path(tree: SearchTree, root_prompt: str, steps: list[str], logprobs: list, ended: bool) -> StepPath:
    return StepPath(tree.question, root_prompt, tuple(steps), tuple(logprobs), ended)


def edit_step(tree: SearchTree, node_id: int, text, scorer: Scorer, aggregation: str, root_prompt: str) -> EditResult:
    """Add the visitor's step beside node `node_id` (a new first step when it is the root) and score it."""
    if not isinstance(node_id, int) or isinstance(node_id, bool) or node_id not in tree.nodes:
        raise UserError("choose a node of the tree first (click it)")
    if aggregation not in AGGREGATIONS:
        raise UserError(f"unknown aggregation; valid: {', '.join(AGGREGATIONS)}")
    text = check_text(text, "the edited step", MAX_EDIT_CHARS)
    original = tree.nodes[node_id]
    parent = tree.root if node_id == 0 else tree.nodes[original.parent]
    answer = extract_answer(text)
    prefix = tree.path(parent.id)
    steps = [n.text for n in prefix] + [text]
    logprobs = [n.mean_logprob for n in prefix] + [None]
    score = float(scorer.score_last([_path(tree, root_prompt, steps, logprobs, answer is not None)])[0])
    rows = []
    below = [] if node_id == 0 else _subtree(tree, original)[:MAX_PREVIEW]
    if below:  # scored before the edit joins the tree: a run stopped here leaves the tree as it was
        paths = []
        for node in below:
            chain = tree.path(node.id)
            at = chain.index(original)
            steps = [text if i == at else n.text for i, n in enumerate(chain)]
            logprobs = [None if i == at else n.mean_logprob for i, n in enumerate(chain)]
            paths.append(_path(tree, root_prompt, steps, logprobs, node.terminal))
        for node, value in zip(below, scorer.score_last(paths)):
            rows.append({"node": node.id, "step": node.text, "old": node.score, "new": round(float(value), 4)})
    new = tree.add(
        parent.id,
        text=text,
        score=round(score, 4),
        edited=True,
        iteration=max(n.iteration for n in tree) + 1,
        stop_reason="answer" if answer else "step",
        answer=answer,
        status="finished" if answer else "active",
        subtree=parent.subtree,
    )
    new.agg_score = aggregate([n.score for n in tree.path(new.id)], aggregation)
    original_path = tree.path(original.id) if node_id else []
    edited_path = tree.path(new.id)
    summary = {
        how: (
            aggregate([n.score for n in original_path], how) if original_path else None,
            aggregate([n.score for n in edited_path], how),
        )
        for how in AGGREGATIONS
    }
    return EditResult(new, rows, summary)


def _subtree(tree: SearchTree, node: Node) -> list[Node]:
    """The node and every node below it, depth-first."""
    out, stack = [], [node]
    while stack:
        current = stack.pop()
        out.append(current)
        stack.extend(tree.nodes[c] for c in reversed(current.children))
    return out
