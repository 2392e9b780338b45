"""Plain-text views for the terminal: a tree as indented lines, compute, accuracy tables."""
from __future__ import annotations

from collections import defaultdict

from .tree import SearchTree

MARK = {"active": " ", "pruned": "x", "finished": "*"}


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
            lines.append(f"{'  ' * (node.depth - 1)}{'>' if node.id in chosen else MARK[node.status]} [{node.id}{sub}] "
                         f"s={_num(node.score)} agg={_num(node.agg_score)} tok={node.n_tokens} | {text}{extra}")
        for child in node.children:
            walk(child)

    walk(0)
    lines.append("legend: > selected path, * finished, x pruned; s = step score, agg = path score")
    return "\n".join(lines)


def format_compute(compute: dict) -> str:
    return (f"compute: generated {compute.get('generated_tokens', 0)} tok, prefill "
            f"{compute.get('prefill_tokens', 0)} tok, scorer {compute.get('scorer_tokens', 0)} tok, "
            f"policy {compute.get('policy_flops', 0):.3g} FLOPs, scorer {compute.get('scorer_flops', 0):.3g} FLOPs, "
            f"wall {compute.get('wall_s', 0):.1f} s")


def accuracy_table(rows: list[dict]) -> str:
    """Accuracy (and mean generated tokens per problem) by strategy and budget."""
    cells: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for row in rows:
        cells[(row["strategy"], row["n"])].append(row)
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    budgets = sorted({r["n"] for r in rows})
    head = f"{'strategy':<12}" + "".join(f"{'N=' + str(b):>22}" for b in budgets)
    out = [head, "-" * len(head)]
    for strategy in strategies:
        line = f"{strategy:<12}"
        for budget in budgets:
            group = cells.get((strategy, budget))
            if not group:
                line += f"{'':>22}"
                continue
            acc = 100.0 * sum(bool(r["correct"]) for r in group) / len(group)
            tokens = sum(r["compute"]["generated_tokens"] + r["compute"]["scorer_tokens"] for r in group) / len(group)
            line += f"{acc:>9.1f}% {tokens:>7.0f} tok"[:22].rjust(22)
        out.append(line)
    out.append("cells: accuracy, mean tokens per problem (policy generated + scorer)")
    return "\n".join(out)
