#!/usr/bin/env bash
# The main job on the embedded default model (SmolLM2-135M-Instruct): the two arms of the study
# (reports/paper-demo/STUDY.md) that differ most, on the `addsub` target, seed 0. SFT on data far from the
# model's own distribution (the bare answer, a format it never writes) and GRPO on its own rollouts get the same
# budget (24 steps of 16 sequences, saves at 8 and 16). `forgetbench track` then evaluates both runs' timelines,
# and `forgetbench compare` writes the method table of their final checkpoints. About 25 minutes on a 2-core CPU.
#   bash scripts/demo.sh                 # train + track + compare
#   EVAL_ONLY=1 bash scripts/demo.sh     # no training: the base model's scores only (a few minutes)
# The full study (five arms, three seeds, an lr sweep, more items): bash scripts/paper_demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
start=$SECONDS
if [ -n "${EVAL_ONLY:-}" ]; then
  "$VENV/bin/forgetbench" compare smollm2-135m --suites addsub,capitals,hellaswag,ifeval_rlvr \
    --limit 40 --max-new-tokens 96 --out reports/demo
else
  STUDY=demo bash scripts/paper_demo.sh
fi
echo "demo done in $((SECONDS - start)) s: open reports/demo-track/track.html and reports/demo/report.html"
