#!/usr/bin/env bash
# The test command: set up .venv if needed, lint with ruff, type-check with mypy, run
# the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/setup_x.sh
VENV="${HELO_VENV:-.venv}"
export QT_QPA_PLATFORM="${QT_QPA_PLATFORM:-offscreen}"
"$VENV/bin/ruff" check .
bash scripts/typecheck.sh
"$VENV/bin/python" -m pytest "$@"
