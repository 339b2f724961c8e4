#!/usr/bin/env bash
# The study of reports/paper-demo/STUDY.md: does training data further from the model's own distribution forget
# more at matched gain? Five arms on one target (addsub), one budget (24 optimizer steps of 16 sequences,
# constant lr), checkpoints at steps 8/16/24, all on the 2-core CPU. Three seeds per arm (amendment 3; sft-far and
# grpo first, the primary contrast); SFT at lr 1e-4, GRPO's lr swept on seed 0 (amendment 2).
#
#   bash scripts/paper_demo.sh              # the whole study (~3 h); resumes where it stopped
#   bash scripts/paper_demo.sh sweep        # one stage: far | sweep | primary | rest | track | compare
#   STUDY=demo bash scripts/paper_demo.sh   # README command 1's part: sft-far and grpo, seed 0, small eval
#
# Checkpoints go to reports/paper-demo/train/ (never committed) and are registered in
# reports/paper-demo/checkpoints.yaml. A run whose final.pt exists is skipped (training is seeded and
# deterministic on CPU), and every evaluation is cached in reports/runs, so a stopped study only does what is
# missing, and the demo's runs and records are the study's own seed-0 runs and first items.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
FB="$VENV/bin/forgetbench"
PY="$VENV/bin/python"
STUDY=${STUDY:-full}
STAGE=${1:-all}
OUT=reports/paper-demo
REG="$OUT/checkpoints.yaml"
FAR="$OUT/data/sft-far.jsonl"
ARMS=(sft-far sft-own self-sft iter-sft grpo)
PRIMARY=(sft-far grpo)  # the primary contrast (Q1): trained, scored and tracked first
SINGLE=(sft-own self-sft iter-sft)  # the other arms (seed 0 only in amendment 2; 3 seeds since amendment 3)
SFT_LR=1e-4
LRS=(2e-5 1e-4)  # GRPO's sweep
# The analysis suites, fixed from the base alone (STUDY.md, amendment 1): the target and 7 informative
# non-target suites from 5 areas. MMLU (at chance) is scored on the final checkpoints only, strict and lenient.
SUITES=addsub,capitals,elements,hellaswag,ifeval_rlvr,gsm8k,harmbench,donotanswer
FINAL_LIMITS=addsub=200,capitals=250,elements=236,mmlu=50,hellaswag=300,ifeval_rlvr=150,gsm8k=50,harmbench=60,donotanswer=60
mkdir -p "$OUT/data" "$OUT/train" "$OUT/logs"
if [ ! -f "$REG" ]; then
  cat >"$REG" <<'EOF'
# The study's registry: the embedded base plus what scripts/paper_demo.sh trains from it.
checkpoints:
  - id: smollm2-135m
    path: embedded:smollm2-135m-instruct
    method: base
    chat_template: native
EOF
fi

# sft-far's data: the first 384 train problems (the rows sft-own trains on) answered with the bare number, a
# format the base never writes (it writes "39 + 36 = 75"). 384 = 24 steps x 16 sequences, one pass.
far_data() {
  [ -f "$FAR" ] && return
  "$PY" - "$FAR" <<'PY'
import json
import sys

from harness.suites import get_suite

suite = get_suite("addsub")
with open(sys.argv[1] + ".tmp", "w") as f:
    for it in suite.load("train")[:384]:
        f.write(json.dumps({"messages": [*suite.prompt(it), {"role": "assistant", "content": suite.reference(it)}]}) + "\n")
PY
  mv "$FAR.tmp" "$FAR"
}

# The shared budget: 24 optimizer steps of 16 sequences, constant lr (3% warmup of 24 steps is < 1 step), AdamW
# (0.9, 0.95), clip 1.0, saves at 8 and 16 (and the final 24).
COMMON=(--suite addsub --base smollm2-135m --registry "$REG" --schedule constant --max-steps 24
  --micro-batch-size 16 --save-steps 8,16)
SAMPLE=(--k 4 --temperature 0.7 --max-new-tokens 32 --rollout-batch-size 64)
arm_args() {
  case $1 in
    sft-far) echo sft --data "$FAR" --epochs 1 --batch-size 16 ;;
    sft-own) echo sft --train-limit 384 --epochs 1 --batch-size 16 ;;
    # the base's correct samples on 400 prompts (k=4), drawn once; up to 3 passes fill the 24 steps
    self-sft) echo self-sft --train-limit 400 --epochs 3 --batch-size 16 "${SAMPLE[@]}" ;;
    # re-drawn from the current model on 160 prompts every 8 steps: 3 rounds, the lr never restarts
    iter-sft) echo iter-sft --train-limit 160 --epochs 3 --resample-every 8 --batch-size 16 "${SAMPLE[@]}" ;;
    # 4 prompts x 4 rollouts = 16 sequences per step, T 0.7, k2 KL beta 0.05, reward = addsub's score
    grpo) echo grpo --train-limit 400 --batch-size 4 --group-size 4 --temperature 0.7 --max-new-tokens 32 \
      --beta 0.05 --rollout-batch-size 64 ;;
  esac
}

run_name() { echo "$1-lr$2-s$3"; }

# train ARM LR SEED: skipped when its final.pt exists; a half-written run is dropped from the registry and
# trained again from step 0 (seeded, so the same run).
train() {
  local name
  name=$(run_name "$1" "$2" "$3")
  if [ -f "$OUT/train/$name/final.pt" ]; then
    return
  fi
  "$PY" - "$REG" "$name" <<'PY'
import sys
from pathlib import Path

import yaml

path, name = Path(sys.argv[1]), sys.argv[2]
doc = yaml.safe_load(path.read_text())
keep = [c for c in doc["checkpoints"] if c["id"] != name and not c["id"].startswith(name + "-step")]
if len(keep) != len(doc["checkpoints"]):
    path.write_text(yaml.safe_dump(doc | {"checkpoints": keep}, sort_keys=False))
PY
  rm -rf "$OUT/train/$name"
  local t0=$SECONDS
  # shellcheck disable=SC2046
  "$FB" train $(arm_args "$1") "${COMMON[@]}" --lr "$2" --seed "$3" --name "$name" --out "$OUT/train/$name" \
    >"$OUT/logs/train-$name.log" 2>&1
  echo "trained $name in $((SECONDS - t0)) s"
}

# The sweep (GRPO only, seed 0, lr in LRS): the rate with the best addsub:dev score (100 train problems no run
# trains on), ties within 2 points going to the lower rate; the SFT family trains at SFT_LR (amendment 2).
# Written to $OUT/sweep/chosen.tsv.
sweep() {
  [ -f "$OUT/sweep/chosen.tsv" ] && return
  for lr in "${LRS[@]}"; do train grpo "$lr" 0; done
  local ckpts=(smollm2-135m)
  for lr in "${LRS[@]}"; do ckpts+=("$(run_name grpo "$lr" 0)"); done
  "$FB" compare "${ckpts[@]}" --registry "$REG" --suites addsub:dev --limit 100 --no-noise-floor \
    --out "$OUT/sweep" >"$OUT/logs/sweep-compare.log" 2>&1
  "$PY" - "$OUT/sweep" "${ARMS[*]}" "${LRS[*]}" "$SFT_LR" <<'PY'
import json
import sys
from pathlib import Path

out, arms, lrs, sft_lr = Path(sys.argv[1]), sys.argv[2].split(), sys.argv[3].split(), sys.argv[4]
res = json.loads((out / "results.json").read_text())
score = {cid: next(iter(per.values())) for cid, per in res["scores"].items()}  # the one suite, addsub:dev
rows = ["arm\tlr\tdev_score\tchosen"]
by_lr = [(float(lr), lr, score[f"grpo-lr{lr}-s0"]) for lr in lrs]
best = max(s for _, _, s in by_lr)
chosen = min((x for x in by_lr if x[2] >= best - 2.0), key=lambda x: x[0])[1]  # ties (2 pts): lower lr
rows += [f"grpo\t{lr}\t{s:.1f}\t{'*' if lr == chosen else ''}" for _, lr, s in by_lr]
rows += [f"{arm}\t{sft_lr}\tfixed\t*" for arm in arms if arm != "grpo"]
(out / "chosen.tsv").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
}

chosen_lr() { awk -F'\t' -v a="$1" '$1 == a && $4 == "*" {print $2}' "$OUT/sweep/chosen.tsv"; }

seeds_of() { echo 0 1 2; }  # every arm (amendment 3)

# train_arms ARM...: every seed of each arm at its chosen rate
train_arms() {
  sweep
  far_data
  for arm in "$@"; do
    for seed in $(seeds_of "$arm"); do train "$arm" "$(chosen_lr "$arm")" "$seed"; done
  done
}

# finals ARM...: the run names (step 24) of those arms
finals() {
  for arm in "$@"; do
    for seed in $(seeds_of "$arm"); do echo "$(run_name "$arm" "$(chosen_lr "$arm")" "$seed")"; done
  done
}

# rl_data_scores: a grpo run trained before RL runs recorded their data score gets it from its logged step-0
# rollouts (the number the trainer now records, harness/train/rl.py), written to the run's registry entries.
rl_data_scores() {
  local missing
  # shellcheck disable=SC2046
  missing=$("$PY" -c 'import sys, yaml
doc = yaml.safe_load(open(sys.argv[1]))
print(" ".join(c["id"] for c in doc["checkpoints"] if c["id"] in sys.argv[2:] and not c.get("data_score")))' \
    "$REG" $(finals grpo))
  for name in $missing; do
    "$FB" data-score "rollouts:$OUT/train/$name/rollouts.jsonl:step=0" --base smollm2-135m --registry "$REG" \
      --json >"$OUT/logs/data-score-$name.json" || return
    "$PY" - "$REG" "$name" "$OUT/logs/data-score-$name.json" <<'PY'
import json
import sys
from dataclasses import fields
from pathlib import Path

import yaml

from harness.datascore import DataScore

path, name, score = Path(sys.argv[1]), sys.argv[2], json.loads(Path(sys.argv[3]).read_text())
# what the trainer records (DataScore.summary), from the command's --json
summary = DataScore(**{f.name: score[f.name] for f in fields(DataScore) if f.name != "top"}).summary()
doc = yaml.safe_load(path.read_text())
for c in doc["checkpoints"]:
    if (c["id"] == name or c["id"].startswith(name + "-step")) and not c.get("data_score"):
        c["data_score"] = dict(summary)  # a copy each: a shared dict would be dumped as a YAML alias
path.write_text(yaml.safe_dump(doc, sort_keys=False))
print(f"{name}: data score {summary['mean_nll']} nats/token over {summary['n_tokens']} tokens")
PY
  done
}

# Trajectories: every run of ARM... through `track` (one engine per run), 30 items per suite, addsub 100.
track() {
  local runs=()
  for name in $(finals "$@"); do runs+=("$OUT/train/$name"); done
  "$FB" track "${runs[@]}" --base smollm2-135m --registry "$REG" --suites "$SUITES" --limit 30 \
    --suite-limit addsub=100 --max-new-tokens 96 --trained-on addsub --out "$OUT/track" >"$OUT/logs/track.log" 2>&1
}

# The final checkpoints (step 24) of ARM... on the full item set, seeds forming replicate groups; then MMLU
# re-scored lenient from the same generations (content only, no new generation).
compare() {
  rl_data_scores
  # shellcheck disable=SC2046
  "$FB" compare smollm2-135m $(finals "$@") --registry "$REG" --suites "$SUITES,mmlu" --suite-limit "$FINAL_LIMITS" \
    --max-new-tokens 96 --no-noise-floor --out "$OUT/compare" >"$OUT/logs/compare.log" 2>&1
  # shellcheck disable=SC2046
  "$FB" compare smollm2-135m $(finals "$@") --registry "$REG" --suites mmlu:lenient --limit 50 --max-new-tokens 96 \
    --no-noise-floor --out "$OUT/compare-mmlu-lenient" >"$OUT/logs/compare-mmlu-lenient.log" 2>&1
}

start=$SECONDS
if [ "$STUDY" = demo ]; then
  # README command 1: the two arms that differ most, seed 0, at the rates the study's sweep chose (committed in
  # sweep/chosen.tsv; 1e-4 and 2e-5 before it exists), then their timelines and the method table.
  far_data
  lr_far=1e-4 lr_grpo=2e-5
  if [ -f "$OUT/sweep/chosen.tsv" ]; then lr_far=$(chosen_lr sft-far) lr_grpo=$(chosen_lr grpo); fi
  train sft-far "$lr_far" 0
  train grpo "$lr_grpo" 0
  far=$(run_name sft-far "$lr_far" 0) grpo=$(run_name grpo "$lr_grpo" 0)
  DEMO=(--registry "$REG" --suites "$SUITES" --limit 40 --suite-limit addsub=100 --max-new-tokens 96)
  "$FB" track "$OUT/train/$far" "$OUT/train/$grpo" --base smollm2-135m "${DEMO[@]}" --trained-on addsub \
    --out reports/demo-track
  "$FB" compare smollm2-135m "$far" "$grpo" "${DEMO[@]}" --no-noise-floor --out reports/demo
  echo "demo: $((SECONDS - start)) s; open reports/demo-track/track.html and reports/demo/report.html"
  exit 0
fi
stamp() { echo "== $1 ($((SECONDS - start)) s)"; }
case $STAGE in
  far) far_data ;;
  sweep) sweep ;;
  primary) train_arms "${PRIMARY[@]}" && compare "${PRIMARY[@]}" && track "${PRIMARY[@]}" ;;
  rest) train_arms "${SINGLE[@]}" ;;
  track) track "${ARMS[@]}" ;;
  compare) compare "${ARMS[@]}" ;;
  # Q1 first (amendment 2); the last compare and track reuse every record the first ones wrote
  all) stamp sweep && sweep && stamp primary && train_arms "${PRIMARY[@]}" && compare "${PRIMARY[@]}" &&
    track "${PRIMARY[@]}" && stamp rest && train_arms "${SINGLE[@]}" && stamp compare && compare "${ARMS[@]}" &&
    stamp track && track "${ARMS[@]}" && stamp done ;;
  *) echo "paper_demo.sh: unknown stage '$STAGE' (far | sweep | primary | rest | track | compare | all)" >&2; exit 2 ;;
esac
echo "paper_demo.sh $STAGE: $((SECONDS - start)) s"
