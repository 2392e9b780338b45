"""The search tree: every generated step is a node; the tree is the single source of truth.

Strategies add nodes and set their scores and statuses; answers, votes and compute are
read back from the tree. Ids are per tree (0 is the root, which holds the problem and
no step). A node's status says what the search did with it (active, pruned, finished);
which path was chosen as the answer is one fact of the tree (meta "selected_leaf"), not
a status. Written as JSON with a schema version (reading it back, untrusted, is
treefile.py's read_tree); conversion to a networkx.DiGraph. Layout, colours and rendering live elsewhere.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

SCHEMA_VERSION = 2  # 1: the chosen path was a node status "selected"
STATUSES = ("active", "pruned", "finished")
STOP_REASONS = ("step", "answer", "eos", "length")


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
    edited: bool = False  # a visitor wrote this step (an edit of the model's, or a new sibling)
    weight: float | None = None  # its share in the strategy's draw of the next budget (particles, REBASE)
    budget: int | None = None  # children the strategy granted it (particles resampled onto it, REBASE's share)
    confidence: float | None = None  # the chain's running confidence here (DeepConf), when a strategy reads it
    children: list[int] = field(default_factory=list)

    @property
    def terminal(self) -> bool:
        """True when the path ends here (an answer, EOS or the token limit)."""
        return self.stop_reason != "step"


# The caps of a tree the page reads, grows and writes: the same numbers on both sides, so whatever
# it exports it imports (treefile.py checks a file against them; a search stops at them).
MAX_NODES = 20_000
MAX_DEPTH = 64
MAX_STEP_CHARS = 8_000
MAX_BYTES = 5 * 1024 * 1024  # as compact JSON
_SEPARATORS = (",", ":")  # compact JSON, as the tree is written


def _widest_node_bytes() -> int:
    """A node's fields in compact JSON, its text, answer and children aside, with every field at its widest."""
    w = -1.2345678901234567e-300
    big = -(10**12)
    reason = max(STOP_REASONS, key=len)
    node = Node(big, big, big, "", big, w, w, w, "finished", big, big, reason, None, False, True, w, big, w)
    return len(json.dumps(dataclasses.asdict(node), separators=_SEPARATORS)) + 1  # its comma in the list


NODE_JSON_BYTES = _widest_node_bytes()


class SearchTree:
    """Nodes keyed by id plus the problem, settings and results of one search."""

    def __init__(self, question: str, reference: str | None = None, meta: dict | None = None):
        self.question = question
        self.reference = reference
        self.meta: dict[str, Any] = dict(meta or {})  # settings, compute, selection result
        self.nodes = {0: Node(id=0, parent=None, depth=0, status="active")}

    @property
    def nodes(self) -> dict[int, Node]:
        return self._nodes

    @nodes.setter
    def nodes(self, nodes: dict[int, Node]) -> None:
        self._nodes = nodes
        self._next_id = max(nodes, default=-1) + 1
        self._bytes = 2 * len(self.question) + sum(_json_bytes(n) for n in nodes.values())

    @property
    def json_bytes(self) -> int:
        """About how large the tree is as compact JSON (at least as large as it is)."""
        return self._bytes

    def full(self, margin: int = 0) -> str | None:
        """Why the tree cannot take `margin` more nodes of a few kB (its caps), or None."""
        if len(self.nodes) + margin > MAX_NODES:
            return f"the tree's cap of {MAX_NODES} nodes"
        if self._bytes + margin * 4096 > MAX_BYTES:
            return f"the tree's cap of {MAX_BYTES // (1024 * 1024)} MB"
        return None

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
        node_id = self._next_id
        node = Node(id=node_id, parent=parent, depth=self.nodes[parent].depth + 1, **fields)
        self.nodes[node_id] = node
        self.nodes[parent].children.append(node_id)
        self._next_id += 1
        self._bytes += _json_bytes(node)
        return node

    def path(self, node_id: int) -> list[Node]:
        """Nodes from the first step to `node_id` (the root, which holds no step, left out)."""
        out = []
        node = self.nodes[node_id]
        while node.parent is not None:
            out.append(node)
            if len(out) > len(self.nodes):  # only a tree built by hand can hold a cycle; never loop
                raise ValueError(f"node {node_id} has a cycle of parents")
            node = self.nodes[node.parent]
        return out[::-1]

    def steps(self, node_id: int) -> list[str]:
        return [n.text for n in self.path(node_id)]

    def leaves(self) -> list[Node]:
        return [n for n in self.nodes.values() if not n.children and n.id != 0]

    def settled_nodes(self) -> list[Node]:
        """The steps every way the search can still go shares (first step first): the path to
        the deepest node that each node not pruned, and without a child not pruned, lies under.
        The chosen answer is a candidate, so it starts with these steps once nothing is pruned
        back to life (no strategy does); empty while two ways differ at the first step."""
        alive = {n.id for n in self.nodes.values() if n.status != "pruned"}
        common: list[Node] | None = None
        for node_id in alive:
            node = self.nodes[node_id]
            if node_id == 0 or any(child in alive for child in node.children):
                continue
            path = self.path(node_id)
            if common is None:
                common = path
                continue
            shared = 0
            while shared < min(len(common), len(path)) and common[shared].id == path[shared].id:
                shared += 1
            common = common[:shared]
            if not common:
                break
        return common or []

    def with_status(self, *statuses: str) -> list[Node]:
        return [n for n in self.nodes.values() if n.status in statuses and n.id != 0]

    def candidates(self) -> list[Node]:
        """The final answer pool: finished nodes that end a path."""
        return [n for n in self.with_status("finished") if n.terminal]

    def chosen_nodes(self) -> list[Node]:
        """The chosen answer's path, first step first (empty before selection or without one)."""
        leaf = self.meta.get("selected_leaf")
        return self.path(leaf) if isinstance(leaf, int) and leaf in self.nodes else []

    def chosen_path(self) -> set[int]:
        """Ids of the nodes on the chosen answer's path."""
        return {n.id for n in self.chosen_nodes()}

    def copy(self) -> SearchTree:
        """An independent copy (a consistent snapshot of a tree another thread is growing)."""
        new = SearchTree(self.question, self.reference, json.loads(json.dumps(self.meta)))
        new.nodes = {i: dataclasses.replace(n, children=list(n.children)) for i, n in list(self.nodes.items())}
        return new

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
        separators = _SEPARATORS if indent is None else None
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False, separators=separators)

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


def _json_bytes(node: Node) -> int:
    # non-ASCII text is at most 4 bytes a character, and escapes at most double ASCII
    return NODE_JSON_BYTES + 2 * (len(node.text) + len(node.answer or "")) + 8 * len(node.children)
