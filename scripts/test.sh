#!/usr/bin/env bash
# Install (scripts/install.sh cpu) and run the whole test suite, integration tests included.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh cpu
export RAY_AUTH_MODE=disabled WANDB_MODE=offline
exec .venv/bin/python -m pytest -p no:cacheprovider --durations=30 "$@"
