"""The one thread that runs the process's model compute: loading, prefills, the decode loop
and the learned scorers' forwards.

PyTorch's CPU kernels split their work over OpenMP worker threads, and every thread that
starts parallel work gets workers of its own. libgomp lets idle workers spin, ready for the
next parallel part, only while it manages no more threads than there are cores; past that
they sleep after about a hundred spins, and waking them costs tens of microseconds per
operation. A decode turn is thousands of small operations, so once a second thread has run
model code every turn pays it (`python bench/engine_thread.py` measures it; README, *Many
visitors at once on the local engine*). So the page's handlers, the CLI and the server hand
model work to this thread (`run`), and a decode loop asks to be turned (`keep_turning`)
between the other tasks, so a scorer's forward waits one turn, not the whole loop. At exit
the task in progress ends before the thread stops.
"""

from __future__ import annotations

import atexit
import functools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import TypeVar

T = TypeVar("T")

_lock = threading.Condition()
_tasks: deque[tuple[Callable, tuple, dict, Future]] = deque()
_turning: dict[Callable[[], bool], int] = {}  # called between tasks until it returns False: times asked
_thread: threading.Thread | None = None
_closing = False


def on_engine_thread() -> bool:
    return threading.current_thread() is _thread


def run(fn: Callable[..., T], *args, **kwargs) -> T:
    """fn(*args, **kwargs) on the engine thread (at once when called there): its result, or
    its exception raised here."""
    if on_engine_thread():
        return fn(*args, **kwargs)
    future: Future = Future()
    with _lock:
        _refuse_when_closing()
        _start()
        _tasks.append((fn, args, kwargs, future))
        _lock.notify_all()
    return future.result()


def keep_turning(turn: Callable[[], bool]) -> None:
    """Call `turn()` on the engine thread, between tasks, until it returns False after the
    last time it was asked (so work queued before asking is always seen by a turn)."""
    with _lock:
        _refuse_when_closing()
        _start()
        _turning[turn] = _turning.get(turn, 0) + 1
        _lock.notify_all()


def _refuse_when_closing() -> None:
    if _closing:
        raise RuntimeError("the process is ending: no more model work")


def _start() -> None:
    global _thread
    if _thread is None:
        _thread = threading.Thread(target=_serve, name="tts-engine", daemon=True)
        _thread.start()


@atexit.register
def _close() -> None:
    """At exit, let the task or turn in progress end and stop the thread: a daemon thread
    stopped in the middle of a torch operation aborts the process as it ends."""
    global _closing
    with _lock:
        _closing = True
        _lock.notify_all()
    if _thread is not None:
        _thread.join(timeout=60)


def _serve() -> None:
    while True:
        with _lock:
            while not _tasks and not _turning and not _closing:
                _lock.wait()
            if _closing:  # what is left is never done: the process is ending
                return
            task = _tasks.popleft() if _tasks else None
            turning = dict(_turning)
        if task is not None:
            fn, args, kwargs, future = task
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # the caller's error, raised in its thread
                future.set_exception(exc)
        for turn, asked in turning.items():
            try:
                more = turn()
            except BaseException:  # a turn reports its own errors to its callers; never kill the thread
                more = False
            if not more:
                with _lock:
                    if _turning.get(turn) == asked:  # not asked again since
                        del _turning[turn]


def on_engine(method: Callable[..., T]) -> Callable[..., T]:
    """A function or method that always runs on the engine thread."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        return run(method, *args, **kwargs)

    return wrapper
