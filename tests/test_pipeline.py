"""End to end on the fake engine: compare -> store -> report; caching; adding one checkpoint; report re-render."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.store import Store
from tests.fakes import write_fake

SUITES = "arithmetic,capitals,countdown"
runner = CliRunner()


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "capitals": 0.7, "countdown": 0.1}, 20, seed=1)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.2, "capitals": 0.4, "countdown": 0.9}, 20, seed=2)
    write_fake(
        tmp_path / "grpo.fake.json",
        {"arithmetic": 0.5, "capitals": 0.7, "countdown": 0.7},
        20,
        seed=1,
        extra={},
    )
    (tmp_path / "checkpoints.yaml").write_text(
        "default_suites: [arithmetic, capitals, countdown]\ncheckpoints:\n"
        "  - id: base\n    path: base.fake.json\n    method: base\n"
        "  - id: sft\n    path: sft.fake.json\n    method: sft\n    base: base\n    trained_on: [countdown]\n"
        "  - id: grpo\n    path: grpo.fake.json\n    method: grpo\n    base: base\n    trained_on: [countdown]\n"
    )
    return tmp_path


def _compare(*ckpts: str, out: str = "out") -> object:
    return runner.invoke(
        app, ["compare", *ckpts, "--engine", "fake", "--limit", "20", "--out", out, "--suites", SUITES]
    )


def _evaluated(ws: Path) -> set[str]:
    return {Store(ws / "reports/runs").checkpoint_info(fp)["id"] for fp in Store(ws / "reports/runs").fingerprints()}


def test_compare_end_to_end(workspace: Path) -> None:
    res = _compare("base", "sft")
    assert res.exit_code == 0, res.output
    out = workspace / "out"
    data = json.loads((out / "results.json").read_text())
    sft = next(s for s in data["summaries"] if s["checkpoint"] == "sft")
    base_cd, sft_cd = data["scores"]["base"]["countdown"], data["scores"]["sft"]["countdown"]
    assert sft["gain"] == pytest.approx(sft_cd - base_cd)
    non = [data["scores"]["base"][s] - data["scores"]["sft"][s] for s in ("arithmetic", "capitals")]
    assert sft["drop_all"] == pytest.approx(sum(non) / 2)  # the paper's drop, over all non-target suites
    # the headline: over the suites the base can show forgetting on (decided from the base alone)
    kept = [d for s, d in zip(("arithmetic", "capitals"), non, strict=True)
            if next(f for f in data["informative"] if f["suite"] == s)["informative"]]  # fmt: skip
    assert sft["drop"] == pytest.approx(sum(kept) / len(kept) if kept else sum(non) / 2)
    assert sft["drop"] > 0  # the fake sft forgot
    df = pd.read_parquet(out / "results.parquet")
    assert set(df["suite"]) >= {"arithmetic", "capitals", "countdown"}
    html = (out / "report.html").read_text()
    assert "sft" in html and "countdown" in html
    assert "gain" in res.output and "drop" in res.output


def test_adding_a_checkpoint_evaluates_only_that_one(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compare("base", "sft").exit_code == 0
    assert _evaluated(workspace) == {"base", "sft"}
    loads: list[str] = []
    from harness.engines.fake import FakeEngine

    real_load = FakeEngine.load
    monkeypatch.setattr(FakeEngine, "load", lambda self, p: (loads.append(Path(p).name), real_load(self, p))[1])
    res = _compare("base", "sft", "grpo", out="out2")
    assert res.exit_code == 0, res.output
    assert loads == ["grpo.fake.json"]  # base and sft came from the store
    loads.clear()
    assert _compare("base", "sft", "grpo", out="out3").exit_code == 0
    assert loads == []  # fully cached: no model at all


def test_report_rerenders_from_records_without_a_model(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compare("base", "sft").exit_code == 0
    (workspace / "out" / "report.html").unlink()
    from harness.engines import fake

    monkeypatch.setattr(fake.FakeEngine, "generate", lambda *a, **k: pytest.fail("report must not generate"))
    res = runner.invoke(app, ["report", "out"])
    assert res.exit_code == 0, res.output
    assert (workspace / "out" / "report.html").exists()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["compare", "ghost", "--engine", "fake"], "ghost: no such file"),
        (["compare", "base", "sft", "--engine", "fake", "--suites", "nope"], "unknown suite 'nope'"),
        (["compare", "base", "--engine", "warp"], "unknown engine 'warp'"),
        (["report", "nowhere"], "not found"),
    ],
)
def test_bad_input_is_one_line_and_nonzero(workspace: Path, args: list[str], needle: str) -> None:
    res = runner.invoke(app, args)
    assert res.exit_code != 0
    assert needle in res.output.replace("\n", " ")


def test_incomparable_runs_are_refused(workspace: Path) -> None:
    assert _compare("base", "sft").exit_code == 0
    res = runner.invoke(
        app,
        [
            "compare",
            "base",
            "sft",
            "--engine",
            "fake",
            "--limit",
            "20",
            "--out",
            "o",
            "--suites",
            SUITES,
            "--max-new-tokens",
            "7",
            "--cached-only",
        ],
    )
    assert res.exit_code != 0 and "not in the store" in res.output


def test_suites_and_checkpoints_commands(workspace: Path) -> None:
    res = runner.invoke(app, ["suites"])
    assert res.exit_code == 0 and "countdown" in res.output and "reasoning" in res.output
    res = runner.invoke(app, ["checkpoints"])
    assert res.exit_code == 0 and "grpo" in res.output
    (workspace / "grpo.fake.json").unlink()
    res = runner.invoke(app, ["checkpoints"])
    assert res.exit_code == 1 and "missing file" in res.output
