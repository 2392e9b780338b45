#!/usr/bin/env bash
# Build llama.cpp's own OpenAI-compatible `llama-server` from the source vendored in the
# llama-cpp-python sdist (a registry package: pip download --no-binary :all:). About 5 minutes
# on 2 cores; the binary is cached per CPU (it is built for this CPU's instruction set), so a
# second run finds it and does nothing. Prints the binary's path on its last line.
set -euo pipefail
VERSION=0.3.36
CACHE=${TTS_EXPLORER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tts-explorer}
CPU=$( (uname -m; grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) | sha256sum | cut -c1-12)
DEST="$CACHE/llama-server/$VERSION-$CPU"
BIN="$DEST/llama-server"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
PY=${PYTHON:-python3}
$PY -m pip download -q --disable-pip-version-check --no-binary :all: --no-deps "llama-cpp-python==$VERSION" -d "$WORK" >&2
tar -xzf "$WORK/llama_cpp_python-$VERSION.tar.gz" -C "$WORK"
SRC="$WORK/llama_cpp_python-$VERSION/vendor/llama.cpp"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF >&2
cmake --build "$WORK/build" --target llama-server -j "$(nproc)" >&2
mkdir -p "$DEST"
cp "$WORK/build/bin/llama-server" "$DEST/llama-server.part"
mv "$DEST/llama-server.part" "$BIN"
echo "$BIN"
