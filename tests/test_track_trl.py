"""The TRL callback with the real `trl` package: an SFTTrainer trains the tiny model a few steps on CPU, the
callback scores every saved checkpoint, logs forgetting/* through the trainer's log, fills the record store that
`forgetbench track --cached-only` then reads at no cost, and stop_on_drop stops training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("trl")
pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def _fresh_accelerate_state():
    """The HF Trainer sets accelerate's process-wide state; later tests build their own Accelerator."""
    yield
    from accelerate.state import AcceleratorState, PartialState

    AcceleratorState._reset_state(reset_partial_state=True)
    PartialState._reset_state()


def _trainer(model_dir: Path, out: Path, max_steps: int):
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    rows = [
        {"messages": [{"role": "user", "content": f"What is {a} + {a}?"}, {"role": "assistant", "content": str(2 * a)}]}
        for a in range(16)
    ]
    args = SFTConfig(
        output_dir=str(out),
        max_steps=max_steps,
        save_steps=2,
        per_device_train_batch_size=4,
        learning_rate=5e-2,
        logging_steps=1,
        report_to=[],
        use_cpu=True,
        save_only_model=True,
        max_length=64,
        bf16=False,  # float32 on CPU, as our trainer runs
    )
    return SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(model_dir),
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=AutoTokenizer.from_pretrained(model_dir),
    )


def test_callback_logs_forgetting_and_fills_the_store(tiny_model_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from harness.cli import app
    from harness.integrations.trl import ForgettingCallback

    store, out = tmp_path / "store", tmp_path / "run"
    probe = {"base": str(tiny_model_dir), "suites": "arithmetic,capitals", "limit": 4, "trained_on": "arithmetic"}
    probe |= {"runs_dir": str(store), "registry": str(tmp_path / "none.yaml"), "max_new_tokens": 8, "n_boot": 200}
    trainer = _trainer(tiny_model_dir, out, max_steps=4)
    cb = ForgettingCallback(trainer, **probe)
    trainer.add_callback(cb)
    trainer.train()
    logged = [row for row in trainer.state.log_history if "forgetting/drop" in row]
    assert [row["step"] for row in logged] == [2, 4]
    for row in logged:
        assert row["forgetting/drop_ci_low"] <= row["forgetting/drop"] <= row["forgetting/drop_ci_high"]
        assert {"forgetting/gain", "forgetting/arithmetic/delta", "forgetting/capitals/ci_high"} <= set(row)
    assert [p["step"] for p in cb.history] == [2, 4]
    assert cb.probe is not None and cb.probe.tracker.engine is None  # closed at the end of training
    # the store holds every checkpoint: track reads the run afterwards without evaluating anything
    res = CliRunner().invoke(
        app,
        ["track", str(out), "--base", str(tiny_model_dir), "--suites", "arithmetic,capitals", "--limit", "4"]
        + ["--max-new-tokens", "8", "--trained-on", "arithmetic", "--runs-dir", str(store), "--cached-only"]
        + ["--registry", str(tmp_path / "none.yaml"), "--n-boot", "200", "--out", str(tmp_path / "track")],
    )
    assert res.exit_code == 0, res.output
    pts = json.loads((tmp_path / "track" / "results.json").read_text())["timeline"]["points"]
    expected = [(r["step"], round(r["forgetting/drop"], 6)) for r in logged]
    assert [(p["step"], round(p["drop"], 6)) for p in pts] == expected


def test_stop_on_drop_stops_training(tiny_model_dir: Path, tmp_path: Path) -> None:
    from harness.integrations.trl import ForgettingCallback

    trainer = _trainer(tiny_model_dir, tmp_path / "run", max_steps=6)
    probe = {"base": str(tiny_model_dir), "suites": "arithmetic,capitals", "limit": 4, "trained_on": "arithmetic"}
    probe |= {"runs_dir": str(tmp_path / "store"), "registry": str(tmp_path / "none.yaml"), "max_new_tokens": 8}
    # a budget of -101 points: any drop is resolved above it, so the first save stops the run
    trainer.add_callback(ForgettingCallback(trainer, stop_on_drop=-101.0, **probe))
    trainer.train()
    assert trainer.state.global_step == 2


def test_our_trainer_tracks_each_saved_checkpoint(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`forgetbench train ... --track SUITES`: forgetting/* rows in log.jsonl for every save, and the store then
    holds the run for `track --cached-only`."""
    from typer.testing import CliRunner

    from harness.cli import app

    reg = tmp_path / "checkpoints.yaml"
    reg.write_text(f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n    method: base\n")
    run, store = tmp_path / "run", tmp_path / "store"
    args = ["train", "sft", "--suite", "arithmetic", "--base", "tiny", "--registry", str(reg), "--no-register"]
    args += ["--max-steps", "2", "--save-every", "1", "--train-limit", "4", "--batch-size", "2"]
    args += ["--micro-batch-size", "2", "--lr", "1e-2", "--out", str(run)]
    args += ["--track", "arithmetic,capitals", "--track-limit", "2", "--runs-dir", str(store)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    tracked = [r for r in rows if "forgetting/drop" in r]
    assert [r["step"] for r in tracked] == [1, 2]
    assert all("forgetting/gain" in r and "forgetting/capitals/delta" in r for r in tracked)  # trained_on from .pt
    res = CliRunner().invoke(
        app,
        ["track", str(run), "--base", "tiny", "--registry", str(reg), "--suites", "arithmetic,capitals"]
        + ["--limit", "2", "--runs-dir", str(store), "--cached-only", "--out", str(tmp_path / "t"), "--max-drop", "5"],
    )
    assert res.exit_code == 0, res.output
    pts = json.loads((tmp_path / "t" / "results.json").read_text())["timeline"]["points"]
    assert [p["step"] for p in pts] == [1, 2] and pts[1]["path"].endswith("final.pt")
    assert [round(p["drop"], 6) for p in pts] == [round(r["forgetting/drop"], 6) for r in tracked]
