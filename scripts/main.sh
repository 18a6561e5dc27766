#!/usr/bin/env bash
# The main job: set up .venv if needed, then run the embedded default, the synthetic
# device monitored live by the demo model (Ctrl-C stops; extra flags pass through,
# e.g. --duration 60 or --record recordings/).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
VENV="${HELO_VENV:-.venv}"
exec "$VENV/bin/streamer" run --device synthetic "$@"
