"""Pure views around the tree: status line, clicked-path panel, candidates table, compute.

Everything that came from a visitor or a model is escaped here, once, for where it goes:
`html_text` for HTML, `markdown_text` for Markdown (which also renders HTML).
"""

from __future__ import annotations

import html
import re

from ..report import fmt_score
from ..selection import by_score, tally
from ..tree import SearchTree

CANDIDATE_COLUMNS = ["node", "answer", "path score", "votes", "PRM-Vote sum", "correct", "chosen"]
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]|~])")  # what formats inside a line (< > & are HTML-escaped)


def html_text(text: str) -> str:
    return html.escape(text)


def markdown_text(text: str) -> str:
    """Text shown literally inside Markdown: HTML escaped, Markdown's punctuation backslashed."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", html.escape(text, quote=False)).replace("\n", " ")


def answer_line(tree: SearchTree) -> str | None:
    """'answer: 8 ✓ right', 'no answer', or None before selection (Markdown)."""
    if "answer" not in tree.meta:
        return None
    answer = tree.meta["answer"]
    if answer is None:
        return "no answer"
    verdict = {True: " ✓ right", False: " ✗ wrong"}.get(tree.meta.get("correct"), "")
    return f"answer: {markdown_text(str(answer))}{verdict}"


def status_line(tree: SearchTree | None, state: str, iteration: int | None = None) -> str:
    if tree is None:
        return state
    config = tree.meta.get("config") or {}
    parts = [state]
    if iteration is not None:
        parts.append(f"step {iteration + 1} of {config.get('max_steps', '?')}")
    parts.append(f"{len(tree) - 1} nodes")
    answer = answer_line(tree)
    if answer:
        parts.append(answer)
    auto = tree.meta.get("auto")
    if isinstance(auto, dict) and auto.get("reason"):
        parts.append(f"auto: {markdown_text(str(auto['reason']))}")
    notes = tree.meta.get("notes")
    if notes:
        parts.append(f"note: {markdown_text(notes[0])}" + (f" (+{len(notes) - 1} more)" if len(notes) > 1 else ""))
    return " · ".join(parts)


def path_html(tree: SearchTree | None, node_id: int | None) -> str:
    """The path from the root to a node: every step with its score, escaped."""
    if tree is None or node_id is None or node_id not in tree.nodes:
        return "<p class='tts-hint'>Click a node of the tree to see its path.</p>"
    node = tree.nodes[node_id]
    if node_id == 0:
        return f"<div class='tts-path'><h4>Problem</h4><p>{html_text(tree.question)}</p></div>"
    chosen = tree.chosen_path()
    items = []
    for step in tree.path(node_id):
        text = html_text(step.text.strip()).replace("\n", "<br>")
        items.append(
            f"<li data-node='{step.id}'><div class='tts-step'>{text}</div>"
            f"<div class='tts-meta'>step score {fmt_score(step.score)} · path score {fmt_score(step.agg_score)}"
            f" · {step.n_tokens} tokens · {step.status}{' · chosen path' if step.id in chosen else ''}"
            f"</div></li>"
        )
    answer = ""
    if node.answer is not None:
        verdict = {True: " (right)", False: " (wrong)"}.get(node.correct, "")
        answer = f"<p class='tts-answer'>Answer: <b>{html_text(node.answer)}</b>{verdict}</p>"
    return (
        f"<div class='tts-path' id='path-panel' data-node='{node_id}'>"
        f"<h4>Path to node {node_id} (path score {fmt_score(node.agg_score)})</h4>"
        f"<p class='tts-question'>{html_text(tree.question)}</p><ol>{''.join(items)}</ol>{answer}</div>"
    )


def candidate_rows(tree: SearchTree | None) -> list[list]:
    """One row per finished candidate, best path score first (the order selection ranks them)."""
    if tree is None:
        return []
    groups = {i: row for row in tally(tree) for i in row["ids"]}
    chosen = tree.meta.get("selected_leaf")
    rows = []
    for node in sorted(tree.candidates(), key=by_score, reverse=True):
        group = groups.get(node.id)
        rows.append(
            [
                node.id,
                node.answer if node.answer is not None else "(none)",
                fmt_score(node.agg_score),
                group["votes"] if group else 0,
                fmt_score(group["vote_sum"]) if group else "–",
                {True: "yes", False: "no"}.get(node.correct, "–"),
                "◀ chosen" if node.id == chosen else "",
            ]
        )
    return rows


def compute_markdown(tree: SearchTree | None) -> str:
    compute = (tree.meta.get("compute") if tree else None) or {}
    if not compute:
        return "No run yet."
    get = lambda key: compute.get(key, 0)  # noqa: E731
    return (
        f"| generated | prefill | scorer | policy FLOPs | scorer FLOPs | wall |\n|---|---|---|---|---|---|\n"
        f"| {get('generated_tokens')} tok | {get('prefill_tokens')} tok | "
        f"{get('scorer_tokens')} tok | {get('policy_flops'):.3g} | {get('scorer_flops'):.3g} | "
        f"{get('wall_s'):.1f} s |"
    )
