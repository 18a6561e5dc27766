#!/usr/bin/env bash
# Type-check the project's packages as they are installed: helo.models, helo.devices,
# helo.streamer, helo.ui. mypy cannot follow the editable install's import hook, so it
# reads them through a tree of links (build/typecheck/helo/<layer> -> <layer>/).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HELO_VENV:-.venv}"
root=build/typecheck
mkdir -p "$root/helo"
for layer in models devices streamer ui; do
    ln -sfn "../../../$layer" "$root/helo/$layer"
done
cd "$root"
exec "../../$VENV/bin/mypy" --config-file ../../pyproject.toml --cache-dir ../mypy-cache \
    -p helo.models -p helo.devices -p helo.streamer -p helo.ui "$@"
