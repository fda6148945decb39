#!/usr/bin/env bash
# Shared install step of scripts/quickstart.sh and scripts/test.sh: a virtual environment in
# .venv with keras-bioact and every backend, pinned by constraints.txt. torch goes in first,
# pinned to 2.13.0 (the CPU build where one is available), so that nothing pulls a CUDA build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[${KERAS_BIOACT_EXTRAS:-dev}]"
