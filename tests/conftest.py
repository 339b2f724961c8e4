"""Shared fixtures: a tiny random model (session-scoped: built once), an isolated forgetbench home."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    from tests.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Fingerprint memo and materialised models go to a per-test folder, never the user's cache.
    monkeypatch.setenv("FORGETBENCH_HOME", str(tmp_path / "fbhome"))
