#!/usr/bin/env bash
# Make the real lm-eval and Inspect logs that tests/test_logs*.py read (tests/data/logs/), with the tools
# themselves, offline, in a few minutes on CPU. Each tool lives in its own venv under /tmp (never the
# project's .venv): lm-eval pins its own dependencies, and torch stays at the CPU build 2.13.0.
#
#   bash scripts/make_log_fixtures.sh            # rewrites tests/data/logs/ (commit the result)
#
# lm-eval: its hf backend on two tiny random Llama models (tests/tiny.py, seeds 0 and 1) with --log_samples on
# two tasks over local jsonl files (scripts/log_fixtures/tasks/: a multiple-choice task scored by acc and a
# generation task scored by exact_match): base, cand, cand-fewshot (num_fewshot 1: refused), cand-limit
# (--limit 6: items missing, refused).
# Inspect: its mockllm provider answering from a script on a 6-sample local dataset, two tasks (match: 0/1,
# f1: continuous): base, cand, cand-temp (temperature 0.7: refused), cand-limit (4 of 6 samples: refused),
# base-epochs and cand-epochs (2 epochs, sampled; one sample differs between the base's epochs: its noise floor),
# base-json and cand-json (--log-format json).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
OUT=$ROOT/tests/data/logs
WORK=${WORK:-/tmp/forgetbench-log-fixtures}
LMEVAL_VENV=${LMEVAL_VENV:-/tmp/forgetbench-lmeval-venv}
INSPECT_VENV=${INSPECT_VENV:-/tmp/forgetbench-inspect-venv}
TORCH_WHEEL=${TORCH_WHEEL:-$(ls /opt/wheels/torch-2.13.0+cpu-*.whl 2>/dev/null | head -1 || true)}
export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false

if [ ! -x "$LMEVAL_VENV/bin/lm_eval" ]; then
  python3 -m venv "$LMEVAL_VENV"
  echo "torch==2.13.0" > "$WORK.constraints.txt"
  # torch first from the local CPU wheel when there is one; any other torch spec pulls multi-GB CUDA builds
  if [ -n "$TORCH_WHEEL" ]; then "$LMEVAL_VENV/bin/pip" install -q "$TORCH_WHEEL"; fi
  "$LMEVAL_VENV/bin/pip" install -q -c "$WORK.constraints.txt" \
    "lm-eval[hf]"
fi
if [ ! -x "$INSPECT_VENV/bin/inspect" ]; then
  python3 -m venv "$INSPECT_VENV"
  "$INSPECT_VENV/bin/pip" install -q inspect-ai
fi

rm -rf "$WORK" && mkdir -p "$WORK/tasks"
cp "$ROOT"/scripts/log_fixtures/tasks/*.yaml "$ROOT"/scripts/log_fixtures/tasks/*.jsonl "$WORK/tasks/"
sed -i "s#@DATA@#$WORK/tasks#g" "$WORK"/tasks/*.yaml
(cd "$ROOT" && PYTHONPATH=$ROOT "$LMEVAL_VENV/bin/python" -c "
from pathlib import Path
from tests.tiny import build_tiny_model
build_tiny_model(Path('$WORK/tiny-a'), seed=0)
build_tiny_model(Path('$WORK/tiny-b'), seed=1)")

lmeval() {  # NAME MODEL_DIR [extra lm_eval flags]
  local name=$1 model=$2; shift 2
  "$LMEVAL_VENV/bin/lm_eval" --model hf --model_args "pretrained=$WORK/$model,dtype=float32" \
    --tasks tinyqa,tinygen --include_path "$WORK/tasks" --device cpu --batch_size 4 \
    --log_samples --output_path "$WORK/lmeval/$name" --seed 0 "$@" > "$WORK/lmeval-$name.log" 2>&1 \
    || { tail -20 "$WORK/lmeval-$name.log"; exit 1; }
}
lmeval base tiny-a
lmeval cand tiny-b
lmeval cand-fewshot tiny-b --num_fewshot 1
lmeval cand-limit tiny-b --limit 6

(cd "$WORK" && "$INSPECT_VENV/bin/python" "$ROOT/scripts/log_fixtures/inspect_tasks.py" "$WORK/inspect")

rm -rf "$OUT" && mkdir -p "$OUT/lmeval" "$OUT/inspect"
for d in "$WORK"/lmeval/*/; do  # lm-eval writes OUTPUT/<model path, sanitised>/{results,samples}_*: keep the files
  name=$(basename "$d"); mkdir -p "$OUT/lmeval/$name"
  find "$d" -type f \( -name 'results_*.json' -o -name 'samples_*.jsonl' \) -exec cp {} "$OUT/lmeval/$name/" \;
done
cp -r "$WORK"/inspect/* "$OUT/inspect/"
{
  echo "made by scripts/make_log_fixtures.sh on $(date -u +%Y-%m-%d)"
  echo "lm-eval $("$LMEVAL_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("lm_eval"))')"
  echo "inspect-ai $("$INSPECT_VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("inspect_ai"))')"
  echo "torch $("$LMEVAL_VENV/bin/python" -c 'import torch; print(torch.__version__)')"
  echo "transformers $("$LMEVAL_VENV/bin/python" -c 'import transformers; print(transformers.__version__)')"
  echo "datasets $("$LMEVAL_VENV/bin/python" -c 'import datasets; print(datasets.__version__)')"
} > "$OUT/VERSIONS"
du -sh "$OUT"; cat "$OUT/VERSIONS"
