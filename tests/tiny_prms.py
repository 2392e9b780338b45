"""Tiny PRMs in each learned format, with outputs known in advance.

Every model here reads only the current token (attention and MLP outputs zeroed, one-hot
embeddings, so the final hidden state is sqrt(hidden) times the token's one-hot vector).
Its head is set so that at the format's score token the step score is exactly
sigmoid(LOGIT) = 0.8 and at every other token 0.5: a score read at a wrong position is 0.5.
"""

from __future__ import annotations

import math
from pathlib import Path

from tiny_models import build_tokenizer

LOGIT = math.log(4.0)  # sigmoid(LOGIT) = 0.8
SCORE_AT_TAG = 0.8
LLAMA3_TEMPLATE = (
    "{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>{{ m['content'] }}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>{% endif %}"
)
FORMATS = {
    # format: (head, special tokens, the token where scores are read, chat template or None)
    "math-shepherd": ("causal", ("ки",), "ки", None),
    "qwen-prm": ("token-classification", ("<extra_0>",), "<extra_0>", None),
    "skywork": ("value", (), "\n", None),
    "rlhflow": (
        "causal",
        ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"),
        "<|end_header_id|>",
        LLAMA3_TEMPLATE,
    ),
    "trl": ("token-classification", (), "\n\n", None),
    "probe": ("probe", (), "\n\n", None),
}


def build_prm(directory: Path, fmt: str) -> Path:
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM, LlamaForTokenClassification, LlamaModel

    head, extra, tag, template = FORMATS[fmt]
    if head == "probe":
        return build_probe(directory)
    kwargs = {"chat_template": template} if template else {}
    tokenizer = build_tokenizer(extra_tokens=extra, merges=(("\n", "\n"),), **kwargs)
    vocab, hidden = len(tokenizer), 128
    assert vocab <= hidden
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        num_labels=2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = {"causal": LlamaForCausalLM, "token-classification": LlamaForTokenClassification, "value": LlamaModel}[
        head
    ](config)
    base = model if head == "value" else model.model
    tag_id = tokenizer.convert_tokens_to_ids(tag)
    scale = 1.0 / math.sqrt(hidden)  # the final norm scales a one-hot vector by sqrt(hidden)
    with torch.no_grad():
        for layer in base.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        base.embed_tokens.weight.copy_(torch.eye(vocab, hidden))
        if head == "causal":
            model.lm_head.weight.zero_()
            model.lm_head.weight[tokenizer.convert_tokens_to_ids("+"), tag_id] = LOGIT * scale
        elif head == "token-classification":
            model.score.weight.zero_()
            model.score.bias.zero_()
            model.score.weight[1, tag_id] = LOGIT * scale
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    if head == "value":
        weight = torch.zeros(1, hidden)
        weight[0, tag_id] = LOGIT * scale
        save_file(
            {"v_head.summary.weight": weight, "v_head.summary.bias": torch.zeros(1)},
            str(directory / "value_head.safetensors"),
        )
    return directory


def build_probe(directory: Path) -> Path:
    """A probe checkpoint on a tiny backbone: it reads layer 0 (the one-hot embeddings), and its
    linear head puts LOGIT on the "\n\n" token's dimension and nothing anywhere else."""
    import json

    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(merges=(("\n", "\n"),))
    vocab, hidden = len(tokenizer), 128
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    model = LlamaForCausalLM(config)
    with torch.no_grad():
        model.model.embed_tokens.weight.copy_(torch.eye(vocab, hidden))
    backbone = directory / "backbone"
    model.save_pretrained(backbone)
    tokenizer.save_pretrained(backbone)
    weight = torch.zeros(1, hidden)
    weight[0, tokenizer.convert_tokens_to_ids("\n\n")] = LOGIT
    save_file(
        {"mean": torch.zeros(hidden), "std": torch.ones(hidden), "net.weight": weight, "net.bias": torch.zeros(1)},
        str(directory / "probe.safetensors"),
    )
    (directory / "probe.json").write_text(
        json.dumps({"backbone": "backbone", "layers": [0], "features": hidden, "hidden": 0})
    )
    return directory
