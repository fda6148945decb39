#!/usr/bin/env bash
# Install keras-bioact into .venv and run the quick-start activation search on CPU
# (search/quickstart.toml: 16 trials, 86 s with JAX on a loaded 2-core machine, 2026-12-07). Results go to runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
# the install does not byte-compile (scripts/_install.sh): keep what the first imports compile
unset PYTHONDONTWRITEBYTECODE
KERAS_BIOACT_EXTRAS=all bash scripts/_install.sh
exec env KERAS_BACKEND="${KERAS_BACKEND:-jax}" .venv/bin/bioact search search/quickstart.toml --export runs/quickstart "$@"
