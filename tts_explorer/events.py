"""What strategies yield while they grow a tree, so that a UI can redraw as it likes.

Every event names nodes by id; the tree itself holds their content.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class NodesAdded:
    ids: list[int]
    iteration: int


@dataclass
class NodesScored:
    ids: list[int]
    iteration: int


@dataclass
class NodesPruned:
    ids: list[int]
    iteration: int


@dataclass
class IterationDone:
    iteration: int
    max_iterations: int
    active: int  # nodes still to be expanded


@dataclass
class Done:
    answer: str | None
    selected: list[int] = field(default_factory=list)  # the chosen path's leaf ids
    stopped: str | None = None  # why the run ended early (a stop request, a run limit), None when it did not


Event = NodesAdded | NodesScored | NodesPruned | IterationDone | Done
