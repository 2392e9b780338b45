"""Per-browser-session state: the current tree, the snapshot the page shows, and the run's
state for Stop (queued, running, idle).

The search thread grows `tree`; every other handler (a node click, replay, re-scoring)
reads `view`, a copy taken where the tree was drawn, so no handler iterates a tree that
another thread is changing. Stop works in every state: a running action stops within one
decoded token (or scoring batch); runs of this session that entered the queue before the
Stop end as soon as they start (later ones run: a Stop never goes stale); with nothing
running or queued it says so and changes nothing. When the session ends, close() drops its
trees and its folder of downloads.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
import weakref
from contextlib import contextmanager
from pathlib import Path

from gradio.utils import get_upload_folder

from ..errors import UserError
from ..render import Colours, figure
from ..tree import SearchTree

_LIVE: weakref.WeakSet = weakref.WeakSet()  # every visitor's Session
_BY_HASH: dict[str, weakref.ref] = {}  # Gradio's session hash -> that visitor's Session
_REGISTRY = threading.Lock()


class Session:
    def __init__(self) -> None:
        self.tree: SearchTree | None = None
        self.view: SearchTree | None = None
        self.stop_flag = threading.Event()
        self.running = False
        self.stopped_at: float | None = None  # when Stop was last pressed (time.monotonic())
        self.runs = 0
        self.colours = Colours()  # how this visitor wants scores coloured
        self.focus: int | None = None  # the node whose subtree the page draws (None: the whole tree)
        self._folder: Path | None = None  # the files this session offers for download
        self.exported: dict[str, tuple] = {}  # file kind -> what it was written from (written again on change)
        self.closing = False  # the visitor left while an action ran: close when it ends
        self._lock = threading.Lock()
        self.last_used = time.monotonic()
        _LIVE.add(self)

    def __deepcopy__(self, memo) -> Session:  # gr.State copies its default for each visitor
        return Session()

    def touch(self, request=None) -> Session:
        """A visitor used the session (and, with the request, which Gradio session it is)."""
        self.last_used = time.monotonic()
        session_hash = getattr(request, "session_hash", None)
        if isinstance(session_hash, str):
            with _REGISTRY:
                _BY_HASH[session_hash] = weakref.ref(self)
        return self

    def folder(self) -> Path:
        """This session's own folder for the files it offers for download (made on first use,
        removed by close() or when the session is dropped); each kind of file has one name in
        it, so a new export replaces the last one."""
        if self._folder is None:
            # inside Gradio's own cache, so the files it serves are these, not copies it keeps
            cache = Path(get_upload_folder())
            cache.mkdir(parents=True, exist_ok=True)
            self._folder = Path(tempfile.mkdtemp(prefix="tts-session-", dir=cache))
            self._finalizer = weakref.finalize(self, shutil.rmtree, self._folder, True)
        return self._folder

    def close(self) -> None:
        """Drop what the session holds: its trees and its folder (the visitor has left). A
        running action is stopped first and the rest waits until it ends."""
        with self._lock:
            if self.running:
                self.stop_flag.set()
                self.closing = True
                return
            self.tree = self.view = None
            self.exported.clear()
            if self._folder is not None:
                self._finalizer()
                self._folder = None

    def should_stop(self) -> bool:
        return self.stop_flag.is_set()

    def show(self, tree: SearchTree, live: bool, focus: int | None | bool = False) -> None:
        """Make `tree` the session's tree and what its page shows (a copy while it still grows);
        `focus`: the node whose subtree the page draws (None: the whole tree; False: as it was)."""
        self.tree = tree
        self.view = tree.copy() if live else tree
        self.last_used = time.monotonic()
        if focus is not False:
            self.focus = focus

    def figure(self, tree: SearchTree, **options) -> dict:
        """The figure of `tree` as this visitor draws it: their colours, their focus."""
        focus = self.focus if self.focus in tree.nodes else None
        return figure(tree, colours=self.colours, focus=focus, **options)

    def start_run(self, enqueued_at: float | None = None) -> str | None:
        """Mark a run as started; or say why it may not start (None: it has started). A run that
        entered the queue before the session's last Stop ends here (`enqueued_at`: when it did)."""
        with self._lock:
            if enqueued_at is not None and self.stopped_at is not None and enqueued_at < self.stopped_at:
                return "Stopped before it started: Stop was pressed while this run waited in the queue"
            if self.running:
                return "a run of this session is going on: wait for it or stop it"
            self.stop_flag.clear()
            self.running = True
            self.runs += 1
            return None

    def end_run(self) -> None:
        with self._lock:
            self.running = False
            self.stop_flag.clear()
            self.last_used = time.monotonic()
        if self.closing:
            self.closing = False
            self.close()

    @contextmanager
    def run(self, enqueued_at: float | None = None):
        """One action of this session that computes (Stop ends it); UserError when it may not start."""
        refused = self.start_run(enqueued_at)
        if refused:
            raise UserError(refused)
        try:
            yield
        finally:
            self.end_run()

    def request_stop(self, queued: int) -> str:
        """Stop the running action, and the `queued` ones waiting (each ends as it starts: it
        entered the queue before now); the status line's answer."""
        with self._lock:
            self.stopped_at = time.monotonic()
            if self.running:
                self.stop_flag.set()
                return "Stopping…" + (f" (and cancelling {queued} queued run(s))" if queued else "")
            if queued:
                return f"Cancelled {queued} run(s) waiting in the queue."
            return "Nothing is running."


def close_session(session_hash: str) -> None:
    """The visitor of this Gradio session closed the page: drop what their Session holds."""
    with _REGISTRY:
        ref = _BY_HASH.pop(session_hash, None)
    session = ref() if ref is not None else None
    if session is not None:
        session.close()


def close_idle(idle_seconds: float) -> int:
    """Close every session unused for `idle_seconds` (an API client never says it left);
    returns how many were closed."""
    now, closed = time.monotonic(), 0
    for session in list(_LIVE):
        if not session.running and now - session.last_used > idle_seconds and (session.tree or session._folder):
            session.close()
            closed += 1
    with _REGISTRY:
        for key in [k for k, ref in _BY_HASH.items() if ref() is None]:
            del _BY_HASH[key]
    return closed
