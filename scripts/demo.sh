#!/usr/bin/env bash
# The main job on the embedded default model (SmolLM2-135M-Instruct), the paper's experiment in miniature:
# train an SFT and a GRPO checkpoint on Countdown (scripts/paper_demo.sh), then compare base, SFT and GRPO on
# target and non-target suites (instruction following, knowledge, math, reasoning, safety) and write
# reports/demo/report.html. About 20 minutes on a 2-core CPU.
#   bash scripts/demo.sh                 # LIMIT=16 items per suite, MAX_NEW=256 generated tokens at most
#   EVAL_ONLY=1 bash scripts/demo.sh     # no training: the base model's scores only (a few minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
FB="$VENV/bin/forgetbench"
SUITES=${SUITES:-countdown,ifeval,mmlu,gsm8k,arithmetic,capitals,elements,arc_challenge,harmbench,overrefusal}
EVAL=(--suites "$SUITES" --limit "${LIMIT:-16}" --max-new-tokens "${MAX_NEW:-256}" --out reports/demo)
start=$SECONDS
if [ -n "${EVAL_ONLY:-}" ]; then
  "$FB" compare smollm2-135m "${EVAL[@]}"
else
  bash scripts/paper_demo.sh
  "$FB" compare smollm2-135m demo-sft demo-grpo --registry reports/paper-demo/checkpoints.yaml "${EVAL[@]}"
fi
echo "demo done in $((SECONDS - start)) s: open reports/demo/report.html"
