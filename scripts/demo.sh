#!/usr/bin/env bash
# The main job on the embedded default model: evaluate SmolLM2-135M-Instruct on the default suites and
# write the HTML report (reports/demo/report.html). LIMIT items per suite (default 30) keeps it to minutes.
#   bash scripts/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
"$VENV/bin/forgetbench" compare smollm2-135m --limit "${LIMIT:-30}" --out reports/demo
echo "open reports/demo/report.html"
