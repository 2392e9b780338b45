"""The naive way to serve a search: transformers' `generate` once per candidate, the whole
prompt and path re-encoded at every step, nothing kept between calls.

It implements the same text-level protocol as the local backend and shares its model, so
it is the baseline that the engine is compared with, and a reference for its outputs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from transformers import StoppingCriteria, StoppingCriteriaList

from .base import Completion, StopRequested
from .compute import ComputeMeter
from .engine_thread import on_engine
from .local import TransformersPolicy


class _StopInNewText(StoppingCriteria):
    """Stop once the generated text (not the prompt) holds the stop string."""

    def __init__(self, tokenizer, stop: str, prompt_length: int):
        self.tokenizer, self.stop, self.start = tokenizer, stop, prompt_length

    def __call__(self, input_ids, scores, **kwargs) -> torch.Tensor:
        tail = self.tokenizer.decode(input_ids[0, self.start :][-8:], skip_special_tokens=True)
        return torch.tensor([self.stop in tail])


class NaivePolicy(TransformersPolicy):
    for_search = None  # transformers' generate samples from torch's one global stream: reseeded per search
    streams_rows = False  # its rows come back together

    def __init__(self, model, tokenizer, name: str = "naive"):
        super().__init__(model, tokenizer, name=name, reuse_cache=False)

    @on_engine
    @torch.inference_mode()
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
        results: list[list[Completion]] = []
        for prompt, count in zip(prompts, n):
            ids = torch.tensor([self._prompt_ids(prompt)])
            group = []
            for _ in range(count):
                if should_stop is not None and should_stop():
                    raise StopRequested()
                sampling = (
                    {"do_sample": True, "temperature": temperature, "top_p": top_p, "top_k": 0}
                    if temperature > 0
                    else {"do_sample": False}
                )
                out = self.model.generate(
                    ids,
                    attention_mask=torch.ones_like(ids),
                    max_new_tokens=max_tokens,
                    stopping_criteria=StoppingCriteriaList([_StopInNewText(self.tokenizer, stop, ids.shape[1])])
                    if stop
                    else None,
                    output_logits=True,
                    return_dict_in_generate=True,
                    pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                    **sampling,
                )
                new = out.sequences[0, ids.shape[1] :].tolist()
                logprob = sum(
                    torch.log_softmax(step[0].float(), -1)[token].item() for step, token in zip(out.logits, new)
                )
                meter.add(role, self.flops_params, generated=len(new), prefill=ids.shape[1])
                group.append(self._completion(new, logprob, stop, max_tokens))
            results.append(group)
        return results

    def _completion(self, tokens: list[int], logprob: float, stop: str | None, max_tokens: int) -> Completion:
        if tokens and tokens[-1] in self.eos_ids:
            reason = "eos"
        elif stop is not None and stop in self.tokenizer.decode(tokens, skip_special_tokens=True):
            reason = "stop"
        else:
            reason = "length"
        text, kept = self._text(tokens, stop, reason)
        return Completion(text, len(tokens), logprob, reason, kept or ())
