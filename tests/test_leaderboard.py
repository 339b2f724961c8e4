"""The static leaderboard: contents, protocol grouping, determinism, exit codes, and a real browser.

.venv/bin/python -m pytest tests/test_leaderboard.py -q
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from harness.compare import compare
from harness.leaderboard import SITE_MARKER, LeaderboardError, build_site, register
from harness.report import render_html, write_json
from harness.types import SuiteResult

PAYLOAD = "</pre></script><script>document.title='pwned';document.body.dataset.pwned='1'</script>"
IMG = "<img src=x onerror=\"document.body.dataset.pwned='img'\">"
EVIL = "<img src=x onerror=document.body.dataset.pwned='id'>"  # a checkpoint id from a hand-made results.json

runner = CliRunner()
app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:  # keeps `leaderboard` a named subcommand, as in the main CLI
    pass


def _res(ckpt: str, suite: str, right: int, n: int = 30, wrong: str = "no") -> SuiteResult:
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
        scores=tuple([1.0] * right + [0.0] * (n - right)),
        completions=tuple(["42"] * right + [wrong] * (n - right)),
    )


# (arithmetic right, countdown right) out of 30; countdown is every candidate's target suite
MODELS = {"base": (30, 0), "sft": (10, 25), "grpo": (28, 27), EVIL: (30, 10), "near": (27, 26)}


def write_run(d: Path, names: list[str], limit: int = 30, report: bool = True) -> Path:
    """A compare output dir (results.json + config.json [+ report.html]) as `forgetbench compare` writes it."""
    results = {}
    for name in ["base", *names]:
        a, c = MODELS[name]
        wrong = PAYLOAD if name == "sft" else IMG
        results[name] = {
            "arithmetic": _res(name, "arithmetic", a, wrong=wrong),
            "countdown": _res(name, "countdown", c),
        }
    prompts = {"arithmetic": {f"arithmetic-{i}": (f"What is 6*7? <b>{i}</b>", "42") for i in range(30)}}
    comp = compare(
        results, "base", [(n, "sft" if n != "grpo" else "grpo", ("countdown",)) for n in names], prompts, 100
    )
    lineage = {n: {"id": n, "method": "sft", "hparams": {"lr": 1e-5, "note": IMG}} for n in names}
    config = {"checkpoints": ["base", *names], "suites": ["arithmetic", "countdown"], "registry": "",
              "eval": {"engine": "fake", "limit": limit}, "n_boot": 100, "lineage": lineage}  # fmt: skip
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps(config))
    write_json(comp, d / "results.json", config=config)
    if report:
        render_html(comp, d / "report.html", config=config)
    return d


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lb") / "reports"
    write_run(root / "a", ["sft", "grpo"])
    shutil.copytree(root / "a", root / "nested" / "a-copy")  # the same results twice: one row, "also in"
    write_run(root / "b", [EVIL], report=False)  # no report kept: the site re-renders it
    write_run(root / "c", ["sft"], limit=10)  # another item set: another protocol, never ranked with a
    (root / "broken").mkdir()
    (root / "broken" / "results.json").write_text("{not json")
    (root / "broken" / "config.json").write_text("{}")
    (root / "runs" / "records").mkdir(parents=True)  # the record store is not a run
    return root


@pytest.fixture(scope="module")
def site(runs: Path) -> Path:
    return build_site(runs, runs.parent / "site", generated_at="2000-01-01 00:00:00 UTC")


def _group(site: Path, limit: int) -> dict:
    data = json.loads((site / "leaderboard.json").read_text())
    return next(g for g in data["groups"] if g["protocol_info"]["limit"] == limit)


def test_dominance_across_runs_needs_intervals_apart(tmp_path: Path) -> None:
    """Rows of comparisons run apart share no resamples: grpo dominates sft (drop 6.7 vs 66.7 of 30 items,
    intervals apart) but not `near`, which it beats on both points by one item each (intervals overlap)."""
    root = tmp_path / "reports"
    for name in ("sft", "grpo", "near"):
        write_run(root / name, [name])
    site = build_site(root, tmp_path / "site", generated_at="2000-01-01 00:00:00 UTC")
    by = {e["checkpoint"]: e for e in _group(site, 30)["entries"]}
    assert by["sft"]["dominated_by"] == ["grpo", "near"] and by["near"]["dominated_by"] == []
    assert by["grpo"]["dominated_by"] == []


def test_contents_and_protocol_groups(site: Path) -> None:
    data = json.loads((site / "leaderboard.json").read_text())
    assert len(data["groups"]) == 2  # limit 30 and limit 10 are different item sets
    a = _group(site, 30)
    by = {e["checkpoint"]: e for e in a["entries"]}
    assert list(by) == ["base", EVIL, "grpo", "sft"]  # base first, then least drop
    assert by["sft"]["gain"] == pytest.approx(250 / 3) and by["sft"]["drop"] == pytest.approx(200 / 3)
    assert by["sft"]["suites"]["arithmetic"]["score"] == pytest.approx(100 / 3)
    assert by["sft"]["dominated_by"] == ["grpo"] and by["grpo"]["dominated_by"] == []
    assert by["sft"]["source"] == "a" and by["sft"]["also_in"] == ["nested/a-copy"]
    assert by["base"]["suites"]["arithmetic"]["score"] == 100.0 and by["base"]["gain"] is None
    assert any("2 protocols" in n for n in a["notes"])
    c = _group(site, 10)
    assert [e["checkpoint"] for e in c["entries"]] == ["base", "sft"]
    index = (site / "index.html").read_text()
    assert index.count('<table class="board"') == 2 and "skipped broken" in index
    assert 'id="filter-base"' in index and 'id="filter-method"' in index
    # every page and report link resolves inside the site; no CDN, plotly.js once as a local file
    for g in data["groups"]:
        for e in g["entries"]:
            page = site / e["page"]
            assert page.exists() and (page.parent / ".." / e["report"]).resolve().is_file()
            assert f'href="{html.escape(e["page"])}"' in index
    assert re.findall(r"<script[^>]*\bsrc=\"([^\"]+)\"", index) == ["assets/plotly.min.js"]
    assert (site / "assets/plotly.min.js").stat().st_size > 1_000_000
    assert not re.search(r"(src|href)=\"(https?:)?//", index)
    reports = sorted(p.relative_to(site).parts[1] for p in site.glob("reports/*/report.html"))
    assert len(reports) == 4  # a, b (re-rendered), c, nested/a-copy
    figs = json.loads(re.search(r'id="figures">(.*?)</script>', index, re.S).group(1))
    assert len(figs) == 2 and {"sft", "grpo", EVIL} <= set(sum((t["text"] for t in figs["fig-0"]["data"]), []))


def test_untrusted_text_is_escaped(site: Path) -> None:
    index = (site / "index.html").read_text()
    assert "<img src=x" not in index and "&lt;img src=x" in index  # the evil id is text
    block = re.search(r'id="figures">(.*?)</script>', index, re.S).group(1)
    assert "<" not in block and ">" not in block and "&" not in block
    sft = next(e for e in _group(site, 30)["entries"] if e["checkpoint"] == "sft")
    page = (site / sft["page"]).read_text()
    assert "<script>document.title" not in page and "&lt;/script&gt;&lt;script&gt;document.title" in page
    assert "&lt;b&gt;10&lt;/b&gt;" in page  # prompts too (items 10-29 were forgotten)
    assert "<script" not in page  # checkpoint pages carry no script at all
    evil = next(e for e in _group(site, 30)["entries"] if e["checkpoint"] == EVIL)
    assert re.fullmatch(r"checkpoints/img_src_x_onerror_document.body.dataset-[0-9a-f]{8}\.html", evil["page"])


def test_rebuild_is_deterministic(runs: Path, site: Path, tmp_path: Path) -> None:
    again = build_site(runs, tmp_path / "site2", generated_at="2001-02-03 04:05:06 UTC")
    files = sorted(p.relative_to(site) for p in site.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    for rel in files:
        a, b = (site / rel).read_bytes(), (again / rel).read_bytes()
        if rel.name == "index.html" and rel.parent == Path("."):
            diff = [x for x, y in zip(a.splitlines(), b.splitlines(), strict=True) if x != y]
            assert len(diff) == 1 and b"generated" in diff[0]
        else:
            assert a == b, rel
    # rebuilding into an existing site replaces it; a directory that is not a site is never replaced
    build_site(runs, again)
    assert (again / SITE_MARKER).exists()
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(LeaderboardError, match="not a forgetbench site"):
        build_site(runs, tmp_path / "mine")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


def test_cli_exit_codes(runs: Path, tmp_path: Path) -> None:
    res = runner.invoke(app, ["leaderboard", str(runs), "--out", str(tmp_path / "s")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "s" / "index.html").exists() and "skipped broken" in res.output
    res = runner.invoke(app, ["leaderboard", str(tmp_path / "nowhere"), "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "no such directory" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "t")])
    assert res.exit_code == 2 and "no compare results" in res.output and not (tmp_path / "t").exists()


# -- a real browser --------------------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--virtual-time-budget=5000"]  # fmt: skip


def dump_dom(url: str, tmp_path: Path) -> str:
    cmd = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}", "--dump-dom", url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=True).stdout


def row_order(dom: str, protocol: str) -> list[str]:
    section = re.search(rf'data-protocol="{protocol}".*?</table>', dom, re.S).group(0)
    return [html.unescape(x) for x in re.findall(r'<tr[^>]*data-checkpoint="([^"]*)"', section)]


def assert_inert(dom: str) -> None:
    assert "data-pwned" not in dom and "<img" not in dom
    assert re.search(r"<title>(.*?)</title>", dom, re.S).group(1) != "pwned"  # the payload's own assignment


@pytest.mark.chromium
@pytest.mark.skipif(CHROMIUM is None, reason="Debian chromium is not installed")
def test_site_in_headless_chromium(site: Path, tmp_path: Path) -> None:
    protocol = _group(site, 30)["protocol"]
    dom = dump_dom((site / "index.html").as_uri() + "#sort=-drop", tmp_path)
    assert_inert(dom)
    assert dom.count('class="main-svg"') >= 2  # plotly (the local file) drew the frontiers
    assert row_order(dom, protocol) == ["base", "sft", "grpo", EVIL]  # the fragment sorted (base pinned)
    assert 'aria-sort="descending"' in dom and "4 checkpoint(s) shown" in dom  # 3 in this table, 1 in the other
    # a click on a header: a copy of the page (same folder, same assets) with one extra script
    page = (site / "index.html").read_text()
    click = (
        f"<script>document.querySelector('section[data-protocol=\"{protocol}\"] th[data-key=gain]').click()</script>"
    )
    probe = site / "index-click.html"
    probe.write_text(page.replace("</body>", click + "</body>"))
    try:
        dom = dump_dom(probe.as_uri(), tmp_path)
    finally:
        probe.unlink()
    assert row_order(dom, protocol) == ["base", "grpo", "sft", EVIL]  # gain, highest first
    assert_inert(dom)
    # a method filter from the fragment hides rows (the base stays as the reference)
    dom = dump_dom((site / "index.html").as_uri() + "#method=grpo", tmp_path)
    assert "1 checkpoint(s) shown" in dom
    # every other page: checkpoint pages (the payload is in forgotten answers and hparams) and copied reports
    entries = _group(site, 30)["entries"]
    pages = [e["page"] for e in entries if e["checkpoint"] in ("sft", EVIL)]
    reports = [p.relative_to(site).as_posix() for p in sorted(site.glob("reports/[ab]-*/report.html"))]
    assert len(reports) == 2  # a: the sft payload; b: re-rendered here, with the evil id
    for rel in [*pages, *reports]:
        dom = dump_dom((site / rel).as_uri(), tmp_path)
        assert_inert(dom)
        assert "pwned" in html.unescape(dom)  # the text is there, for the reader, but did nothing


def test_suite_limits_are_part_of_the_protocol(tmp_path: Path) -> None:
    from harness.leaderboard import protocol_of

    data = {"suites": ["arithmetic", "countdown"], "meta": {"suite_versions": {}, "decoding": {}}, "base": "b"}
    plain = protocol_of(data, {"eval": {"limit": 30}})
    same = protocol_of(data, {"eval": {"limit": 30, "limits": {}}})
    other = protocol_of(data, {"eval": {"limit": 30, "limits": {"countdown": 5, "mmlu": 9}}})
    assert plain == same and "limits" not in plain[1]  # runs without --suite-limit keep their old key
    assert other[0] != plain[0] and other[1]["limits"] == {"countdown": 5}  # only the run's own suites count
    root = tmp_path / "runs"
    run = write_run(root / "x", ["sft"])
    config = json.loads((run / "config.json").read_text())
    config["eval"]["limits"] = {"countdown": 5}
    (run / "config.json").write_text(json.dumps(config))
    res = CliRunner().invoke(app, ["leaderboard", str(root), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    assert "countdown: first 5" in (tmp_path / "site" / "index.html").read_text()
