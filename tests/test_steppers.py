"""The lean Llama-family step and the generic transformers step compute the same logits as
the model's own forward, with a shared prefix, rows of different lengths and left padding."""

import pytest
import torch
from tiny_models import build_tokenizer

from tts_explorer.policy.kv import empty_state
from tts_explorer.policy.local import TransformersPolicy
from tts_explorer.policy.steppers import HFStep, LlamaStep, make_step


def _tiny(kind: str):
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    common = dict(
        vocab_size=97,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        initializer_range=0.2,
    )
    if kind == "llama":
        model = LlamaForCausalLM(LlamaConfig(**common, attention_bias=True, mlp_bias=True))
    elif kind == "qwen2":
        model = Qwen2ForCausalLM(Qwen2Config(**common))  # q/k/v carry biases
    else:
        model = GPT2LMHeadModel(GPT2Config(vocab_size=97, n_embd=64, n_layer=2, n_head=4))
    with torch.no_grad():  # non-zero biases, so that dropping one would show
        for name, param in model.named_parameters():
            if name.endswith("bias"):
                param.normal_(0, 0.2)
    return model.eval()


def _reference_logits(model, ids: list[int]) -> torch.Tensor:
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids])).logits[0, -1].float()


@pytest.mark.parametrize("kind, expected", [("llama", LlamaStep), ("qwen2", LlamaStep), ("gpt2", HFStep)])
def test_step_matches_the_models_forward(kind, expected):
    model = _tiny(kind)
    step = make_step(model)
    assert isinstance(step, expected)
    policy = TransformersPolicy(model, build_tokenizer())
    policy.step = step
    prompt = [5, 9, 14, 3, 7, 21, 8]
    meter = policy.meter
    root = policy._prefill(empty_state(prompt + [11]), meter, "policy").as_prefix()
    assert root.prefix is not None and root.prefix.length == len(prompt)
    # two rows after the shared prompt: one fed three more tokens, one none
    longer = policy._prefill(type(root)(root.prefix, (), (), root.next_pos, (11, 30, 31, 32)), meter, "policy")
    batch = step.new_batch([longer, root], spare=4)
    logits = step(torch.tensor([[32], [11]]), torch.tensor([[longer.next_pos], [root.next_pos]]), batch)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, prompt + [11]), atol=1e-4)
    # one more token each: the keys and values written by the last step are read back
    logits = step(torch.tensor([[40], [41]]), torch.tensor([[longer.next_pos + 1], [root.next_pos + 1]]), batch)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32, 40]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, prompt + [11, 41]), atol=1e-4)
    # rows copied out and gathered again without a shared prefix give the same numbers
    mixed = step.new_batch([batch.extract(0, longer.next_pos + 2, [50]), empty_state([5])], spare=2)
    assert mixed.prefix is None
    logits = step(torch.tensor([[50], [5]]), torch.tensor([[longer.next_pos + 2], [0]]), mixed)
    assert torch.allclose(logits[0], _reference_logits(model, prompt + [11, 30, 31, 32, 40, 50]), atol=1e-4)
    assert torch.allclose(logits[1], _reference_logits(model, [5]), atol=1e-4)


def test_buffers_grow_past_their_spare_room():
    model = _tiny("llama")
    step = make_step(model)
    batch = step.new_batch([empty_state([1])], spare=1)
    ids = [1]
    for position in range(12):
        logits = step(torch.tensor([[ids[-1]]]), torch.tensor([[position]]), batch)
        assert torch.allclose(logits[0], _reference_logits(model, ids), atol=1e-4)
        ids.append(int(logits[0].argmax()))
