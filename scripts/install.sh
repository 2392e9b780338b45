#!/usr/bin/env bash
# Install the project and what the app needs into the project's Python (scripts/python.sh:
# the active virtual environment, else ./.venv, created here). With --dev, also what the tests
# need: pip packages; llama.cpp's llama-server built once from source (~5 min on 2 cores, then
# cached in ~/.cache/tts-explorer); and, system-wide through apt (sudo when not root), Debian's
# chromium and the compilers the build needs, where they are missing. With --llama-cpp, the
# benchmark's llama.cpp reference (llama-cpp-python compiles llama.cpp: ~12 min on 2 cores).
# Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
PIP=("$PY" -m pip install -q --disable-pip-version-check)

apt_install() {  # Debian packages providing the given commands, where a command is missing
  local missing=()
  while [ $# -gt 0 ]; do
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
    shift 2
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  echo "installing with apt: ${missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

# without an NVIDIA GPU, PyTorch's CPU build (PyPI's CUDA build adds 3.4 GB of nvidia-* and triton
# wheels) from PyTorch's own index where it is reachable (one quick try), else PyPI's
if command -v nvidia-smi >/dev/null 2>&1 \
  || ! "${PIP[@]}" "torch==2.13.0" --index-url https://download.pytorch.org/whl/cpu --retries 0 --timeout 20 2>/dev/null; then
  "${PIP[@]}" "torch==2.13.0"
fi
"${PIP[@]}" -e .
if [ "${1:-}" = "--llama-cpp" ]; then
  apt_install cmake cmake g++ g++ make make
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) "${PIP[@]}" -e ".[llama-cpp]"
fi
if [ "${1:-}" = "--dev" ]; then
  "${PIP[@]}" -e ".[dev]"
  # the server tests run llama.cpp's own llama-server, built from the llama-cpp-python sdist (cached);
  # the browser tests drive Debian's chromium (Playwright's own browser download is not used)
  apt_install cmake cmake g++ g++ make make chromium chromium
  "$PY" -m tts_explorer.llama_build >/dev/null
fi
echo "installed into $("$PY" -c 'import sys; print(sys.prefix)')" >&2
