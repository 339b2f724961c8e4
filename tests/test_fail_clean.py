"""Fail clean: bad flags and paths are refused before any model work with one line naming the flag, and the
outputs of a run land as one unit (kill -9 during the output phase, two writers on one --out, a failed
write), on the fake engine.

    python -m pytest tests/test_fail_clean.py -q
"""

from __future__ import annotations

import errno
import json
import os
import random
import signal
import time
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness import outputs, pipeline
from harness.cli import app
from harness.evaluate import EvalConfig
from tests.fakes import write_fake

runner = CliRunner()
REGISTRY = """default_suites: [arithmetic, capitals]
checkpoints:
  - id: base
    path: base.fake.json
    method: base
  - id: sft
    path: sft.fake.json
    method: sft
    base: base
    trained_on: [capitals]
"""
ROOT = os.geteuid() == 0  # root writes through any permission bits: read-only rows cannot fail as root


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "capitals": 0.6}, 8, seed=1)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.3, "capitals": 0.9}, 8, seed=2)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    return tmp_path


def _snapshot(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*")}


BAD = [  # (extra args, the flag the message must name, setup)
    (["--limit", "0"], "--limit", None),
    (["--limit", "-1"], "--limit", None),
    (["--max-new-tokens", "0"], "--max-new-tokens", None),
    (["--n-boot", "0"], "--n-boot", None),
    (["--n-boot", "-5"], "--n-boot", None),
    (["--batch-size", "0"], "--batch-size", None),
    (["--suites", ""], "--suites", None),
    (["--suites", ","], "--suites", None),
    (["--out", "afile"], "--out", "file"),
    (["--out", "mine"], "--out", "foreign"),
    (["--out", "ro/out"], "--out", "readonly"),
    (["--runs-dir", "ro/runs"], "--runs-dir", "readonly"),
    (["--runs-dir", "afile"], "--runs-dir", "file"),
]


@pytest.mark.parametrize("command", ["compare", "eval"])
@pytest.mark.parametrize(("extra", "flag", "setup"), BAD, ids=lambda x: str(x))
def test_bad_flags_are_refused_before_any_model_work(
    ws: Path, monkeypatch: pytest.MonkeyPatch, command: str, extra: list[str], flag: str, setup: str | None
) -> None:
    if command == "eval" and flag in ("--out", "--n-boot"):
        pytest.skip("eval writes no --out and has no --n-boot")
    if setup == "readonly" and ROOT:
        pytest.skip("running as root: permission bits do not stop writes")
    if setup == "file":
        (ws / "afile").write_text("not a directory")
    elif setup == "foreign":
        (ws / "mine").mkdir()
        (ws / "mine" / "notes.txt").write_text("the user's own file: never swapped away")
    elif setup == "readonly":
        (ws / "ro").mkdir()
        (ws / "ro").chmod(0o555)
    from harness.engines.fake import FakeEngine

    monkeypatch.setattr(FakeEngine, "load", lambda *a: pytest.fail("a model was loaded"))
    before = _snapshot(ws)
    args = [command, "base", "sft", "--engine", "fake", "--limit", "8", "--suites", "arithmetic,capitals"]
    if command == "compare":
        args += ["--out", "o"]
    res = runner.invoke(app, [*args, *extra])
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert res.exit_code == 2, res.output
    assert len(lines) == 1 and lines[0].startswith("error: ") and flag in lines[0], res.output
    assert _snapshot(ws) == before  # nothing written: no store, no output dir, no temp dir


# -- outputs as one unit -------------------------------------------------------------------------------------


def _run(limit: int) -> pipeline.Run:
    reg, ckpts, suites = pipeline.resolve(Path("checkpoints.yaml"), ["base", "sft"], "arithmetic,capitals")
    cfg = EvalConfig(engine="fake", limit=limit)
    return pipeline.build(reg, ckpts, suites, cfg, ["base", "sft"], n_boot=50)


def _whole(out: Path) -> int:
    """The four result files are there, readable, and all from one run; returns that run's --limit."""
    config = json.loads((out / "config.json").read_text())
    results = json.loads((out / "results.json").read_text())
    assert results["config"] == config  # results.json embeds the config it was computed with
    limit = config["eval"]["limit"]
    assert set(pd.read_parquet(out / "results.parquet")["n"].dropna()) == {limit}
    html = (out / "report.html").read_text()
    assert html.rstrip().endswith("</html>")
    return limit


def _stages(out: Path) -> list[Path]:
    return sorted(out.parent.glob(f".{out.name}.*"))


def _fork(work) -> int:
    pid = os.fork()
    if pid == 0:  # the child: never return into pytest
        code = 1
        try:
            work()
            code = 0
        finally:
            os._exit(code)
    return pid


def test_kill_9_during_the_output_phase_leaves_one_whole_output(ws: Path) -> None:
    runs = {5: _run(5), 8: _run(8)}
    out = ws / "out"
    pipeline.write_run(runs[5], out)
    rng = random.Random(0)
    interrupted = 0

    def forever() -> None:
        while True:  # nothing but the output phase: every kill lands inside it
            for r in runs.values():
                pipeline.write_run(r, out)

    for _ in range(6):
        pid = _fork(forever)
        time.sleep(rng.uniform(0.05, 1.0))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        assert _whole(out) in runs  # the previous output or the new one, never a mix
        interrupted += bool(_stages(out))
    assert interrupted, "no kill landed while a unit was being written"
    pipeline.write_run(runs[8], out)  # the next run sweeps what killed ones left
    assert _whole(out) == 8 and _stages(out) == []


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_two_processes_writing_one_out(ws: Path, monkeypatch: pytest.MonkeyPatch, exchange: bool) -> None:
    if not exchange:
        monkeypatch.setattr(outputs, "_exchange", lambda a, b: False)
    runs = {5: _run(5), 8: _run(8)}
    out = ws / "shared"
    for _ in range(3):
        pids = [_fork(lambda r=r: [pipeline.write_run(r, out) for _ in range(2)]) for r in runs.values()]
        codes = [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids]
        assert codes == [0, 0]  # no collision on temp names: both writers succeed every time
        assert _whole(out) in runs and _stages(out) == []


def test_two_compare_commands_on_one_out(ws: Path) -> None:
    args = ["compare", "base", "sft", "--engine", "fake", "--suites", "arithmetic,capitals", "--out", "shared"]
    assert runner.invoke(app, [*args, "--limit", "8"]).exit_code == 0  # records stored once, up front
    for _ in range(3):
        pids = [
            _fork(lambda n=n: os._exit(runner.invoke(app, [*args, "--limit", n, "--n-boot", "50"]).exit_code))
            for n in ("5", "8")
        ]
        assert [os.waitstatus_to_exitcode(os.waitpid(p, 0)[1]) for p in pids] == [0, 0]
        assert _whole(ws / "shared") in (5, 8) and _stages(ws / "shared") == []


def test_a_failed_write_keeps_the_previous_output(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["compare", "base", "sft", "--engine", "fake", "--suites", "arithmetic,capitals", "--out", "out"]
    assert runner.invoke(app, [*args, "--limit", "5"]).exit_code == 0
    from harness import report

    def full_disk(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(report, "write_parquet", full_disk)  # the last file of the unit fails
    res = runner.invoke(app, [*args, "--limit", "8"])
    assert res.exit_code == 2
    assert "error: --out out: cannot write (No space left on device); the previous output is kept" in res.output
    assert _whole(ws / "out") == 5 and _stages(ws / "out") == []  # limit 5 throughout: no config from 8
    assert sorted(p.name for p in (ws / "out").iterdir()) == sorted(
        ["config.json", "report.html", "results.json", "results.parquet"]
    )
