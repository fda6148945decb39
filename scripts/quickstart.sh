#!/usr/bin/env bash
# Install keras-bioact into .venv and run the quick-start activation search on CPU
# (search/quickstart.toml: a few minutes on 2 cores). Results go to runs/quickstart/.
set -euo pipefail
cd "$(dirname "$0")/.."
KERAS_BIOACT_EXTRAS=all bash scripts/_install.sh
exec env KERAS_BACKEND="${KERAS_BACKEND:-jax}" .venv/bin/bioact search search/quickstart.toml --export runs/quickstart "$@"
