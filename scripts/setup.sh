#!/usr/bin/env bash
# Create the virtualenv and install the pinned stack (constraints.txt = pip freeze of a verified install).
set -euo pipefail
PY="${1:-python3}"; VENV="${2:-.venv}"
if ! command -v "$PY" >/dev/null; then echo "error: $PY not found; install Python >= 3.11" >&2; exit 1; fi
"$PY" - <<'PYEOF' || { echo "error: Python >= 3.11 is required ($PY is $("$PY" -V 2>&1))" >&2; exit 1; }
import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)
PYEOF
if [ ! -x "$VENV/bin/python" ]; then
  if ! "$PY" -m venv "$VENV" 2>/dev/null; then
    rm -rf "$VENV"
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null
      "$PY" -m venv "$VENV"
    else
      echo "error: python venv module missing; run: sudo apt-get install -y python3-venv" >&2; exit 1
    fi
  fi
fi
"$VENV/bin/pip" install -q --upgrade pip
"$VENV/bin/pip" install -q -r requirements.txt -r requirements-dev.txt -c constraints.txt
"$VENV/bin/pip" install -q --no-deps -e .
echo "virtualenv ready: $VENV"
