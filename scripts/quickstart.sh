#!/usr/bin/env bash
# Install (scripts/install.sh cpu) and run the whole method on the tiny CPU default:
# build (or find) each stage, train, evaluate and write the report.
# Extra arguments go to `simsearch pipeline`, e.g. scripts/quickstart.sh trainer.total_steps=20
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh cpu
export RAY_AUTH_MODE="${RAY_AUTH_MODE:-disabled}"
exec .venv/bin/simsearch pipeline conf/tiny.yaml "$@"
