"""The local policy backend: a transformers causal LM with its own batched sampling loop.

One call samples every candidate of a step in one batch. Work is reused between calls:
a prompt seen before (the problem's prompt) is prefilled once and kept; each sampled
continuation keeps its KV state under the text `prompt + completion`, so the next step of
that path feeds only the one token not yet fed. A state stands for exactly the tokens that
decode to its key: where a stop string ends inside a token, the state is cut at the token
boundary and the rest of the text re-encoded as pending tokens. States shared by several
rows (a beam's M children) are fed once and then repeated. States form a tree (kv.py): a
continuation keeps only its own tokens' keys and values under its parent's, the prompt's
are one shared prefix for every path, and the states of the last call are kept (a pruned
branch is freed when the next call does not continue it) up to KEPT_STATES_MB, the oldest
dropped first; a dropped state is recomputed exactly from its text. The forward step
itself is in steppers.py.
Searches share the model (for_search gives each a view with its own random stream) and one
decode loop (continuous batching), turned on the engine thread with every other use of the
model (engine_thread.py): a call that arrives while others run joins the loop at the next
token, its rows fed in the same forward as theirs, and leaves it when its last row
finishes; each call keeps its own sampling settings, meter, Stop and kept states. Within
a call a row may go on to its next step in place (`next_step`), or park and start new rows
of the same call later, which join the running batch (`forks`: DVTS's subtrees).
Loading models lives in loading.py.
"""

from __future__ import annotations

import bisect
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..errors import UserError
from . import engine_thread
from .base import MAX_CONTEXT_TOKENS, PARK, Completion, Forks, StopRequested
from .compute import ComputeMeter, flops_params
from .engine_thread import keep_turning, on_engine, on_engine_thread
from .kv import RowState, common_prefix_length, compacted, empty_state, kept_bytes
from .steppers import make_step

ROOT_STATES_KEPT = 16  # prompts prefilled from scratch, kept across calls (LRU)
MIN_SHARED_TOKENS = 8  # a kept prompt sharing fewer leading tokens with a new one is not worth slicing
PREFILL_CHUNK = 512  # prompt tokens fed in one forward: bounds the attention's memory on a long prompt
KEPT_STATES_MB = 1024  # the kept continuations' keys and values (their ancestors counted once)
STATE_IDLE_S = 60.0  # a search that has not called this long loses its kept states (recomputed if it comes back)


@dataclass(eq=False)
class _Job:
    """One caller's generate(): its rows, how they sample (`kind`), its meter, Stop and random
    stream; then its results or its error."""

    prompts: list[str]
    n: list[int]
    kind: tuple
    should_stop: Callable[[], bool] | None
    meter: ComputeMeter
    generator: torch.Generator | None
    on_row: Callable[[int, Completion], None] | None = None  # told of each row as it ends
    next_step: Callable[[int, Completion], tuple[int, str | None] | str | None] | None = None  # a row goes on?
    forks: Forks | None = None  # rows that start later from parked rows of the call
    results: list[list[Completion]] | None = None
    error: BaseException | None = None
    finished: bool = False

    @property
    def owner(self) -> int:
        """Whose kept states this call's continuations are: its search's (the view's random
        stream), else its meter's."""
        return id(self.generator) if self.generator is not None else id(self.meter)


class _Run:
    """A call in the decode loop: its batch, the rows still sampling (`live`: batch position ->
    row), each row's tokens of its current step and that step's limits (max tokens, stop), and
    what the next forward feeds (`inputs`: first each distinct state's pending token, then each
    live row's last sampled token). A row that goes on to a next step (`next_step`) keeps its
    place: `texts`, `ids`, `since` and `parents` say where its current step starts (its prompt
    and the steps before, the tokens that state stands for, its first own position, and the
    state's segment when one was kept)."""

    def __init__(self, job: _Job, states: list[RowState], rows: list[tuple[int, int]], batch, one_each: bool):
        self.job, self.states, self.rows, self.batch = job, states, rows, batch  # rows: (prompt index, state index)
        self.inputs = _pending_inputs(states)
        self.expand = None if one_each else torch.tensor([u for _, u in rows])  # first logits -> rows
        self.next_pos = torch.tensor([states[u].next_pos + 1 for _, u in rows])  # of each row's next sampled token
        self.live = list(range(len(rows)))
        self.tokens: list[list[int]] = [[] for _ in rows]
        self.logprob_sums = [0.0] * len(rows)
        max_tokens, _, _, stop, _, _ = job.kind
        self.limits = [(max_tokens, stop)] * len(rows)
        self.texts = [job.prompts[i] for i, _ in rows]
        self.ids = [states[u].ids for _, u in rows]
        self.since: list[int | None] = [None] * len(rows)  # None: from the batch's start, under its group
        self.parents: list = [None] * len(rows)
        self.streams: list[torch.Generator | None] = [None] * len(rows)  # a forked row's own random stream
        self.parked: dict[int, tuple[RowState, str]] = {}  # row -> its state and text, for forks
        self.held = False  # rows ended in the last turn: the call waits for its caller (Forks)
        self.done: dict[int, Completion] = {}
        self.new_states: dict[str, RowState] = {}  # prompt + completion -> its state
        self.logits: torch.Tensor | None = None

    def took(self, logits: torch.Tensor) -> None:
        """The forward fed `inputs`: keep the logits (spread over the rows on the first turn)."""
        if self.expand is not None:
            self.batch, logits = self.batch.select(self.expand), logits[self.expand]
            self.expand = None
        self.logits, self.inputs = logits, None


def _pending_inputs(states: list[RowState]) -> tuple[torch.Tensor, torch.Tensor]:
    """The tokens and positions that feed each state's (one) pending token."""
    return torch.tensor([[s.pending[0]] for s in states]), torch.tensor([[s.next_pos] for s in states])


class TransformersPolicy:
    streams_rows = True  # generate(on_row=...) hands over each row as it ends
    continues_rows = True  # generate(next_step=...) lets a row go on to its next step in place
    shares_searches = True  # calls from several searches share one decode loop

    def __init__(self, model, tokenizer, name: str = "local", reuse_cache: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.reuse_cache = reuse_cache
        self.meter = ComputeMeter()  # used when a caller passes no meter
        self.n_params = sum(p.numel() for p in model.parameters())
        self.flops_params = flops_params(model)  # what FLOPs count (compute.py)
        self.has_chat_template = getattr(tokenizer, "chat_template", None) is not None
        self.bos = _bos_first(tokenizer)
        self.step = engine_thread.run(make_step, model)  # its weights are packed where they will be read
        self.eos_ids = self._eos_ids()
        self.generator = _generator(0)
        self._roots: OrderedDict[str, tuple[RowState, tuple[int, ...]]] = OrderedDict()  # prompt -> state, ids
        self._states: dict[str, RowState] = {}  # prompt + completion of each search's last call -> state
        self._owners: dict[str, int] = {}  # kept state -> the search that made it (_Job.owner)
        self._callers: dict[int, float] = {}  # search -> when it last called
        self._waiting: list[_Job] = []  # calls waiting to join the decode loop
        self._turn = threading.Condition()  # guards _waiting; a finished call is notified
        self._runs: list[_Run] = []  # calls in the decode loop
        self.batched_calls = 0  # decode-loop turns that ran the rows of several searches at once

    @property
    def forks_rows(self) -> bool:
        """generate(forks=...) starts rows from parked rows' kept states: only where states are kept."""
        return self.reuse_cache

    def _eos_ids(self) -> set[int]:
        ids = set()
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

    @on_engine
    def forget(self) -> None:
        """Drop every kept KV state (the next call starts from the bare model)."""
        self._roots.clear()
        self._states, self._owners = {}, {}

    def reseed(self, seed: int | None) -> None:
        self.generator = _generator(seed)

    def for_search(self, seed: int | None) -> SearchView:
        """This policy with a random stream of its own, for one search (base.searching)."""
        return SearchView(self, seed)

    def release(self, generator: torch.Generator) -> None:
        """The search drawing from `generator` is over: its kept states go at the next call."""
        self._callers.pop(id(generator), None)

    def chat_prompt(self, messages: list[dict], continue_final: bool = False) -> str:
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=not continue_final,
                continue_final_message=continue_final,
            )
        return "\n\n".join(m["content"] for m in messages) + ("" if continue_final else "\n\n")

    # --- states --------------------------------------------------------------------
    def _encode(self, text: str) -> list[int]:
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def _prompt_ids(self, prompt: str, room: int = 0) -> list[int]:
        """The prompt's token ids; a prompt that leaves less than `room` tokens of the context
        is refused (UserError), a very long one before it is even tokenized."""
        return self._prompt_encoding(prompt, room)[0]

    def _prompt_encoding(self, prompt: str, room: int = 0, offsets: bool = False) -> tuple[list[int], list | None]:
        """The prompt's token ids as the engine reads them (BOS first where the tokenizer puts
        it first) and, with `offsets`, each token's character span ((0, 0) for an added BOS)."""
        if len(prompt) > 16 * MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path's prompt is {len(prompt)} characters long: the engine reads at most "
                f"{MAX_CONTEXT_TOKENS} tokens; continue from an earlier step"
            )
        enc = self.tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=offsets)
        ids, spans = enc["input_ids"], enc["offset_mapping"] if offsets else None
        if len(ids) + room > MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path's prompt is {len(ids)} tokens long: with {room} to generate it does not fit "
                f"the engine's {MAX_CONTEXT_TOKENS}; continue from an earlier step"
            )
        if self.bos and ids[:1] != self.bos:
            ids, spans = self.bos + ids, [(0, 0)] + spans if offsets else None
        return ids, spans

    def _lookup(self, prompt: str, room: int = 0) -> tuple[RowState, list[int] | None]:
        """The best known state for `prompt`: exact, else the keys and values of the longest run
        of leading tokens it shares with a kept prompt (the few-shot part of a new problem's
        prompt, say), with the rest of its tokens pending. Also the prompt's token ids when
        they had to be computed (None for an exact hit)."""
        if self.reuse_cache:
            if prompt in self._states:
                return self._states[prompt], None
            if prompt in self._roots:
                self._roots.move_to_end(prompt)
                return self._roots[prompt][0], None
        ids = self._prompt_ids(prompt, room)
        return self._shared_state(ids, len(ids) - 1), ids  # at least one token stays pending

    def _shared_state(self, ids: list[int], most: int) -> RowState:
        """A state for `ids` holding the keys and values of the longest run of leading tokens (at
        most `most`) it shares with a kept prompt, the rest of its tokens pending."""
        shared, source = 0, None
        if self.reuse_cache:
            for state, root_ids in self._roots.values():
                common = common_prefix_length(ids, root_ids[: state.length])
                if common > shared:
                    shared, source = common, state.cache
        shared = min(shared, most)
        if source is None or shared < MIN_SHARED_TOKENS:
            return empty_state(ids)
        return RowState(source.head(shared), shared, tuple(ids[shared:]), tuple(ids))

    @on_engine
    def warm(self, prompt: str) -> None:
        """Prefill `prompt` and keep it, so later prompts that start like it begin from its state."""
        self._prepare([prompt], self.meter, "policy")

    def _prefill(self, state: RowState, meter: ComputeMeter, role: str) -> RowState:
        """Feed all pending tokens but the last, alone (no padding), PREFILL_CHUNK at a time."""
        if len(state.pending) <= 1:
            return state
        feed = list(state.pending[:-1])
        batch = self.step.new_batch([state], spare=len(feed))
        for _ in self._feed(batch, feed, state.next_pos):
            pass
        meter.add(role, self.flops_params, prefill=len(feed))
        return batch.extract(0, state.next_pos + len(feed), [state.pending[-1]], state.ids)

    def _feed(self, batch, tokens: list[int], first: int, every_position: bool = False):
        """Feed one row's `tokens` (positions from `first`) into `batch`, PREFILL_CHUNK at a time
        (bounding the attention's memory on a long text); yields (position of the chunk's first
        token, the step's logits) per chunk."""
        for start in range(0, len(tokens), PREFILL_CHUNK):
            chunk = tokens[start : start + PREFILL_CHUNK]
            at = first + start
            positions = torch.arange(at, at + len(chunk)).unsqueeze(0)
            yield at, self.step(torch.tensor([chunk]), positions, batch, every_position)

    def _prepare(
        self, prompts: Sequence[str], meter: ComputeMeter, role: str, remember: bool = True, room: int = 0
    ) -> list[RowState]:
        """States with exactly one pending token; new prompts are kept for later calls, their
        cache made one prefix that every path from them shares."""
        states = []
        for prompt in prompts:
            state, ids = self._lookup(prompt, room)
            if len(state.pending) > 1:
                state = self._prefill(state, meter, role)
                if self.reuse_cache and remember and ids is not None:  # a new prompt, not a kept path
                    state = state.as_root()
                    self._roots[prompt] = (state, tuple(ids))
                    while len(self._roots) > ROOT_STATES_KEPT:
                        self._roots.popitem(last=False)
            states.append(state)
        return states

    # --- sampling ------------------------------------------------------------------
    @torch.inference_mode()
    def _sample(self, logits: torch.Tensor, temperature: float, top_p: float, draws: torch.Tensor | None = None):
        """Tokens drawn by inverse CDF (one uniform number per row, `draws` [rows, 1], else the
        policy's stream: far cheaper than torch.multinomial over a large vocabulary), with
        their log-probs at temperature 1."""
        normaliser = torch.logsumexp(logits, dim=-1)
        if temperature <= 0:
            tokens = logits.argmax(dim=-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1)
            if top_p < 1.0:
                sorted_probs, order = probs.sort(dim=-1, descending=True)
                drop = sorted_probs.cumsum(-1) - sorted_probs > top_p
                sorted_probs[drop] = 0.0
                probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs)
            cdf = probs.cumsum_(dim=-1)
            if draws is None:
                draws = torch.rand(len(probs), 1, generator=self.generator)
            draw = draws.to(cdf.dtype) * cdf[:, -1:]
            tokens = torch.searchsorted(cdf, draw, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)
        return tokens, logits.gather(1, tokens.unsqueeze(1)).squeeze(1) - normaliser

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
        generator: torch.Generator | None = None,
        on_row: Callable[[int, Completion], None] | None = None,
        next_step: Callable[[int, Completion], tuple[int, str | None] | str | None] | None = None,
        forks: Forks | None = None,
    ) -> list[list[Completion]]:
        """n[i] completions of each prompt. Calls from several threads (several searches) share
        one decode loop, turned on the engine thread (engine_thread.py): a call joins it at the
        next token, whatever the others are doing, and leaves it when its last row finishes; each
        keeps its own meter, Stop and random stream (`generator`, else the policy's), so a seeded
        search draws the same alone or beside others. `on_row(row, completion)` is called (on
        the engine thread) as each row ends, rows counted across the prompts in order.
        `next_step(row, completion)`, called just before, for a row that stopped on its stop
        string and can go on in place, returns (max_tokens, stop) of the row's next step, its
        prompt the row's text so far, or None to end it: the row keeps its place in the batch
        instead of waiting for a next call (continuous batching across a chain's steps); the call
        returns each row's last completion. With `forks` (a call of one prompt), next_step may
        answer PARK: the row ends and its state is kept for rows the caller starts from it later
        (Forks.fork), which join this batch at the next token (a subtree's next expansion
        without waiting for the other subtrees'); the call returns once `forks` is closed."""
        if len(prompts) != len(n):
            raise ValueError("prompts and n differ in length")
        if forks is not None:
            if len({p for p, k in zip(prompts, n) if k > 0}) != 1:
                raise ValueError("forks need a call of one prompt")
            forks.next_row, forks.wake = sum(n), lambda: keep_turning(self._loop_turn)
        job = _Job(
            list(prompts),
            list(n),
            (max_tokens, temperature, top_p, stop, keep_state, role),
            should_stop,
            meter or self.meter,
            generator,
            on_row,
            next_step,
            forks,
        )
        with self._turn:
            self._waiting.append(job)
        if on_engine_thread():  # called by work already on the engine thread: turn the loop here
            while not job.finished:
                self._loop_turn()
        else:
            keep_turning(self._loop_turn)
            with self._turn:
                while not job.finished:
                    self._turn.wait()
        if job.error is not None:
            raise job.error
        return job.results

    def _loop_turn(self) -> bool:
        """One turn of the decode loop (on the engine thread); whether calls remain in it. A
        failure outside any one call's work ends every call with it (none waits forever)."""
        try:
            self._loop_step()
        except Exception as exc:
            for run in list(self._runs):
                self._finish(run, exc)
            with self._turn:
                waiting, self._waiting = self._waiting, []
            for job in waiting:
                job.error = exc
                self._done(job)
        if not self._runs:
            self.step.release()  # nothing the step kept for the calls that left is read again
        with self._turn:  # a call waiting for its caller's forks does not turn the loop
            return bool(self._waiting or any(run.live and not run.held for run in self._runs))

    def _loop_step(self) -> None:
        """One turn of the decode loop: admit the waiting calls, then sample one token in every
        running call's rows and feed them (with the new calls' first tokens) in one forward."""
        with self._turn:
            joining, self._waiting = self._waiting, []
        for job in joining:
            try:
                run = self._start(job)
            except Exception as exc:  # a prompt too long (UserError), a failure (memory, a bug): this call's error
                job.error, run = exc, None
                self._done(job)
            if run is not None:
                self._runs.append(run)
        self.batched_calls += len({run.job.owner for run in self._runs}) > 1
        try:
            for run in list(self._runs):
                if run.job.should_stop is not None and run.job.should_stop():
                    self._finish(run, StopRequested())  # its rows leave the loop now
                else:
                    if run.logits is not None and not run.held:
                        self._sample_step(run)
                    if run.job.forks is not None and run in self._runs:
                        try:
                            self._take_forks(run)
                        except Exception as exc:  # a request that does not fit its call: that call's error
                            self._finish(run, exc)
            feeding = [run for run in self._runs if run.inputs is not None and not run.held]
            if feeding:
                outputs = self.step.forward([(*run.inputs, run.batch) for run in feeding])
                for run, logits in zip(feeding, outputs):
                    run.took(logits)
        except Exception as exc:  # a failure of the loop (memory, a bug): every running call sees it
            for run in list(self._runs):
                self._finish(run, exc)

    def _start(self, job: _Job) -> _Run | None:
        """The call's rows ready to join the loop (its prompts prefilled), or None when it has
        nothing to sample; UserError when a prompt leaves no room in the context."""
        max_tokens, _, _, _, _, role = job.kind
        unique = list(dict.fromkeys(p for p, k in zip(job.prompts, job.n) if k > 0))
        states = self._prepare(unique, job.meter, role, room=max_tokens + 1)
        longest = max((s.next_pos for s in states), default=0)  # a kept state's length is here
        if longest + max_tokens + 1 > MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path is {longest} tokens long: with {max_tokens} to generate it does not fit the "
                f"engine's {MAX_CONTEXT_TOKENS}; continue from an earlier step"
            )
        rows = [(i, unique.index(p)) for i, (p, k) in enumerate(zip(job.prompts, job.n)) for _ in range(k)]
        if not rows:
            job.results = [[] for _ in job.prompts]
            self._done(job)
            return None
        one_each = [u for _, u in rows] == list(range(len(states)))  # no state repeated: its chain goes in its row
        batch = self.step.new_batch(states, spare=max_tokens + 1, inline=one_each)
        job.meter.add(role, self.flops_params, prefill=len(states))  # each state's pending token, fed next
        return _Run(job, states, rows, batch, one_each)

    def _sample_step(self, run: _Run) -> None:
        """Sample one token in each of the run's live rows; finished rows leave (with their
        continuation's state kept), and the rest are fed at the next forward."""
        job = run.job
        _, temperature, top_p, _, keep_state, role = job.kind
        sampled, logprobs = self._sample(run.logits, temperature, top_p, self._draws(run, temperature))
        run.logits = None
        job.meter.add(role, self.flops_params, generated=len(run.live))
        ended = []
        sampled_list, logprob_list = sampled.tolist(), logprobs.tolist()
        for pos, row in enumerate(run.live):
            token = sampled_list[pos]
            ids = run.tokens[row]
            ids.append(token)
            run.logprob_sums[row] += logprob_list[pos]
            max_tokens, stop = run.limits[row]
            reason = self._stop_reason(ids, token, stop, len(ids) >= max_tokens)
            if not reason:
                continue
            text, kept = self._text(ids, stop, reason)
            completion = Completion(text, len(ids), run.logprob_sums[row], reason, kept or ())
            fed = len(ids) - 1  # the batch holds the keys and values of all but the last token
            fits = reason != "eos" and kept is not None and len(kept) > fed and kept[:fed] == tuple(ids[:fed])
            state = None
            if fits and keep_state and self.reuse_cache:
                state = run.batch.extract(
                    pos, int(run.next_pos[pos]), list(kept[fed:]), run.ids[row] + kept, run.since[row], run.parents[row]
                )
                run.new_states[run.texts[row] + text] = state
            # in place where the step's text ends with its last token (a stop inside a token: next call)
            going_on = job.next_step is not None and reason == "stop" and kept == tuple(ids)
            limits = job.next_step(row, completion) if going_on else None
            if limits == PARK:
                limits = None
                if state is not None and job.forks is not None:
                    run.parked[row] = (state, run.texts[row] + text)
                    job.forks.parked.add(row)
            if job.on_row is not None:
                job.on_row(row, completion)
            if limits is None:
                ended.append(pos)
                run.done[row] = completion
                continue
            run.limits[row], run.tokens[row], run.logprob_sums[row] = limits, [], 0.0
            run.texts[row] += text
            run.ids[row] += kept
            if state is not None:
                run.since[row], run.parents[row] = run.batch.length, state.cache
        if len(run.done) == len(run.rows) and job.forks is None:
            self._finish(run)
            return
        next_pos = run.next_pos
        if ended:
            order = compacted(len(run.live), set(ended))
            run.batch.keep(order)
            run.live = [run.live[p] for p in order]
            keep = torch.tensor(order, dtype=torch.long)
            next_pos, sampled = next_pos[keep], sampled[keep]
        run.inputs = (sampled.unsqueeze(1), next_pos.unsqueeze(1)) if run.live else None
        run.next_pos = next_pos + 1
        if ended and job.forks is not None:  # the caller decides on these rows before the call goes on
            run.held = True
            job.forks.hold()

    def _take_forks(self, run: _Run) -> None:
        """Once the caller has resumed the call: its fork and drop requests; the call ends once
        closed with no row left."""
        if run.held:
            if not run.job.forks.resumed:
                return
            run.held = False
        requests, closed = run.job.forks.take()
        for request in requests:
            if request[0] == "drop":
                for row in request[1]:
                    state, key = run.parked.pop(row, (None, None))
                    if state is not None and run.new_states.get(key) is state:  # not another row's of that text
                        del run.new_states[key]
            else:
                self._join(run, *request[1:])
        if closed and not run.live:
            self._finish(run)

    def _join(self, run: _Run, row: int, count: int, limits: tuple[int, str | None], key: int, first: int) -> None:
        """`count` new rows (numbered from `first`) from parked `row`'s state, fed its pending
        token at the next forward."""
        job = run.job
        state, text = run.parked.pop(row)
        if len(state.pending) != 1 or len(run.rows) != first:
            raise ValueError("a fork's state or numbering does not match its call")
        run.new_states[text] = state  # kept at the call's end (a row of the same text may have been dropped)
        since = run.batch.length  # the new rows' own tokens start here
        run.batch.add_rows(state.cache, count)
        job.prompts.append(text)
        seed = hash(((job.generator or self.generator).initial_seed(), key)) & (2**63 - 1)
        stream = _generator(seed)
        run.rows += [(len(job.prompts) - 1, 0)] * count
        for values, value in (
            (run.limits, limits),
            (run.texts, text),
            (run.ids, state.ids),
            (run.since, since),
            (run.parents, state.cache),
            (run.streams, stream),
        ):
            values += [value] * count
        run.tokens += [[] for _ in range(count)]
        run.logprob_sums += [0.0] * count
        run.live += range(first, first + count)
        tokens, positions = torch.tensor([[state.pending[0]]] * count), torch.tensor([[state.next_pos]] * count)
        if run.inputs is not None:
            tokens, positions = torch.cat([run.inputs[0], tokens]), torch.cat([run.inputs[1], positions])
        run.inputs = (tokens, positions)
        run.next_pos = torch.cat([run.next_pos, torch.full((count,), state.next_pos + 1)])
        job.meter.add(job.kind[5], self.flops_params, prefill=count)

    def _finish(self, run: _Run, error: BaseException | None = None) -> None:
        """The run leaves the loop; its call gets its completions (keeping their states) or `error`."""
        self._runs.remove(run)
        job = run.job
        if error is not None:
            job.results, job.error = None, error
            self._done(job)
            return
        job.results = [[] for _ in job.prompts]
        for row, (prompt_index, _) in enumerate(run.rows):
            job.results[prompt_index].append(run.done[row])
        try:
            if job.kind[4] and self.reuse_cache:  # keep_state
                self._keep_states(run.new_states, dict.fromkeys(run.new_states, job.owner), {job.owner})
        finally:
            self._done(job)

    def _done(self, job: _Job) -> None:
        """The call has its results or its error: its thread returns now (not when the loop's is done)."""
        with self._turn:
            job.finished = True
            self._turn.notify_all()

    def _draws(self, run: _Run, temperature: float) -> torch.Tensor | None:
        """One uniform number per live row from the run's random stream, handed to its rows in
        their original order (so a seeded call draws the same whatever order compaction left its
        rows in, and whatever other calls share the loop); None when greedy."""
        if temperature <= 0:
            return None
        streams: dict[int, tuple[torch.Generator, list[int]]] = {}  # forked rows draw from streams of their own
        for pos in sorted(range(len(run.live)), key=run.live.__getitem__):
            stream = run.streams[run.live[pos]] or run.job.generator or self.generator
            streams.setdefault(id(stream), (stream, []))[1].append(pos)
        draws = torch.empty(len(run.live), 1)
        for stream, positions in streams.values():
            draws[torch.tensor(positions)] = torch.rand(len(positions), 1, generator=stream)
        return draws

    def _keep_states(self, new_states: dict[str, RowState], owners: dict[str, int], callers: set[int]) -> None:
        """Keep this call's continuations in place of those of the same searches' last call;
        another search's stay while it called within STATE_IDLE_S; all under KEPT_STATES_MB."""
        now = time.monotonic()
        for caller in callers:
            self._callers[caller] = now
        self._callers = {c: t for c, t in self._callers.items() if now - t <= STATE_IDLE_S}
        others = self._callers.keys() - callers  # running searches not in this call
        states = {k: v for k, v in self._states.items() if self._owners.get(k) in others}
        states.update(new_states)
        self._states = _capped(states, KEPT_STATES_MB * 2**20)
        merged = {**self._owners, **owners}
        self._owners = {k: merged[k] for k in self._states}

    def _stop_reason(self, ids: list[int], token: int, stop: str | None, at_limit: bool) -> str | None:
        if token in self.eos_ids:
            return "eos"
        if stop is not None:
            tail = self.tokenizer.decode(ids[-8:], skip_special_tokens=True)
            if stop in tail:
                return "stop"
        return "length" if at_limit else None

    def _text(self, ids: list[int], stop: str | None, reason: str) -> tuple[str, tuple[int, ...] | None]:
        """The completion's text (cut just after the stop string), and the tokens that decode to
        exactly that text: `ids` themselves, or when the cut falls inside a token (or a special
        token was dropped) the tokens up to the last boundary before the cut plus the rest of
        the text re-encoded; None when no such tokens are found."""
        decode = self.tokenizer.decode
        full = decode(ids, skip_special_tokens=True)
        text = full[: full.index(stop) + len(stop)] if reason == "stop" and stop else full
        if text == full and decode(ids, skip_special_tokens=False) == full:
            return text, tuple(ids)
        for k in range(len(ids) - 1, max(len(ids) - 9, -1), -1):  # the stop check reads the last 8 tokens
            head = decode(ids[:k], skip_special_tokens=False)
            if text.startswith(head):
                kept = tuple(ids[:k]) + tuple(self._encode(text[len(head) :]))
                return (text, kept) if decode(list(kept), skip_special_tokens=False) == text else (text, None)
        return text, None

    @on_engine
    @torch.inference_mode()
    def step_logprobs(
        self, prompt: str, steps: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[float]:
        """Mean log-prob of each given step's tokens, each step following the earlier ones. The
        prompt is prefilled and kept as search prompts are (so the next path's prompt reads its
        shared few-shot part from the cache); the step tokens are fed on top of it (_feed), with
        the logits of every fed position."""
        meter = meter or self.meter
        text, spans = prompt, []
        for step in steps:
            spans.append((len(text), len(text) + len(step)))
            text += step + "\n\n"
        ids, offsets = self._prompt_encoding(text, offsets=True)  # read as the search reads it
        counted: list[list[int]] = [[] for _ in spans]  # each step's tokens, by where they start
        for i, (a, _) in enumerate(offsets[1:], start=1):
            k = bisect.bisect_right(spans, (a, math.inf)) - 1
            if k >= 0 and a < spans[k][1]:
                counted[k].append(i)
        fed = [i for c in counted for i in c]
        if not fed:
            return [0.0] * len(steps)
        self._prepare([prompt], meter, role)  # kept: the prompt's state, shared below
        ids = ids[: fed[-1] + 1]  # nothing after the last step's last token is read
        state = self._shared_state(ids, fed[0] - 1)  # the token before the first step's is fed
        pending = list(state.pending)
        batch = self.step.new_batch([state], spare=len(pending))
        token_logprobs: list[float] = []
        for at, logits in self._feed(batch, pending, state.next_pos, every_position=True):
            targets = torch.tensor(ids[at + 1 : at + 1 + logits.shape[1]])
            logprobs = torch.log_softmax(logits[0, : len(targets)], dim=-1)
            token_logprobs += logprobs.gather(1, targets.unsqueeze(1)).squeeze(1).tolist()
        meter.add(role, self.flops_params, prefill=len(pending))
        offset = state.next_pos + 1  # token_logprobs[j] is that of token offset + j
        return [sum(token_logprobs[i - offset] for i in c) / len(c) if c else 0.0 for c in counted]

    @on_engine
    @torch.inference_mode()
    def choice_probs(
        self, prompts: Sequence[str], choices: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[list[float]]:
        meter = meter or self.meter
        choice_ids = [self._encode(c)[0] for c in choices]
        out: list[list[float]] = []
        for start in range(0, len(prompts), 16):
            chunk = list(prompts[start : start + 16])
            states = self._prepare(chunk, meter, role, remember=False)
            logits = self.step(*_pending_inputs(states), self.step.new_batch(states, spare=1))
            meter.add(role, self.flops_params, prefill=len(states))
            probs = torch.softmax(logits[:, choice_ids], dim=-1)
            out.extend(probs.tolist())
        return out


class SearchView:
    """One search's view of a shared TransformersPolicy: everything is the policy's, but its
    samples come from the search's own random stream, so searches batched together each draw
    as they would alone."""

    def __init__(self, policy: TransformersPolicy, seed: int | None):
        self.policy = policy
        self.reseed(seed)

    def reseed(self, seed: int | None) -> None:
        self.generator = _generator(seed)

    def generate(self, *args, **kwargs) -> list[list[Completion]]:
        return self.policy.generate(*args, generator=self.generator, **kwargs)

    def close(self) -> None:
        """The search is over: its kept states go at the next call."""
        self.policy.release(self.generator)

    def for_search(self, seed: int | None) -> SearchView:
        return SearchView(self.policy, seed)

    def __getattr__(self, name: str):
        return getattr(self.policy, name)


def _bos_first(tokenizer) -> list[int]:
    """[BOS] when the tokenizer puts it before a text (Gemma's does, by its post-processor), else [].
    Read from what the tokenizer does, not its add_bos_token flag, which a tokenizer saved and
    loaded again (a converted GGUF) may lose: Gemma 3 without BOS answered 0 of 100 problems."""
    bos = tokenizer.bos_token_id
    first = tokenizer("1", add_special_tokens=True)["input_ids"][:1]
    return [bos] if bos is not None and first == [bos] else []


def _generator(seed: int | None) -> torch.Generator:
    """A random stream seeded with `seed` (None: from the system's entropy)."""
    generator = torch.Generator()
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)
    return generator


def _capped(states: dict[str, RowState], limit: int) -> dict[str, RowState]:
    """`states` less the oldest ones while they and their ancestors hold over `limit` bytes."""
    names = list(states)
    while names and kept_bytes(states[n].cache for n in names) > limit:
        names = names[max(1, len(names) // 8) :]
    return {n: states[n] for n in names}
