#!/usr/bin/env bash
# The main job on the embedded default model (SmolLM2-135M-Instruct), the paper's experiment in miniature:
# train SFT and GRPO checkpoints on the `addsub` target (scripts/paper_demo.sh, STUDY=demo), then compare
# base, SFT and GRPO on the target and on non-target suites from five areas, with the method-vs-method table,
# and write reports/demo/report.html. About 20 minutes on a 2-core CPU.
#   bash scripts/demo.sh                 # train + compare
#   EVAL_ONLY=1 bash scripts/demo.sh     # no training: the base model's scores only (a few minutes)
# The full study (Self-SFT, Iterative-SFT, more items): bash scripts/paper_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
start=$SECONDS
if [ -n "${EVAL_ONLY:-}" ]; then
  "$VENV/bin/forgetbench" compare smollm2-135m --suites addsub,capitals,mmlu,arc_challenge,winogrande \
    --limit 100 --max-new-tokens 96 --out reports/demo
else
  STUDY=demo bash scripts/paper_demo.sh
fi
echo "demo done in $((SECONDS - start)) s: open reports/demo/report.html"
