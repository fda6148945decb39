#!/usr/bin/env bash
# Shared install step of scripts/quickstart.sh and scripts/test.sh: a virtual environment in
# .venv with keras-bioact and every backend, pinned by constraints.txt. torch goes in first,
# pinned to 2.13.0 (the CPU build where one is available), so that nothing pulls a CUDA build.
# --no-compile: pip byte-compiles every module of every package (TensorFlow, torch, JAX: ~3.4 GB),
# a 154 s install here took 60 s without it (2026-12-08, one of 2 cores busy);
# Python compiles the modules that are imported on first import instead (scripts/test.sh and
# scripts/quickstart.sh let it keep them: they unset PYTHONDONTWRITEBYTECODE).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q --no-compile -c constraints.txt torch==2.13.0
.venv/bin/python -m pip install -q --no-compile -c constraints.txt -e ".[${KERAS_BIOACT_EXTRAS:-dev}]"
