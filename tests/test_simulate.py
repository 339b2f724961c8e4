"""The mixture-of-Gaussians simulation reproduces the paper's numbers (reference/paper.md section 5.3).

.venv/bin/python -m pytest tests/test_simulate.py -q
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from harness.simulate.gaussians import (
    BIMODAL,
    UNIMODAL,
    RunSpec,
    SummaryRow,
    default_specs,
    run_all,
    run_one,
    summary_rows,
)
from harness.simulate.report import run_and_render

SEEDS = 5
TOL = 0.02  # the paper reports two decimals from one seed; seed means land well inside this


@pytest.fixture(scope="module")
def rows() -> dict[tuple[str, str, float, float], SummaryRow]:
    return {(r.setting, r.method, r.lr, r.target_mean): r for r in summary_rows(run_all(SEEDS, 0.9))}


@pytest.mark.parametrize(
    ("setting", "method", "lr", "paper"),
    [
        ("bimodal", "forward_kl", 0.15, 0.12),
        ("bimodal", "reverse_kl", 0.01, 0.03),
        ("unimodal", "forward_kl", 0.05, 0.64),
        ("unimodal", "reverse_kl", 0.005, 0.70),
    ],
)
def test_drop_at_gain_threshold_matches_paper(rows, setting: str, method: str, lr: float, paper: float):
    row = rows[(setting, method, lr, 3.5)]
    assert row.n_seeds == SEEDS
    assert row.n_reached == SEEDS, f"{setting} {method} lr {lr}: only {row.n_reached} seeds reached gain 0.9"
    assert row.drop_at_threshold_mean == pytest.approx(paper, abs=TOL)


def test_paper_conclusion_flips_with_modality(rows) -> None:
    # Bi-modal: RL (reverse KL) forgets less than high-lr SFT; uni-modal: the other way round.
    bi = rows[("bimodal", "reverse_kl", 0.01, 3.5)], rows[("bimodal", "forward_kl", 0.15, 3.5)]
    uni = rows[("unimodal", "reverse_kl", 0.005, 3.5)], rows[("unimodal", "forward_kl", 0.05, 3.5)]
    assert bi[0].drop_at_threshold_mean < bi[1].drop_at_threshold_mean
    assert uni[0].drop_at_threshold_mean > uni[1].drop_at_threshold_mean


def test_low_lr_sft_never_reaches_threshold(rows) -> None:
    row = rows[("bimodal", "forward_kl", 0.01, 3.5)]
    assert row.n_reached == 0
    assert row.drop_at_threshold_mean is None and row.step_at_threshold_mean is None
    assert all(s["step_at_threshold"] is None and s["drop_at_threshold"] is None for s in row.per_seed)
    assert row.final_gain_mean == pytest.approx(0.44, abs=TOL)  # paper: max gain 0.44
    assert row.final_drop_mean == pytest.approx(0.02, abs=TOL)


@pytest.mark.parametrize(("spec", "old", "new"), [(BIMODAL, 0.803, 0.032), (UNIMODAL, 0.900, 0.000)])
def test_initial_overlaps(spec, old: float, new: float) -> None:
    run = run_one(RunSpec(spec, "forward_kl", 0.05), seed=0)
    assert run.initial_old == pytest.approx(old, abs=0.005)
    assert run.initial_new == pytest.approx(new, abs=0.005)


def test_matches_reference_code_stream() -> None:
    # Fed the repo's own RNG stream (np.random.seed(0), runs in sequence) we land on the paper's
    # [X] numbers; its "iteration 82" is the 0-based index of our 1-based step 83.
    specs = default_specs()
    rng = np.random.RandomState(0)
    bi = [run_one(s, 0, rng=rng) for s in specs[:3]]
    assert [r.step_at_threshold for r in bi] == [83, None, 124]
    assert round(bi[0].drop_at_threshold, 2) == 0.12 and round(bi[2].drop_at_threshold, 2) == 0.03
    assert round(bi[1].gain.max(), 2) == 0.44
    rng = np.random.RandomState(0)
    uni = [run_one(s, 0, rng=rng) for s in specs[3:5]]
    assert [r.step_at_threshold for r in uni] == [442, 290]
    assert [round(r.drop_at_threshold, 2) for r in uni] == [0.64, 0.70]


def test_result_arrays_and_snapshots() -> None:
    run = run_one(RunSpec(BIMODAL, "reverse_kl", 0.01), seed=3)
    assert run.gain.shape == run.drop.shape == (BIMODAL.num_iters,)
    assert run.params.shape == (BIMODAL.num_iters + 1, 5)
    assert run.snapshot_steps[0] == 0 and run.snapshot_steps[-1] == run.step_at_threshold
    assert all(k % 10 == 0 for k in run.snapshot_steps[:-1])
    assert run.snapshots.shape == (len(run.snapshot_steps), BIMODAL.n_x)
    xs = np.linspace(BIMODAL.x_min, BIMODAL.x_max, BIMODAL.n_x)
    assert np.trapezoid(run.snapshots[-1], xs) == pytest.approx(1.0, abs=1e-3)  # q stays a density
    assert run.drop_at_threshold == run.drop[run.step_at_threshold - 1]
    assert run.gain[run.step_at_threshold - 2] < 0.9 <= run.gain[run.step_at_threshold - 1]


def test_seeds_are_independent_and_reproducible() -> None:
    spec = RunSpec(BIMODAL, "reverse_kl", 0.01)
    a, b, c = run_one(spec, 0), run_one(spec, 0), run_one(spec, 1)
    assert np.array_equal(a.gain, b.gain)
    assert not np.array_equal(a.gain, c.gain)


def test_run_and_render_json_and_html(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from plotly.offline import get_plotlyjs

    out = tmp_path / "sub" / "simulate.html"
    # No timing claim here (house rule: speed is checked by benchmark scripts, not tests on a shared CPU).
    assert run_and_render(seeds=SEEDS, out=out, as_json=True, threshold=0.9) == 0

    doc = json.loads(capsys.readouterr().out)  # stdout is the JSON document and nothing else
    assert doc["seeds"] == SEEDS and doc["gain_threshold"] == 0.9
    assert len(doc["rows"]) == len(default_specs())
    assert all(len(r["per_seed"]) == SEEDS for r in doc["rows"])
    assert {r["group"] for r in doc["rows"]} == {"main", "sweep"}

    html = out.read_text(encoding="utf-8")
    assert html.count(get_plotlyjs()[:2000]) == 1  # plotly.js inlined, exactly once
    assert not re.search(r"<script[^>]*\bsrc\s*=\s*[\"']?(https?:)?//", html, re.IGNORECASE)
    assert html.count("Plotly.newPlot") >= 4
    assert [p.name for p in out.parent.iterdir()] == ["simulate.html"]  # no temp file left behind


def test_run_and_render_prints_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_and_render(seeds=1, out=tmp_path / "s.html") == 0
    text = capsys.readouterr().out
    assert "Mixture of Gaussians" in text and "Target-distance sweep" in text and "0.64" in text


@pytest.mark.parametrize(("seeds", "threshold"), [(0, 0.9), (5, 0.0), (5, 1.5)])
def test_run_and_render_rejects_bad_input(tmp_path: Path, capsys, seeds: int, threshold: float) -> None:
    out = tmp_path / "s.html"
    assert run_and_render(seeds=seeds, out=out, threshold=threshold) == 2
    assert not out.exists()
    captured = capsys.readouterr()
    assert captured.out == "" and "simulate:" in captured.err


def test_no_torch_import() -> None:
    code = "import sys, harness.simulate.gaussians, harness.simulate.report; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


def test_one_cli_and_no_import_circle(tmp_path: Path) -> None:
    """`forgetbench simulate` is the only entry: the numerics have no main and never import their renderer."""
    import ast

    from typer.testing import CliRunner

    import harness.simulate.gaussians as sim
    from harness.cli import app

    tree = ast.parse(Path(sim.__file__).read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "argparse" not in imported and "harness.simulate.report" not in imported
    assert not hasattr(sim, "cli_main") and not hasattr(sim, "_main")
    res = CliRunner().invoke(app, ["simulate", "--seeds", "0", "--out", str(tmp_path / "s.html")])
    assert res.exit_code == 2 and "--seeds must be >= 1" in res.output and not (tmp_path / "s.html").exists()
