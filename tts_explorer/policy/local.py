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
One lock serialises the calls (the app's preload thread and the searches share a model).
Loading models lives in loading.py.
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import torch

from ..errors import UserError
from .base import MAX_CONTEXT_TOKENS, Completion, StopRequested
from .compute import ComputeMeter, flops_params
from .kv import RowState, common_prefix_length, compacted, empty_state, kept_bytes
from .steppers import make_step

ROOT_STATES_KEPT = 16  # prompts prefilled from scratch, kept across calls (LRU)
MIN_SHARED_TOKENS = 8  # a kept prompt sharing fewer leading tokens with a new one is not worth slicing
PREFILL_CHUNK = 512  # prompt tokens fed in one forward: bounds the attention's memory on a long prompt
KEPT_STATES_MB = 1024  # the kept continuations' keys and values (their ancestors counted once)


def _locked(method):
    """Run a method under the policy's lock."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper


class TransformersPolicy:
    def __init__(self, model, tokenizer, name: str = "local", reuse_cache: bool = True):
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.name = name
        self.reuse_cache = reuse_cache
        self.meter = ComputeMeter()  # used when a caller passes no meter
        self.n_params = sum(p.numel() for p in model.parameters())
        self.flops_params = flops_params(model)  # what FLOPs count (compute.py)
        self.has_chat_template = getattr(tokenizer, "chat_template", None) is not None
        self.step = make_step(model)
        self.eos_ids = self._eos_ids()
        self.generator = torch.Generator().manual_seed(0)
        self._roots: OrderedDict[str, tuple[RowState, tuple[int, ...]]] = OrderedDict()  # prompt -> state, ids
        self._states: dict[str, RowState] = {}  # prompt + completion of the last call -> state
        self._lock = threading.RLock()

    def _eos_ids(self) -> set[int]:
        ids = set()
        for source in (self.tokenizer.eos_token_id, getattr(self.model.generation_config, "eos_token_id", None)):
            if isinstance(source, int):
                ids.add(source)
            elif source:
                ids.update(source)
        return ids

    @_locked
    def forget(self) -> None:
        """Drop every kept KV state (the next call starts from the bare model)."""
        self._roots.clear()
        self._states = {}

    def reseed(self, seed: int | None) -> None:
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(seed)

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
        if len(prompt) > 16 * MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path's prompt is {len(prompt)} characters long: the engine reads at most "
                f"{MAX_CONTEXT_TOKENS} tokens; continue from an earlier step"
            )
        ids = self._encode(prompt)
        if len(ids) + room > MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path's prompt is {len(ids)} tokens long: with {room} to generate it does not fit "
                f"the engine's {MAX_CONTEXT_TOKENS}; continue from an earlier step"
            )
        if self.tokenizer.bos_token_id is not None and getattr(self.tokenizer, "add_bos_token", False):
            ids = [self.tokenizer.bos_token_id] + ids
        return ids

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
        shared, source = 0, None
        if self.reuse_cache:
            for state, root_ids in self._roots.values():
                common = common_prefix_length(ids, root_ids[: state.length])
                if common > shared:
                    shared, source = common, state.cache
        shared = min(shared, len(ids) - 1)  # at least one token stays pending
        if source is None or shared < MIN_SHARED_TOKENS:
            return empty_state(ids), ids
        return RowState(source.head(shared), shared, tuple(ids[shared:]), tuple(ids)), ids

    @_locked
    def warm(self, prompt: str) -> None:
        """Prefill `prompt` and keep it, so later prompts that start like it begin from its state."""
        self._prepare([prompt], self.meter, "policy")

    def _prefill(self, state: RowState, meter: ComputeMeter, role: str) -> RowState:
        """Feed all pending tokens but the last, alone (no padding), PREFILL_CHUNK at a time."""
        if len(state.pending) <= 1:
            return state
        feed = list(state.pending[:-1])
        batch = self.step.new_batch([state], spare=len(feed))
        for start in range(0, len(feed), PREFILL_CHUNK):
            chunk = feed[start : start + PREFILL_CHUNK]
            first = state.next_pos + start
            self.step(torch.tensor([chunk]), torch.arange(first, first + len(chunk)).unsqueeze(0), batch)
        meter.add(role, self.flops_params, prefill=len(feed))
        return batch.extract(0, state.next_pos + len(feed), [state.pending[-1]], state.ids)

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

    def _first_logits(
        self, states: list[RowState], meter: ComputeMeter, role: str, spare: int = 1, inline: bool = False
    ):
        """Feed each state's pending token once; return the batch and the logits of the unique states.

        The batch keeps room for `spare` tokens in all (this one and those decoded after it);
        `inline`: each state keeps one row (kv.py)."""
        batch = self.step.new_batch(states, spare=spare, inline=inline)
        tokens = torch.tensor([[s.pending[0]] for s in states])
        positions = torch.tensor([[s.next_pos] for s in states])
        logits = self.step(tokens, positions, batch)
        meter.add(role, self.flops_params, prefill=len(states))
        return batch, logits

    # --- sampling ------------------------------------------------------------------
    @torch.inference_mode()
    def _sample(self, logits: torch.Tensor, temperature: float, top_p: float, rows: list[int] | None = None):
        """Tokens drawn by inverse CDF (one uniform number per row: far cheaper than
        torch.multinomial over a large vocabulary), with their log-probs at temperature 1.
        `rows`: each batch row's original index; the uniform numbers go to rows in that order,
        so a seeded run draws the same whatever order compaction left the rows in."""
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
            draw = torch.rand(len(probs), 1, generator=self.generator, dtype=cdf.dtype)
            if rows is not None:
                draw = draw[torch.tensor(rows).argsort().argsort()]
            draw = draw * cdf[:, -1:]
            tokens = torch.searchsorted(cdf, draw, right=True).squeeze(1).clamp_(max=probs.shape[1] - 1)
        return tokens, logits.gather(1, tokens.unsqueeze(1)).squeeze(1) - normaliser

    @_locked
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
        meter = meter or self.meter
        if len(prompts) != len(n):
            raise ValueError("prompts and n differ in length")
        unique = list(dict.fromkeys(p for p, k in zip(prompts, n) if k > 0))
        if not unique:
            return [[] for _ in prompts]
        states = self._prepare(unique, meter, role, room=max_tokens + 1)
        longest = max(s.next_pos for s in states)  # a kept state skips the prompt's check: its length is here
        if longest + max_tokens + 1 > MAX_CONTEXT_TOKENS:
            raise UserError(
                f"this path is {longest} tokens long: with {max_tokens} to generate it does not fit the "
                f"engine's {MAX_CONTEXT_TOKENS}; continue from an earlier step"
            )
        # batch row -> (prompt index, unique state index)
        owners = [(i, unique.index(p)) for i, (p, k) in enumerate(zip(prompts, n)) for _ in range(k)]
        rows = [u for _, u in owners]
        one_each = rows == list(range(len(unique)))  # no state repeated: its chain goes in its row
        batch, logits = self._first_logits(states, meter, role, spare=max_tokens + 1, inline=one_each)
        if not one_each:
            batch, logits = batch.select(torch.tensor(rows)), logits[rows]
        next_pos = torch.tensor([states[u].next_pos + 1 for _, u in owners])
        finished = self._decode(
            batch,
            logits,
            next_pos,
            owners,
            unique,
            states,
            max_tokens,
            temperature,
            top_p,
            stop,
            keep_state,
            should_stop,
            meter,
            role,
        )
        results: list[list[Completion]] = [[] for _ in prompts]
        for (prompt_index, _), completion in zip(owners, finished):
            results[prompt_index].append(completion)
        return results

    def _decode(
        self,
        batch,
        logits,
        next_pos,
        owners,
        unique,
        states,
        max_tokens,
        temperature,
        top_p,
        stop,
        keep_state,
        should_stop,
        meter,
        role,
    ) -> list[Completion]:
        total = len(owners)
        live = list(range(total))  # batch position -> original row
        tokens_out: list[list[int]] = [[] for _ in range(total)]
        logprob_sums = [0.0] * total
        done: dict[int, Completion] = {}
        new_states: dict[str, RowState] = {}
        for step in range(max_tokens):
            if should_stop is not None and should_stop():
                raise StopRequested()
            sampled, logprobs = self._sample(logits, temperature, top_p, live)
            meter.add(role, self.flops_params, generated=len(live))
            ended = []
            sampled_list, logprob_list = sampled.tolist(), logprobs.tolist()
            for pos, row in enumerate(live):
                token = sampled_list[pos]
                tokens_out[row].append(token)
                logprob_sums[row] += logprob_list[pos]
                reason = self._stop_reason(tokens_out[row], token, stop, step + 1 >= max_tokens)
                if reason:
                    ended.append(pos)
                    ids = tokens_out[row]
                    text, kept = self._text(ids, stop, reason)
                    done[row] = Completion(text, len(ids), logprob_sums[row], reason, kept or ())
                    fed = len(ids) - 1  # the batch holds the keys and values of all but the last token
                    if (
                        keep_state
                        and self.reuse_cache
                        and reason != "eos"
                        and kept is not None
                        and len(kept) > fed
                        and kept[:fed] == tuple(ids[:fed])
                    ):
                        owner = states[owners[row][1]]
                        new_states[unique[owners[row][1]] + text] = batch.extract(
                            pos, int(next_pos[pos]), list(kept[fed:]), owner.ids + kept
                        )
            if len(done) == total:
                break
            if ended:
                order = compacted(len(live), set(ended))
                live = [live[p] for p in order]
                batch.keep(order)
                keep = torch.tensor(order, dtype=torch.long)
                next_pos, sampled = next_pos[keep], sampled[keep]
            logits = self.step(sampled.unsqueeze(1), next_pos.unsqueeze(1), batch)
            next_pos = next_pos + 1
        if keep_state and self.reuse_cache:
            self._states = _capped(new_states, KEPT_STATES_MB * 2**20)
        return [done[row] for row in range(total)]

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

    @_locked
    @torch.inference_mode()
    def step_logprobs(
        self, prompt: str, steps: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[float]:
        """Mean log-prob of each given step's tokens, each step following the earlier ones."""
        text, spans = prompt, []
        for step in steps:
            spans.append((len(text), len(text) + len(step)))
            text += step + "\n\n"
        self._prompt_ids(text)  # refuses a text longer than the context
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = torch.tensor([enc["input_ids"]])
        logprobs = torch.log_softmax(self.model(input_ids=ids).logits[0, :-1].float(), dim=-1)
        token_logprobs = logprobs.gather(1, ids[0, 1:].unsqueeze(1)).squeeze(1).tolist()
        (meter or self.meter).add(role, self.flops_params, prefill=ids.shape[1])
        out = []
        for start, end in spans:
            values = [
                token_logprobs[i - 1] for i, (a, b) in enumerate(enc["offset_mapping"]) if i > 0 and start <= a < end
            ]
            out.append(sum(values) / len(values) if values else 0.0)
        return out

    @_locked
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
            _, logits = self._first_logits(states, meter, role)
            probs = torch.softmax(logits[:, choice_ids], dim=-1)
            out.extend(probs.tolist())
        return out


def _capped(states: dict[str, RowState], limit: int) -> dict[str, RowState]:
    """`states` less the oldest ones while they and their ancestors hold over `limit` bytes."""
    names = list(states)
    while names and kept_bytes(states[n].cache for n in names) > limit:
        names = names[max(1, len(names) // 8) :]
    return {n: states[n] for n in names}
