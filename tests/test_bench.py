"""scripts/bench.py runs (its numbers are printed, never asserted): the GPU mode on a tiny shape on CPU,
and the cached-compare mode on the fake engine."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _rows(*args: str) -> list[dict]:
    res = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), *args], capture_output=True, text=True, timeout=600
    )
    assert res.returncode == 0, res.stderr[-2000:]
    return [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]


def test_gpu_mode_runs_on_cpu_with_a_tiny_shape() -> None:
    pytest.importorskip("torch")
    rows = _rows("gpu", "--device", "cpu", "--shapes", "tiny", "--batches", "1", "3", "--max-new-tokens", "6")
    assert rows[0]["device"] == "cpu" and rows[0]["copy_bandwidth_GBs"] > 0
    gen = rows[1:]
    assert [r["batch"] for r in gen] == [1, 3]
    assert all(r["path"] == "continuous" and r["tokens"] == 6 * r["batch"] and r["floor_tok_s"] > 0 for r in gen)


def test_compare_mode_times_a_cached_comparison() -> None:
    (row,) = _rows("compare")
    assert row["store"] == "fake" and row["cached_median_s"] > 0 and row["first_s"] > 0


def test_track_mode_runs_on_a_tiny_shape() -> None:
    pytest.importorskip("torch")
    rows = _rows("track", "--tiny", "--k", "2", "--per-suite", "2", "--track-tokens", "6")
    head, start, *steps, cached = rows
    assert head["track_s"] > 0 and head["compare_processes_s"] > 0
    assert start["starts"] == 1
    assert [r["step"] for r in steps] == [100, 200]
    assert all(r["starts"] == 1 and r["switch_pct_of_eval"] >= 0 for r in steps)  # one engine start, then switches
    assert [r["switches"] for r in steps] == [1, 2]
    assert cached["cached_median_s"] > 0
