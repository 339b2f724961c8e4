#!/usr/bin/env bash
# The paper's experiment in miniature, on CPU: train an SFT and a GRPO checkpoint of the embedded
# SmolLM2-135M-Instruct on Countdown, registered in a demo registry (the tracked checkpoints.yaml is untouched).
# Settings were measured to take about 8-9 minutes on a 2-core CPU for both runs together.
#   bash scripts/paper_demo.sh
#   forgetbench compare smollm2-135m demo-sft demo-grpo --registry reports/paper-demo/checkpoints.yaml --limit 30
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
OUT=${OUT:-reports/paper-demo}
REG="$OUT/checkpoints.yaml"
TRAIN=("$VENV/bin/forgetbench" train)

rm -rf "$OUT/train" "$REG"
mkdir -p "$OUT"
cat >"$REG" <<'EOF'
# The paper demo's registry: the embedded base plus what scripts/paper_demo.sh trains from it.
default_suites: [countdown, arithmetic, capitals, elements]
checkpoints:
  - id: smollm2-135m
    path: embedded:smollm2-135m-instruct
    method: base
    chat_template: native
EOF

common=(--suite countdown --base smollm2-135m --registry "$REG" --seed 0)

# SFT (off-policy): the solver's solutions to 240 training puzzles, one epoch of 30 steps of 8, full fine-tuning.
start=$SECONDS
"${TRAIN[@]}" sft "${common[@]}" --name demo-sft --out "$OUT/train/sft" \
  --train-limit 240 --epochs 1 --batch-size 8 --micro-batch-size 8 --lr 1e-4
sft_s=$((SECONDS - start))

# GRPO (on-policy): 6 steps of 4 prompts x 4 samples, 128 new tokens at temperature 0.8, beta 0.05 (k2 KL),
# the paper's RL learning rate. Rollouts go through the hf engine serving the in-memory policy.
# From the base, the 135M model almost never boxes a correct answer within 128 tokens, so the reward (and the
# update) is usually 0: GRPO_BASE=demo-sft starts GRPO from the SFT checkpoint instead, where rewards appear.
start=$SECONDS
"${TRAIN[@]}" grpo --suite countdown --base "${GRPO_BASE:-smollm2-135m}" --registry "$REG" --seed 0 \
  --name demo-grpo --out "$OUT/train/grpo" \
  --train-limit 24 --batch-size 4 --group-size 4 --micro-batch-size 8 --max-new-tokens 128 --max-steps 6
grpo_s=$((SECONDS - start))

"$VENV/bin/python" - "$OUT/train" <<'EOF'
import json, sys
from pathlib import Path

for run in ("sft", "grpo"):
    rows = [json.loads(x) for x in (Path(sys.argv[1]) / run / "log.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    line = f"{run}: {len(steps)} steps, loss {steps[0]['loss']:.3f} -> {steps[-1]['loss']:.3f}"
    if "reward" in steps[0]:
        line += f", mean rollout reward {sum(r['reward'] for r in steps) / len(steps):.3f}"
    print(line)
EOF
echo "trained in $((sft_s + grpo_s)) s (sft ${sft_s} s, grpo ${grpo_s} s); registry: $REG"
