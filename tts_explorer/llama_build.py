"""Build llama.cpp's own OpenAI-compatible `llama-server` from the source vendored in the
llama-cpp-python sdist (a registry package: pip download --no-binary llama-cpp-python), once.

About 5 minutes on 2 cores with cmake and a C++ compiler. The binary is cached per CPU (it is
built for this CPU's instruction set) under ~/.cache/tts-explorer/llama-server, so a second
call finds it and builds nothing. `python -m tts_explorer.llama_build` prints its path.
"""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "0.3.36"
# Built for this CPU (-march=native) but without AMX: a virtual machine may report the AMX flags
# and still fault on its first tile instruction (SIGILL), seen on this project's machines.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
BUILD_TAG = "noamx"  # in the cache folder's name: a binary built another way is built again


def _cache_dir() -> Path:
    root = (
        os.environ.get("TTS_EXPLORER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tts-explorer"
    )
    flags = ""
    try:
        flags = next((line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")), "")
    except OSError:
        pass
    cpu = hashlib.sha256(f"{platform.machine()}\n{flags}".encode()).hexdigest()[:12]
    return Path(root) / "llama-server" / f"{VERSION}-{BUILD_TAG}-{cpu}"


def _works(binary: Path) -> bool:
    try:
        return subprocess.run([str(binary), "--version"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed with exit code {done.returncode}")


def llama_server_binary() -> str:
    """The path of a working llama-server, built first if the cache has none."""
    dest = _cache_dir()
    binary = dest / "llama-server"
    if _works(binary):
        return str(binary)
    for tool in ("cmake", "c++"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"building llama-server needs {tool} (Debian/Ubuntu: sudo apt install cmake g++)")
    with tempfile.TemporaryDirectory() as work:
        _run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-binary",
                "llama-cpp-python",  # only it: its build dependencies come as wheels
                "--no-deps",
                f"llama-cpp-python=={VERSION}",
                "-d",
                work,
            ]
        )
        with tarfile.open(Path(work) / f"llama_cpp_python-{VERSION}.tar.gz") as sdist:
            # the extraction filter exists from Python 3.10.12 / 3.11.4 on
            sdist.extractall(work, **({"filter": "data"} if hasattr(tarfile, "data_filter") else {}))
        source = Path(work) / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
        build = Path(work) / "build"
        _run(
            [
                "cmake",
                "-S",
                str(source),
                "-B",
                str(build),
                "-DCMAKE_BUILD_TYPE=Release",
                "-DLLAMA_CURL=OFF",
                "-DLLAMA_OPENSSL=OFF",
                "-DBUILD_SHARED_LIBS=OFF",
                "-DLLAMA_BUILD_TESTS=OFF",
                "-DLLAMA_BUILD_EXAMPLES=OFF",
                f"-DCMAKE_C_FLAGS={NO_AMX}",
                f"-DCMAKE_CXX_FLAGS={NO_AMX}",
                "-DGGML_AMX_TILE=OFF",
                "-DGGML_AMX_INT8=OFF",
                "-DGGML_AMX_BF16=OFF",
            ]
        )
        _run(["cmake", "--build", str(build), "--target", "llama-server", "-j", str(os.cpu_count() or 1)])
        dest.mkdir(parents=True, exist_ok=True)
        part = dest / "llama-server.part"
        shutil.copy2(build / "bin" / "llama-server", part)
        part.replace(binary)
    return str(binary)


if __name__ == "__main__":
    try:
        print(llama_server_binary())
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
