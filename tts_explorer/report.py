"""Plain-text views: a tree as indented lines for the terminal, its compute, and the one
formatter of a score (or its absence) that every view uses."""

from __future__ import annotations

from .tree import SearchTree

MARK = {"active": " ", "pruned": "x", "finished": "*"}


def fmt_score(value: float | None, digits: int = 3) -> str:
    """A score as shown everywhere: three decimals, or "–" when there is none."""
    return "–" if value is None else f"{value:.{digits}f}"


def _num(value, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def format_tree(tree: SearchTree, width: int = 90) -> str:
    """One line per node, children indented under their parent, in depth-first order."""
    lines = [f"problem: {tree.question}"]
    chosen = tree.chosen_path()

    def walk(node_id: int) -> None:
        node = tree.nodes[node_id]
        if node.id:
            text = " ".join(node.text.split())
            text = text if len(text) <= width else text[: width - 3] + "..."
            extra = f"  => {node.answer}" if node.answer is not None else ""
            if node.correct is not None:
                extra += " (right)" if node.correct else " (wrong)"
            sub = f" t{node.subtree}" if node.subtree is not None else ""
            lines.append(
                f"{'  ' * (node.depth - 1)}{'>' if node.id in chosen else MARK[node.status]} [{node.id}{sub}] "
                f"s={_num(node.score)} agg={_num(node.agg_score)} tok={node.n_tokens} | {text}{extra}"
            )
        for child in node.children:
            walk(child)

    walk(0)
    lines.append("legend: > selected path, * finished, x pruned; s = step score, agg = path score")
    return "\n".join(lines)


def format_compute(compute: dict) -> str:
    return (
        f"compute: generated {compute.get('generated_tokens', 0)} tok, prefill "
        f"{compute.get('prefill_tokens', 0)} tok, scorer {compute.get('scorer_tokens', 0)} tok, "
        f"policy {compute.get('policy_flops', 0):.3g} FLOPs, scorer {compute.get('scorer_flops', 0):.3g} FLOPs, "
        f"wall {compute.get('wall_s', 0):.1f} s"
    )
