"""Tiny real models that the tests build and save: a character-level tokenizer and a
randomly initialised Llama. They run the real transformers code."""

from __future__ import annotations

from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]


def build_tokenizer(
    extra_tokens: tuple[str, ...] = (),
    merges: tuple[tuple[str, str], ...] = (),
    chat_template: str = CHAT_TEMPLATE,
    bos_first: bool = False,
):
    """A character-level tokenizer over printable ASCII and newline: every token decodes to
    clean text and re-encoding a decoded text gives the same ids (exact round trips).
    extra_tokens become special tokens (a PRM's step tags); merges join characters;
    bos_first: its post-processor puts BOS before a text, as Gemma's tokenizer does."""
    import string

    from tokenizers import Tokenizer, decoders, models, processors
    from transformers import PreTrainedTokenizerFast

    chars = sorted(set(string.printable) - set("\t\r\x0b\x0c"))
    # "<unk>" last, so the other ids stay as they were: a character outside the vocabulary
    # (GSM8K's "’") becomes one token and the offsets of the rest stay right
    vocab = {tok: i for i, tok in enumerate(SPECIALS + chars + ["".join(m) for m in merges] + ["<unk>"])}
    core = Tokenizer(models.BPE(vocab=vocab, merges=list(merges), unk_token="<unk>"))
    core.decoder = decoders.Fuse()
    if bos_first:
        core.post_processor = processors.TemplateProcessing(
            single="<|endoftext|> $A", special_tokens=[("<|endoftext|>", vocab["<|endoftext|>"])]
        )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=core,
        eos_token="<|im_end|>",
        bos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        unk_token="<unk>",
    )
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIALS[1:2] + list(extra_tokens)})
    tokenizer.chat_template = chat_template
    return tokenizer


def build_llama(directory: Path, seed: int = 0, newline_chain: bool = False, hidden: int | None = None) -> Path:
    """Save a tiny Llama and its tokenizer in `directory`.

    newline_chain=True builds a model whose next token depends only on the current one
    (attention and MLP outputs zeroed, one-hot embeddings): every character is equally
    likely except "\n", about 30 times likelier, and special tokens, never sampled. So
    sampling reaches "\n\n" after about 15 tokens, which tests of stopping need."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    hidden = hidden or (128 if newline_chain else 64)
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        initializer_range=0.2,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config)
    if newline_chain:
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            model.model.embed_tokens.weight.copy_(torch.eye(vocab, hidden))
            logits = torch.zeros(vocab)
            logits[tokenizer.convert_tokens_to_ids("\n")] = 3.4
            logits[: len(SPECIALS)] = -30.0
            # the final norm turns a one-hot embedding into sqrt(hidden) times itself
            model.lm_head.weight.copy_(logits.unsqueeze(1).expand(vocab, hidden) / hidden**0.5)
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory


def build_gemma3(directory: Path, seed: int = 0) -> Path:
    """Save a tiny Gemma 3 (text) and the character-level tokenizer in `directory`: the
    architecture of the gemma3-270m registry model (sliding-window and global attention
    layers, tied embeddings scaled by sqrt(hidden)), which the engine runs through
    transformers' own forward. Its tokenizer puts BOS before a text, as Gemma's does. Its special
    tokens are rarely sampled, so its chains run to the token caps."""
    import torch
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    tokenizer = build_tokenizer(bos_first=True)
    torch.manual_seed(seed)
    config = Gemma3TextConfig(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=1,
        head_dim=16,
        sliding_window=8,
        max_position_embeddings=4096,
        initializer_range=0.02,  # near-flat logits: sampled chains run to the caps
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    model = Gemma3ForCausalLM(config)
    with torch.no_grad():  # special tokens' rows zeroed: their logits 0 among large ones, so rarely sampled
        model.model.embed_tokens.weight[: len(SPECIALS)] = 0.0
    model.save_pretrained(directory)
    tokenizer.save_pretrained(directory)
    return directory
