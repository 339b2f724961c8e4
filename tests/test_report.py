"""The HTML report: escaping of untrusted model output, base-only pages, JSON/parquet, and a real browser look."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest

from harness.compare import compare
from harness.report import render_html, script_json, write_json, write_parquet
from harness.types import SuiteResult

PAYLOAD = "</pre></script><script>document.title='pwned';document.body.dataset.pwned='1'</script>"
IMG = "<img src=x onerror=\"document.body.dataset.pwned='img'\">"


def _result(ckpt: str, suite: str, scores: list[float], completions: list[str]) -> SuiteResult:
    n = len(scores)
    return SuiteResult(
        checkpoint=ckpt,
        fingerprint=f"fp-{ckpt}",
        suite=suite,
        data_version="1",
        area="math" if suite == "arithmetic" else "reasoning",
        decoding="greedy",
        engine="fake@1",
        item_ids=tuple(f"{suite}-{i}" for i in range(n)),
        prompt_hashes=tuple(f"h{i}" for i in range(n)),
        scores=tuple(scores),
        completions=tuple(completions),
    )


def _comparison(candidates: bool = True):
    base = {
        "arithmetic": _result("base", "arithmetic", [1.0] * 30, ["42"] * 30),
        "countdown": _result("base", "countdown", [0.0] * 30, ["no"] * 30),
    }
    results = {"base": base}
    if candidates:
        results["sft"] = {
            # the candidate forgets arithmetic, and its wrong answers carry an XSS payload
            "arithmetic": _result(
                "sft", "arithmetic", [0.0] * 20 + [1.0] * 10, [PAYLOAD] * 10 + [IMG] * 10 + ["42"] * 10
            ),
            "countdown": _result("sft", "countdown", [1.0] * 25 + [0.0] * 5, ["\\boxed{1+2}"] * 30),
        }
    prompts = {"arithmetic": {f"arithmetic-{i}": (f"What is 6*7? <b>{i}</b>", "42") for i in range(30)}}
    cands = [("sft", "sft", ("countdown",))] if candidates else []
    return compare(results, "base", cands, prompts, n_boot=200)


def test_script_json_cannot_close_the_script() -> None:
    text = str(script_json({"x": PAYLOAD, "y": "a & b > c"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text)["x"] == PAYLOAD  # still the same data once parsed


def test_report_escapes_model_output(tmp_path: Path) -> None:
    comp = _comparison()
    html = render_html(comp, tmp_path / "report.html").read_text()
    # the payload appears only escaped: no live script tag or img element from model output
    assert "document.title='pwned'" in html.replace("&#39;", "'")  # the text is there, for the reader
    assert "<script>document.title" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;document.title" in html
    assert "&lt;b&gt;3&lt;/b&gt;" in html  # prompts too
    # exactly our own scripts: plotly.js, the figure JSON block, the page script
    assert len(re.findall(r"<script[ >]", html)) == 3


def test_report_has_all_parts(tmp_path: Path) -> None:
    comp = _comparison()
    html = render_html(comp, tmp_path / "report.html", config={"checkpoints": ["base", "sft"]}).read_text()
    for part in ('id="summary-table"', 'id="suite-table"', 'id="fig-heatmap"', 'id="fig-frontier"', 'id="forgotten"'):
        assert part in html
    figs = json.loads(re.search(r'id="figures">(.*?)</script>', html, re.S).group(1))
    assert set(figs) == {"heatmap", "frontier"}
    heat = figs["heatmap"]["data"][0]
    assert heat["y"] == ["sft"] and heat["x"] == ["arithmetic", "countdown"]
    assert heat["z"][0][0] == pytest.approx(-66.6667, abs=1e-3)  # 30 right -> 10 right
    assert heat["z"][0][1] == pytest.approx(83.3333, abs=1e-3)
    line = next(t for t in figs["frontier"]["data"] if t["name"] == "frontier")
    assert line["x"] == [0.0, pytest.approx(66.6667, abs=1e-3)]  # base (0, 0), then sft: neither dominates
    sft = comp.summaries[0]
    assert sft.gain == pytest.approx(83.3333, abs=1e-3) and sft.drop == pytest.approx(66.6667, abs=1e-3)
    assert html.count('class="item"') == 20  # the 20 forgotten arithmetic items, all browsable
    assert "Plotly.newPlot" in html and "<script src" not in html  # plotly.js inlined: opens offline


def test_base_only_report(tmp_path: Path) -> None:
    comp = _comparison(candidates=False)
    html = render_html(comp, tmp_path / "report.html").read_text()
    figs = json.loads(re.search(r'id="figures">(.*?)</script>', html, re.S).group(1))
    assert set(figs) == {"heatmap"} and figs["heatmap"]["data"][0]["z"] == [[100.0, 0.0]]
    assert 'id="summary-table"' not in html and 'id="suite-table"' in html


def test_json_and_parquet(tmp_path: Path) -> None:
    comp = _comparison()
    data = json.loads(write_json(comp, tmp_path / "r.json", config={"suites": ["a"]}).read_text())
    assert data["schema"] >= 1 and data["config"] == {"suites": ["a"]} and data["base"] == "base"
    df = pd.read_parquet(write_parquet(comp, tmp_path / "r.parquet"))
    assert len(df) == 4  # base x 2 suites + sft x 2 suites
    row = df[(df.checkpoint == "sft") & (df.suite == "arithmetic")].iloc[0]
    assert row.forgotten == 20 and not row.is_target and row.delta == pytest.approx(-66.6667, abs=1e-3)
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=5000",
]


def chromium(args: list[str], tmp_path: Path) -> str:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed (.ci/run installs it)")
def test_report_in_headless_chromium(tmp_path: Path) -> None:
    page = render_html(_comparison(), tmp_path / "report.html")
    dom = chromium(["--dump-dom", page.as_uri()], tmp_path)
    assert "pwned" not in dom.split("<body", 1)[1].split(">", 1)[0]  # no payload set body data attributes
    assert "<title>forgetbench" in dom and "pwned" not in re.search(r"<title>(.*?)</title>", dom).group(1)
    # plotly drew both figures (its SVG containers exist only after the script ran)
    assert dom.count('class="main-svg"') >= 2
    assert "20 shown" in dom  # the forgotten-items browser ran its filter
    shot = tmp_path / "report.png"
    chromium([f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()], tmp_path)
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
