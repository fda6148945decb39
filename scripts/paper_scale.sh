#!/usr/bin/env bash
# Bounded-time paper-scale run of one adaptive-RNN model (default anru): psMNIST size (784 steps,
# 400 units, controller 50), --max-seconds of training (default 600), throughput and accuracy so far
# written to recipes/results/paper_scale/<model>-<backend>-<platform>.json. Extra flags go to
# recipes/paper_scale.py (see --help). Backend: $KERAS_BACKEND (default jax).
set -euo pipefail
cd "$(dirname "$0")/.."
model="${1:-anru}"
[ $# -gt 0 ] && shift
py="${PYTHON:-}"
if [ -z "$py" ]; then
  if [ -x .venv/bin/python ]; then py=.venv/bin/python; else py=python3; fi
fi
KERAS_BACKEND="${KERAS_BACKEND:-jax}" PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec "$py" recipes/paper_scale.py "$model" "$@"
