"""Shared fixtures: a tiny random model (session-scoped: built once), an isolated forgetbench home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from tests.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def _data_home() -> str:
    from harness.data import data_home

    return str(data_home())


@pytest.fixture(scope="session")
def _slow_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("slow-fbhome")


@pytest.fixture(autouse=True)
def _isolated_home(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, _data_home: str
) -> None:
    # Fingerprint memo and materialised models go to a per-test folder, never the user's cache. Benchmark
    # data stays shared: it is sha256-checked, read-only, and fetched once by setup (`forgetbench data`).
    # The slow tests share one home: each would otherwise materialise the embedded model again (~0.5 GB of
    # disk per copy; CI's disk once filled in that stage).
    slow = request.node.get_closest_marker("slow") is not None
    home = request.getfixturevalue("_slow_home") if slow else tmp_path / "fbhome"
    monkeypatch.setenv("FORGETBENCH_HOME", str(home))
    monkeypatch.setenv("FORGETBENCH_DATA", _data_home)
