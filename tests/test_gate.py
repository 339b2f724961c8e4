"""The CI gate: exit codes on scripted (fake-engine) checkpoints, the decision rule, config file, CI outputs.

.venv/bin/python -m pytest tests/test_gate.py -q
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from harness.compare import compare, overall_p_value, paired_p_value
from harness.gate import GateConfig, GateConfigError, decide, load_config, register
from harness.suites import get_suite, load_items
from harness.types import SuiteResult

SUITES = "arithmetic,capitals,countdown"
runner = CliRunner()
app = typer.Typer()
register(app)


@app.callback()
def _root() -> None:  # a callback keeps `gate` a named subcommand, as in the main CLI
    pass


def write_scripted(path: Path, correct: dict[str, int], limit: int) -> Path:
    """A fake model answering exactly the first `correct[suite]` of each suite's first `limit` items right."""
    responses = {}
    for name, k in correct.items():
        s = get_suite(name)
        for i, it in enumerate(load_items(s, limit)):
            responses[s.prompt(it)[-1]["content"]] = s.reference(it) if i < k else s.wrong(it)
    path.write_text(json.dumps({"responses": responses}))
    return path


REGISTRY = """default_suites: [arithmetic, capitals, countdown]
checkpoints:
  - id: base
    path: base.fake.json
    method: base
  - id: sft
    path: sft.fake.json
    method: sft
    base: base
    trained_on: [countdown]
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    return tmp_path


def gate(*extra: str, limit: int = 40) -> object:
    args = ["gate", "--base", "base", "--candidate", "sft", "--engine", "fake", "--suites", SUITES]
    return runner.invoke(app, [*args, "--limit", str(limit), "--n-boot", "200", "--out", "out", *extra])


def test_significant_drop_fails_with_junit_and_markdown(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # 40 items: arithmetic 40 -> 30 right (10 forgotten, none learned): McNemar p = 2 * 0.5**10 ~ 0.002
    write_scripted(ws / "base.fake.json", {"arithmetic": 40, "capitals": 40, "countdown": 0}, 40)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 30, "capitals": 40, "countdown": 20}, 40)
    summary = ws / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = gate()
    assert res.exit_code == 1, res.output
    out = ws / "out"
    dec = json.loads((out / "gate.json").read_text())
    assert dec["status"] == "regression"
    checks = {c["suite"]: c for c in dec["checks"]}
    assert checks["arithmetic"]["status"] == "fail" and checks["arithmetic"]["drop"] == pytest.approx(25.0)
    assert checks["capitals"]["status"] == "pass" and checks["countdown"]["drop"] == pytest.approx(-50.0)
    assert dec["overall"]["drop"] == pytest.approx(12.5) and dec["overall"]["status"] == "fail"
    # JUnit: one case per suite + the overall drop, failure elements exactly for regressions
    root = ET.parse(out / "junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == {"arithmetic", "capitals", "countdown", "overall drop"}
    assert {n for n, c in cases.items() if c.find("failure") is not None} == {"arithmetic", "overall drop"}
    assert root.get("failures") == "2" and root.get("errors") == "0"
    md = (out / "gate.md").read_text()
    # the base is perfect on both non-target suites (at ceiling): the overall drop is over all of them, said so
    assert "regression" in md and "| arithmetic (at ceiling: not in the overall drop) | 40 | 100.0 | 75.0 | +25.0" in md
    assert "no non-target suite is informative" in md
    assert summary.read_text().strip() == md.strip()  # appended to the CI step summary
    assert md.strip() in res.stdout  # and printed, for a PR comment
    # the full report and compare-compatible results sit next to it (the leaderboard can pick them up)
    for name in ("report.html", "results.json", "results.parquet", "config.json"):
        assert (out / name).exists(), name
    assert json.loads((out / "results.json").read_text())["base"] == "base"


def test_same_drop_on_too_few_items_passes_with_a_warning(ws: Path) -> None:
    # the same 25-point drop on 4 items is 1 forgotten item: p = 1, not evidence of forgetting
    write_scripted(ws / "base.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 0}, 4)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 3, "capitals": 4, "countdown": 2}, 4)
    res = gate(limit=4)
    assert res.exit_code == 0, res.output
    dec = json.loads((ws / "out/gate.json").read_text())
    assert dec["status"] == "pass"
    arith = next(c for c in dec["checks"] if c["suite"] == "arithmetic")
    assert arith["drop"] == pytest.approx(25.0) and arith["status"] == "warn"
    assert any("arithmetic" in w and "too few items" in w for w in dec["warnings"])
    assert "Warnings" in res.stdout and "too few items" in res.stdout
    root = ET.parse(ws / "out/junit.xml").getroot()
    assert root.get("failures") == "0"


def test_missing_records_or_checkpoint_is_exit_2(ws: Path) -> None:
    write_scripted(ws / "base.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 0}, 4)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 4}, 4)
    res = gate("--cached-only", limit=4)  # nothing in the store yet: never a pass
    assert res.exit_code == 2 and "not in the store" in res.output
    root = ET.parse(ws / "out/junit.xml").getroot()
    assert root.get("errors") == "1" and root.find(".//error") is not None
    assert json.loads((ws / "out/gate.json").read_text())["status"] == "undecided"
    (ws / "sft.fake.json").unlink()
    res = gate(limit=4)
    assert res.exit_code == 2 and "does not exist" in res.output
    res = runner.invoke(app, ["gate", "--base", "base", "--candidate", "ghost", "--engine", "fake"])
    assert res.exit_code == 2 and "ghost: no such file" in res.output
    assert runner.invoke(app, ["gate", "--candidate", "sft"]).exit_code == 2  # usage error: no --base


def test_missing_suite_data_is_exit_2(ws: Path) -> None:
    write_scripted(ws / "base.fake.json", {"arithmetic": 4}, 4)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 4}, 4)
    res = runner.invoke(app, ["gate", "--base", "base", "--candidate", "sft", "--engine", "fake", "--suites", "nope"])
    assert res.exit_code == 2 and "unknown suite 'nope'" in res.output


def _raise(exc: Exception):
    def f(*a: object, **k: object) -> None:
        raise exc

    return f


@pytest.mark.parametrize(
    ("what", "needle"),
    [("judge", "needs model_dir"), ("data", "not fetched"), ("bug", "internal error: RuntimeError: boom")],
)
def test_missing_judge_data_or_a_bug_is_exit_2(
    ws: Path, monkeypatch: pytest.MonkeyPatch, what: str, needle: str
) -> None:
    from harness.data import DataError
    from harness.judges import JudgeError

    write_scripted(ws / "base.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 0}, 4)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 4}, 4)
    suite = get_suite("capitals")
    if what == "judge":
        monkeypatch.setattr(suite, "score", _raise(JudgeError("WildGuardJudge needs model_dir: a local copy")))
    elif what == "data":
        monkeypatch.setattr(suite, "load", _raise(DataError("capitals: data not fetched; run forgetbench data")))
    else:
        monkeypatch.setattr("harness.gate.decide", _raise(RuntimeError("boom")))
    res = gate(limit=4)
    assert res.exit_code == 2 and needle in res.output  # never a pass, never mistaken for a regression
    assert "could not decide" in (ws / "out/gate.md").read_text()


def test_refused_comparison_is_exit_2(ws: Path) -> None:
    # a system prompt changes what the model is shown: the comparator refuses, the gate cannot decide
    write_scripted(ws / "base.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 0}, 4)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 4}, 4)
    (ws / "checkpoints.yaml").write_text(REGISTRY + "    system_prompt: Be brief.\n")
    res = gate(limit=4)
    assert res.exit_code == 2 and "prompt hash differs" in res.output
    assert not (ws / "out/report.html").exists()


def test_config_file_thresholds_and_bad_config(ws: Path) -> None:
    write_scripted(ws / "base.fake.json", {"arithmetic": 40, "capitals": 40, "countdown": 0}, 40)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 30, "capitals": 40, "countdown": 20}, 40)
    # checked into the repo: tolerate up to 30 points on arithmetic and 20 overall -> the drop above passes
    (ws / "forgetbench-gate.yaml").write_text(
        "max_drop: 20\nmax_suite_drop: 5\nalpha: 0.01\nper_suite:\n  arithmetic: 30\n"
    )
    res = gate()
    assert res.exit_code == 0, res.output
    dec = json.loads((ws / "out/gate.json").read_text())
    assert dec["config"]["per_suite"] == {"arithmetic": 30.0} and dec["config"]["alpha"] == 0.01
    assert next(c for c in dec["checks"] if c["suite"] == "arithmetic")["threshold"] == 30.0
    assert gate("--max-drop", "2").exit_code == 1  # a flag overrides the file
    (ws / "forgetbench-gate.yaml").write_text("max_drp: 2\n")  # a typo must not fall back to a default
    res = gate()
    assert res.exit_code == 2 and "unknown key(s) max_drp" in res.output
    (ws / "forgetbench-gate.yaml").write_text("per_suite: {arithmetc: 3}\n")
    res = gate()
    assert res.exit_code == 2 and "unknown suite 'arithmetc'" in res.output


def test_pareto_dominance_uses_stored_peers_only(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_scripted(ws / "base.fake.json", {"arithmetic": 40, "capitals": 40, "countdown": 0}, 40)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 30, "capitals": 40, "countdown": 20}, 40)
    write_scripted(ws / "grpo.fake.json", {"arithmetic": 40, "capitals": 40, "countdown": 30}, 40)
    write_scripted(ws / "iter.fake.json", {"arithmetic": 40, "capitals": 40, "countdown": 40}, 40)
    peers = "".join(
        f"  - id: {i}\n    path: {i}.fake.json\n    method: {m}\n    base: base\n    trained_on: [countdown]\n"
        for i, m in (("grpo", "grpo"), ("iter", "iter-sft"))
    )
    (ws / "checkpoints.yaml").write_text(REGISTRY + peers)
    args = ["gate", "--base", "base", "--engine", "fake", "--suites", SUITES, "--limit", "40", "--n-boot", "100"]
    assert runner.invoke(app, [*args, "--candidate", "grpo", "--out", "g"]).exit_code == 0  # stores grpo
    from harness.engines.fake import FakeEngine

    loads: list[str] = []
    real = FakeEngine.load
    monkeypatch.setattr(FakeEngine, "load", lambda self, p: (loads.append(Path(p).name), real(self, p))[1])
    res = runner.invoke(app, [*args, "--candidate", "sft", "--out", "s"])
    assert res.exit_code == 1, res.output
    assert loads == ["sft.fake.json"]  # base and grpo from the store; iter never evaluated
    dec = json.loads((ws / "s/gate.json").read_text())
    assert dec["dominated_by"] == ["grpo"]
    assert any("skipped iter" in n for n in dec["notes"])
    assert "dominated by `grpo`" in res.stdout


# -- the rule on constructed results, without the CLI -------------------------------------------------------


def _res(ckpt: str, suite: str, scores: list[float]) -> SuiteResult:
    n = len(scores)
    ids, hashes = tuple(f"{suite}-{i}" for i in range(n)), tuple(f"h{i}" for i in range(n))
    return SuiteResult(ckpt, f"fp-{ckpt}", suite, "1", "math", "greedy", "fake@1", ids, hashes, tuple(scores))


def _decide(base: dict[str, list[float]], cand: dict[str, list[float]], trained: tuple[str, ...], **cfg: object):
    results = {
        "base": {s: _res("base", s, v) for s, v in base.items()},
        "c": {s: _res("c", s, v) for s, v in cand.items()},
    }
    comp = compare(results, "base", [("c", "sft", trained)], n_boot=200)
    return comp, decide(comp, GateConfig(**cfg))


def test_decision_rule_on_constructed_results() -> None:
    ones = [1.0] * 100
    # a: 8 points lost on 100 items (8 forgotten, p ~ 0.008); b: untouched; t: the target, improved
    comp, dec = _decide(
        {"a": ones, "b": ones, "t": [0.0] * 100},
        {"a": [0.0] * 8 + [1.0] * 92, "b": ones, "t": [1.0] * 100},
        ("t",),
        max_suite_drop=5.0,
        max_drop=10.0,
    )
    by = {c.suite: c for c in dec.checks}
    assert by["a"].status == "fail" and by["a"].q_value == comp.summaries[0].deltas[0].q_value
    assert dec.overall is not None and dec.overall.drop == pytest.approx(4.0)  # (8 + 0) / 2 non-target suites
    assert dec.overall.status == "pass"  # under max_drop, though significant
    assert dec.overall.drop_ci == pytest.approx(comp.summaries[0].drop_ci)  # same bootstrap as compare
    assert dec.exit_code == 1
    # a raised per-suite threshold lets the same data through
    _, dec = _decide(
        {"a": ones, "b": ones}, {"a": [0.0] * 8 + [1.0] * 92, "b": ones}, (), per_suite={"a": 10.0}, max_drop=5.0
    )
    assert dec.exit_code == 0 and dec.overall is not None and dec.overall.status == "pass"
    # a drop exactly at the threshold passes (strictly greater fails)
    _, dec = _decide({"a": ones}, {"a": [0.0] * 5 + [1.0] * 95}, (), max_suite_drop=5.0, max_drop=5.0)
    assert [c.status for c in dec.checks] == ["pass"] and dec.exit_code == 0


def test_bh_control_across_suites() -> None:
    # one suite with p ~ 0.03 passes alone at alpha 0.05 but not among 10 suites once BH-adjusted
    lost = [0.0] * 6 + [1.0] * 94
    _, alone = _decide({"a": [1.0] * 100}, {"a": lost}, (), max_drop=100.0)
    assert alone.checks[0].p_value < 0.05 and alone.checks[0].status == "fail"
    base = {f"s{i}": [1.0] * 100 for i in range(10)}
    cand = {**base, "s0": lost}
    _, many = _decide(base, cand, (), max_drop=100.0)
    s0 = many.checks[0]
    assert s0.p_value < 0.05 < s0.q_value and s0.status == "warn" and many.exit_code == 0


def test_overall_p_value() -> None:
    rng = np.random.default_rng(0)
    b, c = rng.integers(0, 2, 50).astype(float), rng.integers(0, 2, 50).astype(float)
    assert overall_p_value([(b, c)]) == paired_p_value(b, c)  # one suite: compare's own test
    same = [(b, b), (c, c)]
    assert overall_p_value(same) == 1.0
    worse = [(np.ones(60), np.r_[np.zeros(15), np.ones(45)]), (np.ones(60), np.ones(60))]
    assert overall_p_value(worse) < 0.001
    assert overall_p_value([(x[1], x[0]) for x in worse]) == overall_p_value(worse)  # two-sided


def test_load_config_validation(tmp_path: Path) -> None:
    f = tmp_path / "g.yaml"
    f.write_text("max_drop: 1.5\nsuites: [arithmetic, capitals]\nlimit: 50\nper_suite: {capitals: 4}\n")
    cfg = load_config(f, {"max_drop": None, "alpha": 0.01})
    assert (cfg.max_drop, cfg.alpha, cfg.suites, cfg.limit) == (1.5, 0.01, ("arithmetic", "capitals"), 50)
    assert cfg.threshold("capitals") == 4.0 and cfg.threshold("arithmetic") == 5.0
    for text, needle in [
        ("alpha: 1.5\n", "alpha"),
        ("max_drop: -1\n", "max_drop"),
        ("max_suite_drop: lots\n", "max_suite_drop"),
        ("per_suite: [a]\n", "per_suite"),
        ("limit: 0\n", "limit"),
        ("- a\n", "top level"),
        ("a: [\n", "not valid YAML"),
    ]:
        f.write_text(text)
        with pytest.raises(GateConfigError, match=needle):
            load_config(f)


# -- refusing a gate that cannot mean anything; escaping what the gate did not write --------------------------


@pytest.mark.parametrize("candidate", ["./base.fake.json", "copy.fake.json"], ids=["same-file", "identical-copy"])
def test_same_weights_are_refused_before_any_model_work(
    ws: Path, monkeypatch: pytest.MonkeyPatch, candidate: str
) -> None:
    write_scripted(ws / "base.fake.json", {"arithmetic": 4, "capitals": 4, "countdown": 0}, 4)
    (ws / "copy.fake.json").write_bytes((ws / "base.fake.json").read_bytes())
    from harness.engines.fake import FakeEngine

    monkeypatch.setattr(FakeEngine, "load", lambda *a: pytest.fail("a model was loaded"))
    res = runner.invoke(app, ["gate", "--base", "base", "--candidate", candidate, "--engine", "fake", "--out", "out"])
    assert res.exit_code == 2, res.output
    assert "have the same weights (fingerprint" in res.output
    assert json.loads((ws / "out/gate.json").read_text())["status"] == "undecided"


HOSTILE = "<img src=x onerror=alert(1)> [click](https://evil.example) **bold** | `code` <b>x</b>"


def _html_of(md: str) -> str:
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": True}).enable("table").render(md)  # raw HTML on, as GitHub


def test_markdown_and_junit_escape_registry_strings() -> None:
    from harness.gate import junit_xml, markdown

    ones, t = [1.0] * 20, f"t{HOSTILE}"  # a suite name in a table row, a trained_on entry, an id
    results = {
        "base": {s: _res("base", s, v) for s, v in {"a": ones, t: [0.0] * 20}.items()},
        f"c{HOSTILE}": {s: _res("c", s, v) for s, v in {"a": [0.0] * 5 + [1.0] * 15, t: ones}.items()},
    }
    comp = compare(results, "base", [(f"c{HOSTILE}", "sft", (t, HOSTILE))], n_boot=100)
    dec = decide(comp, GateConfig(), notes=[f"Pareto: skipped {HOSTILE} (missing)"])
    md = markdown(dec)
    html = _html_of(md)
    for tag in ("<img", "<a ", "<b>", "<strong>bold", "<code>code"):
        assert tag not in html, (tag, html)
    assert "**bold**" in html and "[click](https://evil.example)" in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html  # shown as text, not dropped
    rows = [line for line in md.splitlines() if line.startswith("| ")]
    assert len(rows) == 3 and all(line.count("|") - line.count("\\|") == 9 for line in rows)  # no cell split
    root = ET.fromstring(junit_xml(replace_error(dec, "bad \x00\x1b[31m" + HOSTILE)).encode())
    assert HOSTILE in root.find(".//error").get("message")


def replace_error(dec, error: str):
    from dataclasses import replace

    return replace(dec, error=error, exit_code=2)


def test_step_summary_escapes_an_error_message(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    summary = ws / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    res = runner.invoke(app, ["gate", "--base", "base", "--candidate", "<img src=x onerror=alert(1)>.pt"])
    assert res.exit_code == 2
    html = _html_of(summary.read_text())
    assert "<img" not in html and "onerror" in html


@pytest.mark.parametrize("trained_on", ["[countdown]", "[]"], ids=["trained_on", "no-trained_on"])
def test_gate_and_compare_share_one_comparison(ws: Path, trained_on: str) -> None:
    # one pipeline: the gate's results.json is compare's, and its overall drop is the Comparison's own
    write_scripted(ws / "base.fake.json", {"arithmetic": 20, "capitals": 20, "countdown": 0}, 20)
    write_scripted(ws / "sft.fake.json", {"arithmetic": 12, "capitals": 20, "countdown": 10}, 20)
    (ws / "checkpoints.yaml").write_text(REGISTRY.replace("[countdown]", trained_on))
    res = gate(limit=20)
    assert res.exit_code in (0, 1), res.output
    cmd = [
        "compare",
        "base",
        "sft",
        "--engine",
        "fake",
        "--suites",
        SUITES,
        "--limit",
        "20",
        "--n-boot",
        "200",
        "--no-noise-floor",
    ]
    from harness.cli import app as main_app

    assert runner.invoke(main_app, [*cmd, "--out", "c"]).exit_code == 0
    g, c = (json.loads((ws / d / "results.json").read_text()) for d in ("out", "c"))
    assert {k: v for k, v in g.items() if k != "config"} == {k: v for k, v in c.items() if k != "config"}
    nt = c["meta"]["non_target_drop"]["sft"]
    dec = json.loads((ws / "out/gate.json").read_text())
    assert dec["overall"]["drop"] == nt["drop"] and dec["overall"]["p_value"] == nt["p_value"]
    assert nt["suites"] == (["arithmetic", "capitals"] if trained_on != "[]" else SUITES.split(","))
    if trained_on != "[]":
        assert nt["drop"] == pytest.approx(c["summaries"][0]["drop"])
        assert nt["ci"] == pytest.approx(c["summaries"][0]["drop_ci"])
