#!/usr/bin/env bash
# The one command that installs everything the tests need and runs them all.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --dev || { echo "install failed"; exit 1; }
source scripts/python.sh
# lint and format (ruff, configured in pyproject.toml), then every test
"$PY" -m ruff check --quiet . && "$PY" -m ruff format --check --quiet .
lint=$?
"$PY" -m pytest -q -p no:cacheprovider "$@"
rc=$?
if [ "$lint" -ne 0 ]; then
  echo "ruff found problems (above): failing"
  exit 1
fi
if [ "$rc" -eq 5 ]; then
  echo "no tests were collected: failing"
  exit 1
fi
exit "$rc"
