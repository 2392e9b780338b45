"""What a policy source names, read once for every backend: an OpenAI-compatible server's URL,
a model from the package index by name (embedded.py: "embedded", "gemma3-270m"), a GGUF file,
a model folder or a hub id (policy/loading.py's BACKENDS
load them), and the GGUF file or tokenizer a local source is read from."""

from __future__ import annotations

from pathlib import Path

from . import embedded


def is_server(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def gguf_file(source: str) -> Path | None:
    """The GGUF file a local source is read from (the embedded one's, or a .gguf path), else None."""
    if source in embedded.WHEEL_MODELS:
        return embedded.gguf_of(source)
    return Path(source).expanduser() if source.endswith(".gguf") and not is_server(source) else None


def local_tokenizer(source: str):
    """The tokenizer of a local source: from its GGUF file, else from its folder or hub id."""
    from transformers import AutoTokenizer

    gguf = gguf_file(source)
    if gguf is not None:
        return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return AutoTokenizer.from_pretrained(Path(source).expanduser())
