#!/usr/bin/env bash
# Install keras-bioact with every backend into .venv and run ruff, then the test suite once per
# Keras backend, after checking that recipes/README.md is generated from recipes/results. Fails if
# any backend fails or if no test ran. Prints each backend's pytest time and the total. Each
# backend's tests run in one process per core (pytest-xdist; every test uses one thread), or
# KERAS_BIOACT_TEST_WORKERS processes (1: no worker processes). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
# the install does not byte-compile (scripts/_install.sh): keep what the first imports compile
unset PYTHONDONTWRITEBYTECODE
bash scripts/_install.sh
.venv/bin/ruff check .
# recipes/README.md's tables and figures must be the ones recipes/results gives.
.venv/bin/python recipes/report.py --check
workers=${KERAS_BIOACT_TEST_WORKERS:-$(nproc 2>/dev/null || echo 1)}
parallel=()
if [ "$workers" -gt 1 ]; then parallel=(-n "$workers"); fi
status=0
times=""
for backend in ${KERAS_BIOACT_BACKENDS:-jax tensorflow torch}; do
  echo "=== pytest, KERAS_BACKEND=$backend"
  start=$SECONDS
  set +e
  KERAS_BACKEND=$backend .venv/bin/python -m pytest -q -p no:cacheprovider "${parallel[@]}" "$@"
  rc=$?
  set -e
  times="$times $backend $((SECONDS - start)) s;"
  if [ "$rc" -eq 5 ]; then echo "FAILED: no tests ran under $backend"; status=1
  elif [ "$rc" -ne 0 ]; then echo "FAILED: tests under $backend (exit $rc)"; status=1; fi
done
echo "=== pytest times:$times whole script $SECONDS s"
exit $status
