"""Per-browser-session state: the current tree and the stop flag of the running search."""
from __future__ import annotations

import threading

from ..tree import SearchTree


class Session:
    def __init__(self) -> None:
        self.tree: SearchTree | None = None
        self.stop_flag = threading.Event()
        self.runs = 0

    def __deepcopy__(self, memo) -> "Session":  # gr.State copies its default for each visitor
        return Session()

    def should_stop(self) -> bool:
        return self.stop_flag.is_set()
