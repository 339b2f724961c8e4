"""Kill a running compare with SIGKILL and resume: nothing corrupt, only unfinished batches are redone."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from harness.checkpoints.registry import Registry
from harness.engines.fake import FakeEngine
from harness.evaluate import EvalConfig, evaluate
from harness.store import Store
from harness.suites import SuiteError, all_suites, load_items
from harness.types import RecordKey
from tests.fakes import write_fake


def test_kill_and_resume(tmp_path: Path) -> None:
    write_fake(tmp_path / "slow.fake.json", {"arithmetic": 0.5}, 40, latency_s=0.4)
    env = os.environ | {"FORGETBENCH_HOME": str(tmp_path / "home")}
    cmd = [
        sys.executable,
        "-m",
        "harness.cli",
        "eval",
        "slow.fake.json",
        "--engine",
        "fake",
        "--suites",
        "arithmetic",
        "--limit",
        "40",
        "--batch-size",
        "4",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    parts_dir = tmp_path / "reports" / "runs" / "records"
    deadline = time.time() + 60
    while time.time() < deadline and len(list(parts_dir.rglob("part-*.parquet"))) < 3:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # a real kill: no cleanup handlers run
    proc.wait()
    parts = list(parts_dir.rglob("part-*.parquet"))
    assert 3 <= len(parts) < 10, "the kill should land mid-run"
    # Every committed part is whole and readable (a temp file of the batch in flight is never read).
    (fp,) = Store(tmp_path / "reports/runs").fingerprints()
    key_dir = parts[0].parent
    decoding, engine = key_dir.name.split("__")
    key = RecordKey(fp, "arithmetic", "1", decoding, engine)
    assert len(Store(tmp_path / "reports/runs").load(key)) == 4 * len(parts)
    t = time.time()
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    new_parts = list(parts_dir.rglob("part-*.parquet"))
    assert len(new_parts) == 10  # 40 items / 4 per batch: only the missing batches ran
    assert time.time() - t < 0.4 * (10 - len(parts)) + 15
    assert "arithmetic" in res.stdout


def _stored_rows(runs: Path) -> dict[str, int]:
    """Records ever written per suite (every part file's rows, not the merged view): what was generated."""
    rows: dict[str, int] = {}
    for part in runs.rglob("part-*.parquet"):
        suite = part.parent.parent.name.split("@")[0]
        rows[suite] = rows.get(suite, 0) + pq.read_metadata(part).num_rows
    return rows


@pytest.mark.parametrize("name", sorted(all_suites()))
def test_resume_generates_only_the_missing_items_on_every_suite(tmp_path: Path, name: str) -> None:
    """Raise --limit from 2 to 4 on a partly stored run: exactly the 2 new items are generated, on every suite
    (the records' key, whatever the suite's data version says, is the key the lookup uses)."""
    ckpt = write_fake(tmp_path / "m.fake.json", {}, 0)
    reg = Registry([], (), None)
    runs = tmp_path / "runs"
    suite = all_suites()[name]
    try:
        load_items(suite, 4)
    except SuiteError as e:  # gated hub data (wildguardtest, wildjailbreak) cannot be had offline
        pytest.skip(str(e))
    for limit in (2, 4):
        evaluate(
            reg,
            [reg.resolve(str(ckpt))],
            [suite],
            EvalConfig(engine="fake", limit=limit, runs_dir=runs),
            engine=FakeEngine(),
        )
    assert _stored_rows(runs) == {name.replace("/", "_"): 4}, suite.data_version
