"""`forgetbench cache`: what $FORGETBENCH_HOME holds, which checkpoint each materialised model is, and
--clear-models (all, or only those unused for N days; a killed run's half-written model after a day)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.places import models_dir

DAY = 86400


def _registry(tiny_model_dir: Path, tmp_path: Path) -> Path:
    """The tiny HF model as a base, and two bare state dicts on it (two materialised models, keyed fp-on-fp)."""
    import torch
    from transformers import AutoModelForCausalLM

    state = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    for i, name in enumerate(("a", "b")):
        torch.save({k: v + i for k, v in state.items() if k != "lm_head.weight"}, tmp_path / f"{name}.pt")
    reg = tmp_path / "checkpoints.yaml"
    reg.write_text(
        f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n"
        f"  - id: sft-a\n    path: {tmp_path / 'a.pt'}\n    base: tiny\n"
        f"  - id: sft-b\n    path: {tmp_path / 'b.pt'}\n    base: tiny\n"
    )
    return reg


def _materialise_all(reg_path: Path) -> dict[str, Path]:
    from harness.checkpoints.registry import Registry
    from harness.checkpoints.weights import materialise

    reg = Registry.load(reg_path)
    return {cid: materialise(reg.resolve(cid), reg.lineage(reg.resolve(cid))) for cid in ("sft-a", "sft-b")}


def _age(path: Path, days: float) -> None:
    t = time.time() - days * DAY
    os.utime(path, (t, t))


def test_cache_names_each_materialised_model_and_clears_only_the_unused(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    reg = _registry(tiny_model_dir, tmp_path)
    dirs = _materialise_all(reg)
    assert sorted(p.parent for p in dirs.values()) == [models_dir()] * 2  # an HF dir loads in place: no copy
    runner = CliRunner()
    res = runner.invoke(app, ["cache", "--registry", str(reg)])
    assert res.exit_code == 0, res.output
    for cid, d in dirs.items():
        row = next(line for line in res.output.splitlines() if d.name in line)
        assert cid in row  # the owner column names the checkpoint the directory was written from
    assert "models" in res.output and str(models_dir()) in res.output

    _age(dirs["sft-a"], 10)
    _age(dirs["sft-b"], 10)
    _materialise_all(reg)  # a cache hit is a use: both are touched again
    assert all(time.time() - d.stat().st_mtime < DAY for d in dirs.values())
    _age(dirs["sft-a"], 10)
    res = runner.invoke(app, ["cache", "--clear-models", "--unused-days", "7"])
    assert res.exit_code == 0 and "removed 1 materialised model(s) unused for 7 day(s)" in res.output, res.output
    assert not dirs["sft-a"].exists() and dirs["sft-b"].exists()

    again = _materialise_all(reg)  # derived data: the next run writes it again, at the same key
    assert again == dirs and (dirs["sft-a"] / "config.json").exists()


def test_clear_keeps_a_half_written_model_a_run_may_still_be_writing(tmp_path: Path) -> None:
    from harness import cachedir

    root = models_dir()
    fresh, stale, done = root / ".k1.abcd", root / ".k2.efgh", root / "k3"
    for d in (fresh, stale, done):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(b"x" * 1000)
    _age(stale, 2)
    assert {m.key: m.unfinished for m in cachedir.materialised()} == {"k1": True, "k2": True, "k3": False}
    n, freed = cachedir.clear_models()
    assert (n, freed) == (2, 2000)
    assert fresh.exists() and not stale.exists() and not done.exists()
    assert sorted(p.name for p in root.iterdir()) == [".k1.abcd"]  # nothing renamed and left behind


def test_cache_options_fail_clean() -> None:
    res = CliRunner().invoke(app, ["cache", "--unused-days", "3"])
    assert res.exit_code == 2 and "--unused-days only applies with --clear-models" in res.output
    res = CliRunner().invoke(app, ["cache", "--clear-models", "--unused-days", "-1"])
    assert res.exit_code == 2
    res = CliRunner().invoke(app, ["cache"])  # an empty home: sizes of nothing, exit 0
    assert res.exit_code == 0 and "0 B" in res.output
