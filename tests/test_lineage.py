"""`compare BASE PATH... --trained-on S --method M`: lineage for candidates given as paths, no registry needed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.fakes import write_fake

runner = CliRunner()


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "countdown": 0.1}, 10, seed=1)
    write_fake(tmp_path / "cand.fake.json", {"arithmetic": 0.3, "countdown": 0.9}, 10, seed=2)
    (tmp_path / "checkpoints.yaml").write_text(
        "checkpoints:\n  - id: reg\n    path: cand.fake.json\n    method: grpo\n"
    )
    return tmp_path


def _compare(*args: str) -> object:
    cmd = ["compare", *args, "--engine", "fake", "--limit", "10", "--suites", "arithmetic,countdown"]
    return runner.invoke(app, cmd)


def test_trained_on_and_method_apply_to_path_candidates(ws: Path) -> None:
    res = _compare(
        "base.fake.json", "cand.fake.json", "reg", "--trained-on", "countdown", "--method", "sft", "--out", "o"
    )
    assert res.exit_code == 0, res.output
    config = json.loads((ws / "o" / "config.json").read_text())
    assert config["lineage"]["cand"]["trained_on"] == ["countdown"] and config["lineage"]["cand"]["method"] == "sft"
    assert "trained_on" not in config["lineage"]["reg"] and config["lineage"]["reg"]["method"] == "grpo"  # its own
    assert "trained_on" not in config["lineage"]["base"]
    summaries = {s["checkpoint"]: s for s in json.loads((ws / "o" / "results.json").read_text())["summaries"]}
    assert summaries["cand"]["gain"] is not None and summaries["cand"]["drop"] is not None
    assert summaries["reg"]["gain"] is None  # no trained_on: deltas only


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--trained-on", "countdwon"], "--trained-on: unknown suite 'countdwon'"),
        (["--trained-on", ","], "--trained-on: give suite names"),
        (["--method", "magic"], "--method: 'magic' is not one of"),
    ],
)
def test_bad_lineage_options_exit_2_before_evaluating(ws: Path, args: list[str], needle: str) -> None:
    res = _compare("base.fake.json", "cand.fake.json", *args, "--out", "o")
    assert res.exit_code == 2 and needle in " ".join(res.output.split())
    assert not (ws / "o").exists() and not (ws / "reports").exists()
