#!/usr/bin/env bash
# Install the project (pip install -e ., the `tts-explorer` command) with what the app needs;
# with --dev, what the tests need (pip packages, llama-server built once from source: ~5 min
# on 2 cores, then cached; Debian's chromium); with --llama-cpp, the benchmark's llama.cpp
# reference (llama-cpp-python compiles llama.cpp: ~12 min on 2 cores). Safe to run twice.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
$PY -m pip install -q --disable-pip-version-check "torch==2.13.0" -r requirements.txt
if [ "${1:-}" = "--llama-cpp" ]; then
  CMAKE_BUILD_PARALLEL_LEVEL=$(nproc) $PY -m pip install -q --disable-pip-version-check -e ".[llama-cpp]"
fi
if [ "${1:-}" = "--dev" ]; then
  $PY -m pip install -q --disable-pip-version-check -r requirements-dev.txt
  # the server tests run llama.cpp's own llama-server, built from the llama-cpp-python sdist (cached)
  bash scripts/build_llama_server.sh >/dev/null
  # the browser tests drive Debian's chromium (Playwright's own browser download is not used)
  if ! command -v chromium >/dev/null 2>&1; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
  fi
fi
