"""The text-level policy protocol: the whole contract between a backend and everything
that uses a policy (strategies, scorers, the page, the benchmark).

Prompts go in as text; completions come out as text with token counts and log-probs.
How a backend reuses work between calls (a KV cache, a server's prefix cache) is its
own business. Backends: the local engine (local.py), an OpenAI-compatible server
(server.py), llama.cpp in-process (llamacpp.py, for the benchmark), the naive baseline
(naive.py); loading.py picks one by the form of the source.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

from .compute import ComputeMeter

MAX_CONTEXT_TOKENS = 4096  # a local engine's prompt plus what it generates (a longer one is refused in one line)


class StopRequested(Exception):
    """Raised inside a backend when the caller's stop check says so (e.g. the Stop button)."""


@dataclass
class Completion:
    text: str  # the generated text, stop string included when it stopped on one
    n_tokens: int  # tokens sampled
    logprob_sum: float  # sum of the sampled tokens' log-probs under the model (temperature 1)
    stop_reason: str  # "stop" (a stop string), "eos", or "length"
    token_ids: tuple[int, ...] = ()  # tokens that decode to `text` exactly, where the backend knows them

    @property
    def mean_logprob(self) -> float:
        return self.logprob_sum / max(self.n_tokens, 1)


PARK = "park"  # next_step's answer for a row that ends here but whose state may start rows later (Forks)


class Forks:
    """The rows a call starts later from rows of its own (forks_rows). next_step answers PARK
    for a row that ends its step but may be continued: the engine keeps that row's state and
    adds it to `parked`. After each turn in which rows of the call end, the call waits (its
    rows do not advance; other calls' do) until the caller, having handled them (`wait` returns
    once they are all handed over), calls `resume()`; what it asked for by then is done before
    the call's next token: `fork(row, count, limits, key)`, `count` new rows from a parked row's
    state (limits: (max_tokens, stop) of their step; key: an int naming their random stream),
    numbered after the call's rows so far (`next_row`: the caller numbers them before asking),
    and `drop(rows)`, letting parked states go. So the new rows join at the same point of the
    call however long the caller took, and a seeded search draws the same tree. The call
    returns once its rows are done and `close()` was called."""

    def __init__(self):
        self._lock = threading.Lock()
        self._requests: list[tuple] = []
        self._held = threading.Event()  # the call waits for the caller (or has ended)
        self.resumed = False
        self.closed = False
        self.parked: set[int] = set()  # written by the engine's thread before on_row
        self.next_row = 0  # set by the call to its number of rows
        self.wake: Callable[[], None] = lambda: None  # set by the call: turn its loop

    # the caller's side
    def fork(self, row: int, count: int, limits: tuple[int, str | None], key: int) -> range:
        with self._lock:
            rows = range(self.next_row, self.next_row + count)
            self.next_row += count
            self._requests.append(("fork", row, count, limits, key, rows.start))
        return rows

    def drop(self, rows: Sequence[int]) -> None:
        with self._lock:
            self._requests.append(("drop", list(rows)))

    def wait(self) -> None:
        """Until the call waits for the caller (every row of the turn handed over) or has ended."""
        self._held.wait()

    def resume(self) -> None:
        with self._lock:
            self._held.clear()
            self.resumed = True
        self.wake()

    def close(self) -> None:
        with self._lock:
            self.closed = self.resumed = True
        self.wake()

    # the engine's side
    def hold(self) -> None:
        with self._lock:
            self.resumed = self.closed  # a closed call's caller handles no more rows: it goes on
            self._held.set()

    def ended(self) -> None:
        """The call is over: a caller waiting for it goes on."""
        self._held.set()

    def take(self) -> tuple[list[tuple], bool]:
        """The requests made since the last take, and whether the caller has closed."""
        with self._lock:
            requests, self._requests = self._requests, []
            return requests, self.closed


class Policy(Protocol):
    name: str  # shown to users and recorded in trees and results
    n_params: int  # for FLOPs (2 x parameters x tokens); 0 when unknown
    meter: ComputeMeter  # counts calls made without a meter of their own
    # optional: streams_rows = True where generate takes on_row(row, completion), called as each row ends
    # optional: continues_rows = True where generate also takes next_step(row, completion), which
    # may send a row that stopped on its stop string on to a next step in the same call
    # optional: forks_rows = True where generate also takes forks=Forks(), which starts new rows
    # of a call of one prompt from rows of it that parked (next_step answered PARK)
    # optional: shares_searches = True where several searches may call generate at once and run faster
    # together than one after another (a shared decode loop, a server's parallel slots)

    def warm(self, prompt: str) -> None:
        """Get ready for prompts that start like this one (prefill and keep it, or nothing)."""

    def forget(self) -> None:
        """Drop whatever the backend keeps between calls (the next call starts cold)."""

    def chat_prompt(self, messages: list[dict], continue_final: bool = False) -> str:
        """Render chat messages with the model's template, ready for generation."""

    def generate(
        self,
        prompts: Sequence[str],
        n: Sequence[int],
        max_tokens: int,
        temperature: float,
        stop: str | None = "\n\n",
        top_p: float = 1.0,
        keep_state: bool = True,
        should_stop: Callable[[], bool] | None = None,
        meter: ComputeMeter | None = None,
        role: str = "policy",
    ) -> list[list[Completion]]:
        """For each prompt, n[i] sampled continuations (one batch); keep_state lets a
        later call that extends prompt + completion reuse the work done here."""

    def choice_probs(
        self,
        prompts: Sequence[str],
        choices: Sequence[str],
        meter: ComputeMeter | None = None,
        role: str = "scorer",
    ) -> list[list[float]]:
        """For each prompt, the next-token probability of each choice's first token,
        normalised over the choices."""

    def step_logprobs(
        self,
        prompt: str,
        steps: Sequence[str],
        meter: ComputeMeter | None = None,
        role: str = "scorer",
    ) -> list[float]:
        """Mean log-prob of each step's tokens, each step following the earlier ones (the
        confidence scorer's input)."""

    def reseed(self, seed: int | None) -> None:
        """Make the following samples reproducible (None: unseeded)."""


@contextmanager
def searching(policy, seed: int | None):
    """The policy as one search uses it: a view with the search's own random stream where the
    backend batches several searches' calls together (TransformersPolicy.for_search; closed
    when the search ends, so its kept states go at the next call), else the backend itself,
    reseeded."""
    own = getattr(policy, "for_search", None)
    if own is None:
        policy.reseed(seed)
        yield policy
        return
    view = own(seed)
    try:
        yield view
    finally:
        view.close()
