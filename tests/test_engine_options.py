"""--engine-opt KEY=VALUE: passed to the engine, recorded in config.json, bad ones fail in one line (exit 2).

python -m pytest tests/test_engine_options.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from tests.fakes import write_fake

runner = CliRunner()


def _eval(tmp_path: Path, *opts: str):
    fake = write_fake(tmp_path / "m.fake.json", {"arithmetic": 1.0}, 2)
    args = ["eval", str(fake), "--engine", "fake", "--suites", "arithmetic", "--limit", "2"]
    return runner.invoke(app, [*args, "--runs-dir", str(tmp_path / "runs"), *opts])


def test_malformed_and_unknown_options_fail_in_one_line(tmp_path: Path) -> None:
    res = _eval(tmp_path, "--engine-opt", "batching")
    assert res.exit_code == 2 and "KEY=VALUE" in res.output
    res = _eval(tmp_path, "--engine-opt", "no_such_option=2")
    assert res.exit_code == 2 and "does not take" in res.output and "no_such_option" in res.output
    assert _eval(tmp_path).exit_code == 0


def test_options_reach_the_engine_and_config_json(tiny_model_dir: Path, tmp_path: Path) -> None:
    pytest.importorskip("torch")
    out = tmp_path / "out"
    args = ["compare", str(tiny_model_dir), "--engine", "hf", "--suites", "arithmetic", "--limit", "2"]
    args += ["--max-new-tokens", "3", "--runs-dir", str(tmp_path / "runs"), "--out", str(out)]
    assert runner.invoke(app, [*args, "--engine-opt", "batching=paged"]).exit_code == 2  # the engine checks it
    res = runner.invoke(app, [*args, "--engine-opt", "batching=static"])
    assert res.exit_code == 0, res.output
    config = json.loads((out / "config.json").read_text())
    assert config["eval"]["engine_options"] == {"batching": "static"}
