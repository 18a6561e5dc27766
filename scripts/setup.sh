#!/usr/bin/env bash
# Create .venv (once) and install the project with its test tools into it.
# On machines without an NVIDIA GPU the CPU build of torch 2.13.0 is installed
# first, so that the project's own torch range does not pull a multi-GB CUDA build.
# The venv's own pip is used as it comes (23.2 with Python 3.11): the project must
# install with it, and this proves it on every run.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${HELO_VENV:-.venv}"
PYTHON="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
stamp="$VENV/.helo-installed"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
        if command -v nvidia-smi >/dev/null 2>&1; then
            "$VENV/bin/python" -m pip install -q torch
        else
            "$VENV/bin/python" -m pip install -q "torch==${HELO_CPU_TORCH:-2.13.0}"
        fi
    fi
    "$VENV/bin/python" -m pip install -q -e ".[dev,scale]"
    touch "$stamp"
fi
