"""The spine on the real embedded model (slow): a .pt made from the base by a few optimizer steps, then
`forgetbench compare base that.pt` with the hf engine, producing every part of the report.

    .venv/bin/python -m pytest -m slow tests/test_real_compare.py
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from harness.cli import app

runner = CliRunner()


@pytest.mark.slow
def test_compare_embedded_base_with_a_trained_pt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    monkeypatch.chdir(tmp_path)
    Path("checkpoints.yaml").write_text(
        "checkpoints:\n  - id: smollm2-135m\n    path: embedded:smollm2-135m-instruct\n    method: base\n"
    )
    res = runner.invoke(app, ["checkpoints"])
    if res.exit_code != 0:
        pytest.skip(f"embedded model unavailable: {res.output.strip().splitlines()[-1]}")
    # Two real AdamW steps of SFT on Countdown expert solutions -> a self-describing .pt.
    res = runner.invoke(
        app,
        ["train", "sft", "--suite", "countdown", "--base", "smollm2-135m", "--name", "nudged", "--out", "train",
         "--max-steps", "2", "--batch-size", "4", "--micro-batch-size", "4", "--train-limit", "8", "--no-register"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    (pt,) = Path("train").glob("*.pt")
    res = runner.invoke(
        app,
        ["compare", "smollm2-135m", str(pt), "--suites", "countdown,capitals,arithmetic", "--limit", "6",
         "--max-new-tokens", "24", "--out", "out"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads(Path("out/results.json").read_text())
    (summary,) = data["summaries"]
    assert summary["method"] == "sft" and summary["trained_on"] == ["countdown"]  # lineage read from the .pt
    assert summary["gain"] is not None and summary["drop"] is not None
    assert data["meta"]["fingerprints"]["smollm2-135m"] != data["meta"]["fingerprints"][summary["checkpoint"]]
    html = Path("out/report.html").read_text()
    for part in ('id="summary-table"', 'id="suite-table"', 'id="fig-heatmap"', 'id="fig-frontier"', 'id="forgotten"'):
        assert part in html
    assert len(pd.read_parquet("out/results.parquet")) == 6  # 3 suites x (base + candidate)
