#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${HELO_VENV:-.venv}"
exec "$VENV/bin/streamer" evaluate --demo "$@"
