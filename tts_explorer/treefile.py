"""Reading a tree from untrusted JSON: a strict schema (pydantic), size caps and link checks.

Every field has its type and range (no number where text is meant, no NaN, no bool for an
integer), every text is valid Unicode under a length cap, and the links form one tree:
ids unique, one root 0, every parent present, depth one more than the parent's (which
rules out cycles), children lists that match the parents. Anything else is a
TreeFormatError with one line saying where. Schema 1 files (the chosen path stored as
the node status "selected") are read and converted.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .answers import MAX_ANSWER_CHARS
from .config import MAX_QUESTION_CHARS
from .errors import UserError
from .schema import MAX_COUNT, MAX_FLOPS, Strict, Text, one_line
from .selection import AGGREGATIONS, SELECTIONS
from .tree import MAX_DEPTH, MAX_NODES, MAX_STEP_CHARS, SCHEMA_VERSION, STOP_REASONS, Node, SearchTree

MAX_NAME_CHARS = 200


class TreeFormatError(UserError):
    """A tree JSON document that cannot be read; the message is one line."""


Probability = Annotated[float, Field(ge=0.0, le=1.0)]


class NodeModel(Strict):
    id: int = Field(ge=0)
    parent: int | None = Field(default=None, ge=0)
    depth: int = Field(ge=0, le=MAX_DEPTH)
    text: Text(MAX_STEP_CHARS) = ""
    n_tokens: int = Field(default=0, ge=0, le=1_000_000)
    mean_logprob: float | None = Field(default=None, le=0.0, ge=-1000.0)
    score: Probability | None = None
    agg_score: Probability | None = None
    status: Literal["active", "pruned", "finished", "selected"] = "active"  # "selected": schema 1
    subtree: int | None = Field(default=None, ge=0, le=MAX_NODES)
    iteration: int = Field(default=0, ge=0, le=MAX_NODES)
    stop_reason: Literal[STOP_REASONS] = "step"
    answer: Text(MAX_ANSWER_CHARS) | None = None
    correct: bool | None = None
    edited: bool = False
    weight: Probability | None = None
    budget: int | None = Field(default=None, ge=0, le=100_000)
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    children: list[int] = Field(default_factory=list, max_length=MAX_NODES)


class ConfigModel(BaseModel):
    """The search settings a tree records (other keys are kept as they are)."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    strategy: Text(MAX_NAME_CHARS) | None = None
    n: int | None = Field(default=None, ge=1, le=100_000)
    beam_width: int | None = Field(default=None, ge=1, le=100_000)
    max_steps: int | None = Field(default=None, ge=1, le=100_000)
    step_tokens: int | None = Field(default=None, ge=1)
    final_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=100.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    aggregation: Literal[tuple(AGGREGATIONS)] | None = None
    selection: Literal[tuple(SELECTIONS)] | None = None
    seed: int | None = Field(default=None, ge=-(2**63), le=2**63)


class ComputeModel(BaseModel):
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    generated_tokens: int = Field(default=0, ge=0, le=MAX_COUNT)
    prefill_tokens: int = Field(default=0, ge=0, le=MAX_COUNT)
    scorer_tokens: int = Field(default=0, ge=0, le=MAX_COUNT)
    policy_flops: float = Field(default=0.0, ge=0.0, le=MAX_FLOPS)
    scorer_flops: float = Field(default=0.0, ge=0.0, le=MAX_FLOPS)
    wall_s: float = Field(default=0.0, ge=0.0, le=1e9)
    total_flops: float = Field(default=0.0, ge=0.0, le=MAX_FLOPS)


class MetaModel(BaseModel):
    """What the page reads from a tree's meta is typed; other keys are kept as they are."""

    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)
    config: ConfigModel | None = None
    compute: ComputeModel | None = None
    answer: Text(MAX_ANSWER_CHARS) | None = None
    correct: bool | None = None
    selected_leaf: int | None = Field(default=None, ge=0)
    selection: Literal[tuple(SELECTIONS)] | None = None
    scorer: Text(MAX_NAME_CHARS) | None = None
    policy: Text(MAX_NAME_CHARS) | None = None
    run_id: Text(MAX_NAME_CHARS) | None = None
    stopped: bool | Text(MAX_NAME_CHARS) | None = None
    notes: list[Text(400)] | None = Field(default=None, max_length=100)


class TreeModel(Strict):
    schema_version: Literal[1, 2]
    question: Text(MAX_QUESTION_CHARS)
    reference: Text(MAX_ANSWER_CHARS) | None = None
    meta: MetaModel = Field(default_factory=MetaModel)
    nodes: list[NodeModel] = Field(min_length=1, max_length=MAX_NODES)


def _where(data: Any):
    """loc -> 'node 7: score' for ('nodes', 3, 'score'), naming the node by its id where it has one."""

    def where(loc: tuple) -> str:
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            raw = data["nodes"][loc[1]]
            name = (
                f"node {raw['id']}"
                if isinstance(raw, dict) and isinstance(raw.get("id"), int) and not isinstance(raw.get("id"), bool)
                else f"nodes[{loc[1]}]"
            )
            return name + (": " + ".".join(str(p) for p in loc[2:]) if len(loc) > 2 else "")
        return ".".join(str(p) for p in loc) or "the document"

    return where


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _check_links(nodes: dict[int, Node]) -> None:
    root = nodes.get(0)
    if root is None or root.parent is not None or root.depth != 0:
        raise TreeFormatError("the tree needs a root node 0 with no parent at depth 0")
    for node in nodes.values():
        if node.id == 0:
            continue
        parent = nodes.get(node.parent) if node.parent is not None else None
        if parent is None:
            raise TreeFormatError(f"node {node.id} is an orphan: its parent {node.parent} is not in the tree")
        if node.id == node.parent:
            raise TreeFormatError(f"node {node.id} is its own parent (a cycle)")
    for node in nodes.values():  # a cycle of parents never reaches the root
        seen, current = set(), node
        while current.parent is not None and current.id not in seen:
            seen.add(current.id)
            current = nodes[current.parent]
            if len(seen) > MAX_DEPTH + 1:
                break
        if current.parent is not None:
            kind = "a cycle" if current.id in seen else "a chain deeper than the cap"
            raise TreeFormatError(f"node {node.id} does not lead back to the root: its parents form {kind}")
    for node in nodes.values():
        if node.id and node.depth != nodes[node.parent].depth + 1:
            raise TreeFormatError(
                f"node {node.id}: depth {node.depth} does not follow its parent's {nodes[node.parent].depth}"
            )
    actual: dict[int, list[int]] = {}  # node id -> ids of the nodes naming it as parent
    for node in nodes.values():
        if node.parent is not None:
            actual.setdefault(node.parent, []).append(node.id)
    for node in nodes.values():
        if len(set(node.children)) != len(node.children) or set(node.children) != set(actual.get(node.id, [])):
            raise TreeFormatError(f"node {node.id}: its children list does not match the nodes that name it as parent")


def _from_model(model: TreeModel, meta: dict) -> SearchTree:
    tree = SearchTree(model.question, model.reference, meta)
    nodes: dict[int, Node] = {}
    selected = []
    for raw in model.nodes:
        fields = raw.model_dump()
        if fields["status"] == "selected":  # schema 1: the chosen path was a status
            selected.append(raw.id)
            fields["status"] = "finished" if raw.stop_reason != "step" and not raw.children else "active"
        if raw.id in nodes:
            raise TreeFormatError(f"node id {raw.id} appears twice")
        nodes[raw.id] = Node(**fields)
    _check_links(nodes)
    tree.nodes = nodes
    if selected and "selected_leaf" not in tree.meta:
        leaves = [i for i in selected if tree.nodes[i].terminal]
        if leaves:
            tree.meta["selected_leaf"] = leaves[0]
    leaf = tree.meta.get("selected_leaf")
    if leaf is not None and (leaf not in tree.nodes or not tree.nodes[leaf].terminal):
        raise TreeFormatError(f"meta.selected_leaf {leaf} is not a node that ends a path")
    return tree


def read_tree(text: str) -> SearchTree:
    """A checked tree from JSON text; TreeFormatError (one line) for anything else."""
    try:
        data = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise TreeFormatError("the JSON is nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError is a ValueError, as is a NaN / Infinity literal
        raise TreeFormatError(f"not valid JSON: {str(exc).splitlines()[0][:120]}") from None
    if not isinstance(data, dict):
        raise TreeFormatError("a tree must be a JSON object")
    version = data.get("schema_version")
    if version not in (1, SCHEMA_VERSION) or isinstance(version, bool):
        raise TreeFormatError(f"unsupported tree schema_version {str(version)[:20]!r} (expected {SCHEMA_VERSION})")
    try:
        model = TreeModel.model_validate(data)
    except ValidationError as exc:
        raise TreeFormatError(one_line(exc, _where(data))) from None
    except RecursionError:
        raise TreeFormatError("the JSON is nested too deeply") from None
    return _from_model(model, data.get("meta") or {})  # the checked meta, keys in their order
