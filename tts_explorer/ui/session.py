"""Per-browser-session state: the current tree, the snapshot the page shows, and the run's
state for Stop (queued, running, idle).

The search thread grows `tree`; every other handler (a node click, replay, re-scoring)
reads `view`, a copy taken where the tree was drawn, so no handler iterates a tree that
another thread is changing. Stop works in every state: a running search stops within one
decoded token; runs of this session still waiting in the queue end as soon as they start;
with nothing running or queued it says so and changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path

from ..render import Colours
from ..tree import SearchTree


class Session:
    def __init__(self) -> None:
        self.tree: SearchTree | None = None
        self.view: SearchTree | None = None
        self.stop_flag = threading.Event()
        self.running = False
        self.cancel_queued = 0  # queued runs of this session that a Stop cancelled
        self.runs = 0
        self.colours = Colours()  # how this visitor wants scores coloured
        self._folder: Path | None = None  # the files this session offers for download
        self._lock = threading.Lock()

    def __deepcopy__(self, memo) -> Session:  # gr.State copies its default for each visitor
        return Session()

    def folder(self) -> Path:
        """This session's own folder for the files it offers for download (made on first use);
        each kind of file has one name in it, so a new export replaces the last one."""
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix="tts-session-"))
        return self._folder

    def close(self) -> None:
        """Drop what the session holds: its trees and its folder (the session has ended)."""
        self.stop_flag.set()
        self.tree = self.view = None
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def should_stop(self) -> bool:
        return self.stop_flag.is_set()

    def show(self, tree: SearchTree, live: bool) -> None:
        """Make `tree` the session's tree and what its page shows (a copy while it still grows)."""
        self.tree = tree
        self.view = tree.copy() if live else tree

    def start_run(self) -> str | None:
        """Mark a run as started; or say why it may not start (None: it has started)."""
        with self._lock:
            if self.cancel_queued > 0:
                self.cancel_queued -= 1
                return "Stopped before it started: Stop was pressed while this run waited in the queue"
            if self.running:
                return "a search of this session is running: wait for it or stop it"
            self.stop_flag.clear()
            self.running = True
            self.runs += 1
            return None

    def end_run(self) -> None:
        with self._lock:
            self.running = False
            self.stop_flag.clear()

    def request_stop(self, queued: int) -> str:
        """Stop the running search and cancel `queued` waiting runs; the status line's answer."""
        with self._lock:
            self.cancel_queued = queued
            if self.running:
                self.stop_flag.set()
                return "Stopping…" + (f" (and cancelling {queued} queued run(s))" if queued else "")
            if queued:
                return f"Cancelled {queued} run(s) waiting in the queue."
            return "Nothing is running."
