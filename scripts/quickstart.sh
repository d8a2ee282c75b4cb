#!/usr/bin/env bash
# Install (scripts/install.sh cpu) and train on the tiny CPU default.
# Extra arguments go to `simsearch train`, e.g. scripts/quickstart.sh trainer.total_steps=3
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh cpu
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
exec .venv/bin/simsearch train conf/tiny.yaml "$@"
