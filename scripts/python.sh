# Sourced by the other scripts: sets PY, the Python they install into and run with.
# $PYTHON if set (used as it is); else the active virtual environment ($VIRTUAL_ENV); else the
# project's own .venv, created with `python3 -m venv` on first use (Debian and Ubuntu refuse
# pip installs into the system Python, PEP 668). Needs Python 3.10 or newer.
if [ -n "${PYTHON:-}" ]; then
  PY=$PYTHON
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY=$VIRTUAL_ENV/bin/python
else
  if [ ! -x .venv/bin/python ]; then
    if ! command -v python3 >/dev/null 2>&1; then
      echo "error: python3 not found: install Python 3.10 or newer (Debian/Ubuntu: sudo apt install python3 python3-venv)" >&2
      exit 1
    fi
    if ! python3 -m venv .venv >/dev/null 2>&1; then
      rm -rf .venv
      echo "error: 'python3 -m venv .venv' failed: on Debian/Ubuntu install it with: sudo apt install python3-venv" >&2
      exit 1
    fi
  fi
  PY=$PWD/.venv/bin/python
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: $PY is not Python 3.10 or newer" >&2
  exit 1
fi
