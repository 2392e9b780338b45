"""Pure views around the tree: status line, clicked-path panel, candidates table, compute.

Everything that came from a visitor or a model is HTML-escaped here.
"""
from __future__ import annotations

import html

from ..selection import tally
from ..tree import SearchTree

CANDIDATE_COLUMNS = ["node", "answer", "path score", "votes", "PRM-Vote sum", "correct", "chosen"]


def _f(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def status_line(tree: SearchTree | None, state: str, iteration: int | None = None) -> str:
    if tree is None:
        return state
    config = tree.meta.get("config", {})
    parts = [state]
    if iteration is not None:
        parts.append(f"step {iteration + 1} of {config.get('max_steps', '?')}")
    parts.append(f"{len(tree) - 1} nodes")
    if "answer" in tree.meta:
        answer = tree.meta["answer"]
        verdict = {True: " ✓ right", False: " ✗ wrong"}.get(tree.meta.get("correct"), "")
        parts.append(f"answer: {html.escape(str(answer)) if answer is not None else 'none'}{verdict}")
    return " · ".join(parts)


def path_html(tree: SearchTree | None, node_id: int | None) -> str:
    """The path from the root to a node: every step with its score, escaped."""
    if tree is None or node_id is None or node_id not in tree.nodes:
        return "<p class='tts-hint'>Click a node of the tree to see its path.</p>"
    node = tree.nodes[node_id]
    if node_id == 0:
        return f"<div class='tts-path'><h4>Problem</h4><p>{html.escape(tree.question)}</p></div>"
    items = []
    for step in tree.path(node_id):
        text = html.escape(step.text.strip()).replace("\n", "<br>")
        items.append(f"<li data-node='{step.id}'><div class='tts-step'>{text}</div>"
                     f"<div class='tts-meta'>step score {_f(step.score)} · path score {_f(step.agg_score)}"
                     f" · {step.n_tokens} tokens · {step.status}</div></li>")
    answer = ""
    if node.answer is not None:
        verdict = {True: " (right)", False: " (wrong)"}.get(node.correct, "")
        answer = f"<p class='tts-answer'>Answer: <b>{html.escape(node.answer)}</b>{verdict}</p>"
    return (f"<div class='tts-path' id='path-panel' data-node='{node_id}'>"
            f"<h4>Path to node {node_id} (path score {_f(node.agg_score)})</h4>"
            f"<p class='tts-question'>{html.escape(tree.question)}</p><ol>{''.join(items)}</ol>{answer}</div>")


def candidate_rows(tree: SearchTree | None) -> list[list]:
    """One row per finished candidate, best path score first."""
    if tree is None:
        return []
    groups = {i: row for row in tally(tree) for i in row["ids"]}
    chosen = tree.meta.get("selected_leaf")
    rows = []
    for node in sorted(tree.candidates(), key=lambda n: -(n.agg_score or 0.0)):
        group = groups.get(node.id)
        rows.append([node.id, node.answer if node.answer is not None else "(none)", _f(node.agg_score),
                     group["votes"] if group else 0, _f(group["vote_sum"]) if group else "–",
                     {True: "yes", False: "no"}.get(node.correct, "–"), "◀ chosen" if node.id == chosen else ""])
    return rows


def compute_markdown(tree: SearchTree | None) -> str:
    compute = (tree.meta.get("compute") if tree else None) or {}
    if not compute:
        return "No run yet."
    return (f"| generated | prefill | scorer | policy FLOPs | scorer FLOPs | wall |\n|---|---|---|---|---|---|\n"
            f"| {compute['generated_tokens']} tok | {compute['prefill_tokens']} tok | "
            f"{compute['scorer_tokens']} tok | {compute['policy_flops']:.3g} | {compute['scorer_flops']:.3g} | "
            f"{compute['wall_s']:.1f} s |")
