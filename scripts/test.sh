#!/usr/bin/env bash
# The test command: set up .venv if needed, lint with ruff, run the test suite
# (slow soak/training tests are excluded; run them with `-m slow`).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_x.sh
VENV="${HELO_VENV:-.venv}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
"$VENV/bin/ruff" check .
"$VENV/bin/python" -m pytest -m "not slow" "$@"
