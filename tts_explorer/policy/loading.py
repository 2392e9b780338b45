"""Loading a causal LM for the local backend: the embedded default, a GGUF file, a
Hugging Face model directory, or a hub id (when the hub is reachable).

A GGUF file is dequantized by transformers (~20 s for the embedded model); the result is
kept as safetensors, in the dtype it runs in, in the user cache so that the next start
loads in about a second.
"""
from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import threading
from pathlib import Path

import torch

from ..errors import UserError, first_line
from . import embedded
from .local import TransformersPolicy

EMBEDDED = "embedded"
log = logging.getLogger(__name__)


def usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def default_dtype() -> torch.dtype:
    """bf16 where the CPU computes it natively (faster here), else fp32; $TTS_DTYPE overrides."""
    forced = os.environ.get("TTS_DTYPE")
    if forced:
        return {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}[forced]
    if torch.cuda.is_available():
        return torch.bfloat16
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return torch.float32
    return torch.bfloat16 if ("avx512_bf16" in flags or "amx_bf16" in flags) else torch.float32


def _converted_dir(gguf: Path, dtype: torch.dtype) -> Path:
    stat = gguf.stat()
    key = hashlib.sha256(f"{gguf.resolve()}:{stat.st_size}:{stat.st_mtime_ns}".encode()).hexdigest()[:16]
    return embedded.cache_dir() / "converted" / f"{gguf.stem}-{key}-{str(dtype).removeprefix('torch.')}"


def _from_gguf(gguf: Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    converted = _converted_dir(gguf, dtype)
    if (converted / "model.safetensors").exists():
        return _from_dir(converted, dtype)
    log.info("dequantizing %s (first load only)", gguf)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model.hf_quantizer = None  # the weights are plain tensors now; this lets them be saved
    model = model.to(dtype)  # kept in the dtype it runs in: half the file and the memory when bf16
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    partial = converted.with_name(converted.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    shutil.rmtree(converted, ignore_errors=True)
    partial.rename(converted)
    return model, tokenizer


def _from_dir(source: str | Path, dtype: torch.dtype):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(source)
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return model, tokenizer


_LOADING = threading.Lock()


def load_policy(source: str = EMBEDDED, dtype: str | None = None, reuse_cache: bool = True) -> TransformersPolicy:
    """A loaded policy, shared by every caller in the process (read-only use); callers on
    other threads wait for a load in progress instead of starting a second one."""
    with _LOADING:
        return _load_policy(source, dtype, reuse_cache)


@functools.lru_cache(maxsize=4)
def _load_policy(source: str, dtype: str | None, reuse_cache: bool) -> TransformersPolicy:
    torch.set_num_threads(usable_cores())
    torch_dtype = {"bf16": torch.bfloat16, "fp32": torch.float32, None: None}[dtype] or default_dtype()
    path = Path(source).expanduser()
    try:
        if source == EMBEDDED:
            model, tokenizer = _from_gguf(embedded.embedded_gguf(), torch_dtype)
            name = embedded.MODEL_NAME
        elif path.suffix == ".gguf":
            if not path.is_file():
                raise UserError(f"cannot read the GGUF file {source!r}")
            model, tokenizer = _from_gguf(path, torch_dtype)
            name = path.name
        elif path.exists():
            if not (path / "config.json").is_file():
                raise UserError(f"{source!r} is not a model directory (no config.json)")
            model, tokenizer = _from_dir(path, torch_dtype)
            name = path.name
        else:
            model, tokenizer = _from_dir(source, torch_dtype)
            name = source
    except UserError:
        raise
    except Exception as exc:  # any loader failure becomes one line for the user
        raise UserError(f"cannot load model {source!r}: {first_line(exc)}") from None
    return TransformersPolicy(model, tokenizer, name=name, reuse_cache=reuse_cache)
