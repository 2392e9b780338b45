"""llama.cpp (through llama-cpp-python) behind the text-level policy protocol.

This is the practical CPU reference the benchmark compares the engine with: the same
GGUF file, candidates generated one after another, each reusing whatever prefix the
previous call left in llama.cpp's KV cache (siblings share their parent's path), with
llama.cpp's own sampler. llama-cpp-python is an optional extra (it compiles llama.cpp
when installed): `pip install llama-cpp-python`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..errors import UserError
from .base import Completion, StopRequested
from .compute import ComputeMeter
from .kv import common_prefix_length

CONTEXT_TOKENS = 4096


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


class LlamaCppPolicy:
    """`chat_template_tokenizer` renders chat prompts (the GGUF's template, as transformers read it)."""

    def __init__(self, gguf: Path, chat_template_tokenizer, flops_params: int, threads: int, name: str = "llama.cpp"):
        try:
            import llama_cpp
        except ImportError:
            raise UserError("llama-cpp-python is not installed (pip install llama-cpp-python)") from None
        self._lib = llama_cpp
        self.llm = llama_cpp.Llama(
            str(gguf), n_ctx=CONTEXT_TOKENS, n_threads=threads, n_threads_batch=threads, verbose=False
        )
        self._vocab = llama_cpp.llama_model_get_vocab(self.llm.model)
        self.template = chat_template_tokenizer
        self.name = name
        self.flops_params = flops_params  # what its FLOPs count (policy/compute.py)
        self.meter = ComputeMeter()
        self._seed, self._draws = 0, 0  # each candidate gets its own seed: seed + draws so far

    def forget(self) -> None:
        """Drop llama.cpp's cached sequence (the next call starts from the bare model)."""
        self.llm.reset()

    def warm(self, prompt: str) -> None:
        """Evaluate the prompt, leaving it in llama.cpp's cache for the next call."""
        self.llm.reset()
        self.llm.eval(self._tokens(prompt))

    def reseed(self, seed: int | None) -> None:
        import random

        self._seed = random.randrange(2**31) if seed is None else seed
        self._draws = 0

    def chat_prompt(self, messages: list[dict], continue_final: bool = False) -> str:
        return self.template.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=not continue_final, continue_final_message=continue_final
        )

    def _tokens(self, text: str) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)

    def _fed_for(self, tokens: list[int]) -> int:
        """How many prompt tokens llama.cpp will evaluate: all but the prefix already in its cache."""
        common = common_prefix_length(self.llm.input_ids[: self.llm.n_tokens].tolist(), tokens)
        return len(tokens) - min(common, len(tokens) - 1)

    def _last_logits(self) -> np.ndarray:
        """The logits llama.cpp computed for the last position it evaluated (a view)."""
        return np.ctypeslib.as_array(self._lib.llama_get_logits_ith(self.llm.ctx, -1), shape=(self.llm.n_vocab(),))

    def _last_logprob(self, token: int) -> float:
        logits = self._last_logits()
        peak = float(logits.max())
        return float(logits[token]) - peak - float(np.log(np.exp(logits - peak).sum()))

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
        results = []
        for prompt, count in zip(prompts, n):
            tokens = self._tokens(prompt)
            group = []
            for _ in range(count):
                if should_stop is not None and should_stop():
                    raise StopRequested()
                meter.add(role, self.flops_params, prefill=self._fed_for(tokens))
                group.append(self._one(tokens, max_tokens, temperature, top_p, stop))
                meter.add(role, self.flops_params, generated=group[-1].n_tokens)
            results.append(group)
        return results

    def _one(
        self, tokens: list[int], max_tokens: int, temperature: float, top_p: float, stop: str | None
    ) -> Completion:
        out: list[int] = []
        logprob, reason = 0.0, "length"
        sampling = {"temp": temperature, "top_p": top_p, "top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0}
        if temperature <= 0:
            sampling.update(temp=0.0, top_k=1)
        self.llm.set_seed(self._seed + self._draws)  # llama.cpp's sampler restarts from it on every call
        self._draws += 1
        for token in self.llm.generate(tokens, **sampling):
            out.append(token)
            logprob += self._last_logprob(token)
            if self._lib.llama_vocab_is_eog(self._vocab, token):
                reason = "eos"
                break
            if stop is not None and stop in self.llm.detokenize(out[-8:]).decode("utf-8", "ignore"):
                reason = "stop"
                break
            if len(out) >= max_tokens:
                break
        visible = out[:-1] if reason == "eos" else out
        text = self.llm.detokenize(visible).decode("utf-8", "replace")
        if reason == "stop" and stop:
            text = text[: text.index(stop) + len(stop)]
        return Completion(text, len(out), logprob, reason)

    def step_logprobs(
        self, prompt: str, steps: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[float]:
        raise UserError("the llama.cpp backend keeps no prompt log-probs, so the confidence scorer cannot run on it")

    def choice_probs(
        self, prompts: Sequence[str], choices: Sequence[str], meter: ComputeMeter | None = None, role: str = "scorer"
    ) -> list[list[float]]:
        meter = meter or self.meter
        choice_ids = [self._tokens(c)[0] for c in choices]
        out = []
        for prompt in prompts:
            tokens = self._tokens(prompt)
            self.llm.reset()
            self.llm.eval(tokens)
            meter.add(role, self.flops_params, prefill=len(tokens))
            logits = self._last_logits()[choice_ids].astype(np.float64)
            probs = np.exp(logits - logits.max())
            out.append((probs / probs.sum()).tolist())
        return out
