#!/usr/bin/env bash
# Install keras-bioact with every backend into .venv (pinned by constraints.txt) and run the
# test suite once per Keras backend. Fails if any backend fails or if no test ran.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
# torch first, pinned to the CPU build, so nothing pulls a CUDA build.
.venv/bin/python -m pip install -q -c constraints.txt torch==2.13.0
.venv/bin/python -m pip install -q -c constraints.txt -e ".[dev]"
.venv/bin/ruff check .
status=0
for backend in ${KERAS_BIOACT_BACKENDS:-jax tensorflow torch}; do
  echo "=== pytest, KERAS_BACKEND=$backend"
  set +e
  KERAS_BACKEND=$backend .venv/bin/python -m pytest -q -p no:cacheprovider "$@"
  rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then echo "no tests ran under $backend"; status=1
  elif [ "$rc" -ne 0 ]; then echo "tests failed under $backend (exit $rc)"; status=1; fi
done
exit $status
