"""The search tree: every generated step is a node; the tree is the single source of truth.

Strategies add nodes and set their scores and statuses; answers, votes and compute are
read back from the tree. Ids are per tree (0 is the root, which holds the problem and
no step). JSON round trip with a schema version; conversion to a networkx.DiGraph.
Layout, colours and rendering live elsewhere (render.py).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Iterator

SCHEMA_VERSION = 1
STATUSES = ("active", "pruned", "finished", "selected")
STOP_REASONS = ("step", "answer", "eos", "length")


class TreeFormatError(ValueError):
    """A tree JSON document that cannot be read."""


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str = ""  # the step, without its "\n\n" separator
    n_tokens: int = 0
    mean_logprob: float | None = None
    score: float | None = None  # PRM score of this step, in [0, 1]
    agg_score: float | None = None  # aggregated score of the path root..this node
    status: str = "active"
    subtree: int | None = None  # DVTS subtree id (None for other strategies)
    iteration: int = 0  # search iteration at which the node was made
    stop_reason: str = "step"
    answer: str | None = None  # extracted answer, for nodes that end a path
    correct: bool | None = None  # answer vs the reference, when one is known
    children: list[int] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """True when the path ends here (an answer, EOS or the token limit)."""
        return self.stop_reason != "step"


class SearchTree:
    """Nodes keyed by id plus the problem, settings and results of one search."""

    def __init__(self, question: str, reference: str | None = None, meta: dict | None = None):
        self.question = question
        self.reference = reference
        self.meta: dict[str, Any] = dict(meta or {})  # settings, compute, selection result
        self.nodes: dict[int, Node] = {0: Node(id=0, parent=None, depth=0, status="active")}

    @property
    def root(self) -> Node:
        return self.nodes[0]

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes.values())

    def add(self, parent: int, **fields: Any) -> Node:
        """Add a child of `parent` with the next free id and return it."""
        if parent not in self.nodes:
            raise KeyError(f"no node {parent} in this tree")
        node_id = max(self.nodes) + 1 if self.nodes else 0
        node = Node(id=node_id, parent=parent, depth=self.nodes[parent].depth + 1, **fields)
        self.nodes[node_id] = node
        self.nodes[parent].children.append(node_id)
        return node

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the first step to `node_id` (the root, which holds no step, left out)."""
        out = []
        node = self.nodes[node_id]
        while node.parent is not None:
            out.append(node)
            node = self.nodes[node.parent]
        return out[::-1]

    def steps(self, node_id: int) -> list[str]:
        return [n.text for n in self.path(node_id)]

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.children and n.id != 0]

    def with_status(self, *statuses: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.status in statuses and n.id != 0]

    def candidates(self) -> list[Node]:
        """The final answer pool: finished nodes (the chosen one is marked 'selected')."""
        return [n for n in self.with_status("finished", "selected") if n.terminal]

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        return {
            "schema_version": SCHEMA_VERSION,
            "question": self.question,
            "reference": self.reference,
            "meta": self.meta,
            "nodes": [dataclasses.asdict(n) for n in self.nodes.values()],
        }

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: Any) -> "SearchTree":
        if not isinstance(data, dict):
            raise TreeFormatError("a tree must be a JSON object")
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise TreeFormatError(f"unsupported tree schema_version {version!r} (expected {SCHEMA_VERSION})")
        if not isinstance(data.get("question"), str) or not isinstance(data.get("nodes"), list):
            raise TreeFormatError("a tree needs a string 'question' and a list 'nodes'")
        tree = cls(data["question"], data.get("reference"), data.get("meta") or {})
        names = {f.name for f in dataclasses.fields(Node)}
        tree.nodes = {}
        for raw in data["nodes"]:
            if not isinstance(raw, dict) or set(raw) - names or "id" not in raw:
                raise TreeFormatError(f"malformed node: {str(raw)[:80]}")
            try:
                node = Node(**raw)
            except TypeError as exc:
                raise TreeFormatError(f"malformed node {raw.get('id')}: {exc}") from None
            if node.status not in STATUSES or node.stop_reason not in STOP_REASONS:
                raise TreeFormatError(f"node {node.id}: unknown status or stop_reason")
            tree.nodes[node.id] = node
        tree._check_links()
        return tree

    @classmethod
    def from_json(cls, text: str) -> "SearchTree":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise TreeFormatError(f"not valid JSON: {exc}") from None
        return cls.from_dict(data)

    def _check_links(self) -> None:
        if 0 not in self.nodes or self.nodes[0].parent is not None:
            raise TreeFormatError("the tree has no root node 0")
        for node in self.nodes.values():
            if node.id != 0 and node.parent not in self.nodes:
                raise TreeFormatError(f"node {node.id} names a missing parent {node.parent}")
            for child in node.children:
                if child not in self.nodes or self.nodes[child].parent != node.id:
                    raise TreeFormatError(f"node {node.id} names a child {child} that is not its own")

    def to_networkx(self):
        """A networkx.DiGraph with every node's fields as attributes, edges parent -> child."""
        import networkx as nx

        graph = nx.DiGraph(question=self.question, reference=self.reference)
        for node in self.nodes.values():
            attrs = dataclasses.asdict(node)
            attrs.pop("children")
            graph.add_node(node.id, **attrs)
            if node.parent is not None:
                graph.add_edge(node.parent, node.id)
        return graph
