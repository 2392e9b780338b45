#!/usr/bin/env bash
# Start the web app (http://localhost:7860; HOST and PORT from the environment) with the
# Python that scripts/install.sh installed into. Arguments go to `tts-explorer app`.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/python.sh
exec "$PY" -m tts_explorer app "$@"
