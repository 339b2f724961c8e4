"""harness/logs: real lm-eval and Inspect logs (tests/data/logs, made by scripts/make_log_fixtures.sh) read as
SuiteResults and compared, gated, re-rendered and refused like our own runs; no model, no torch."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.logs import LogsError, load, read_logs
from harness.logs.synth import write_lmeval

DATA = Path(__file__).parent / "data" / "logs"
LM, INSPECT = DATA / "lmeval", DATA / "inspect"
runner = CliRunner()


def _samples(run: str, task: str) -> list[dict]:
    path = next((LM / run).glob(f"samples_{task}_*.jsonl"))
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_lmeval_scores_are_the_tools_own() -> None:
    tasks = read_logs(LM / "base")
    assert set(tasks) == {"lmeval:tinyqa", "lmeval:tinygen"}
    qa = tasks["lmeval:tinyqa"]
    assert qa.metric == "acc" and len(qa.item_ids) == 12 and qa.tool == "lm-eval@0.4.13"
    aggregate = json.loads(next((LM / "base").glob("results_*.json")).read_text())["results"]["tinyqa"]["acc,none"]
    assert qa.result("base").mean == pytest.approx(aggregate)  # lm-eval's own mean of the same items
    assert {r["doc_id"]: r["acc"] for r in _samples("base", "tinyqa")} == {
        int(i): s for i, s in zip(qa.item_ids, qa.scores, strict=True)
    }
    assert tasks["lmeval:tinygen"].metric == "exact_match" and tasks["lmeval:tinygen"].generation["max_gen_toks"] == 8


def test_inspect_scores_both_binary_and_continuous() -> None:
    tasks = read_logs(INSPECT / "base")
    assert set(tasks) == {"inspect:arith_match", "inspect:arith_f1"}
    match, f1 = tasks["inspect:arith_match"], tasks["inspect:arith_f1"]
    assert match.item_ids == ("s0", "s1", "s2", "s3", "s4", "s5")
    assert match.scores == (1.0, 1.0, 1.0, 1.0, 0.0, 0.0)  # C/I read as 1/0; the script answers s0-s3 right
    assert f1.scores == (1.0, 1.0, 1.0, 1.0, 0.5, 0.5)  # "A or A+1" against A: token F1 0.5
    assert match.generation == {"temperature": 0.0, "max_tokens": 16}
    assert match.prompts[0] == "What is 2 + 3?" and match.references[0] == "5"


def test_compare_from_logs_pairs_by_doc_id(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    res = runner.invoke(
        app,
        ["compare", "--from-logs", f"base={LM / 'base'}", f"cand={LM / 'cand'}", "--trained-on", "lmeval:tinygen",
         "--out", str(out), "--n-boot", "200"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert data["suites"] == ["lmeval:tinygen", "lmeval:tinyqa"]
    base = {r["doc_id"]: r["acc"] for r in _samples("base", "tinyqa")}
    cand = {r["doc_id"]: r["acc"] for r in _samples("cand", "tinyqa")}
    lost = sum(base[d] == 1 and cand[d] == 0 for d in base)
    gained = sum(base[d] == 0 and cand[d] == 1 for d in base)
    (summary,) = data["summaries"]
    (qa,) = [d for d in summary["deltas"] if d["suite"] == "lmeval:tinyqa"]
    assert (qa["forgotten"], qa["learned"], qa["is_target"]) == (lost, gained, False)
    assert qa["n"] == 12 and summary["drop"] == pytest.approx((sum(base.values()) - sum(cand.values())) / 12 * 100)
    config = json.loads((out / "config.json").read_text())
    assert config["from_logs"]["trained_on"] == "lmeval:tinygen"
    assert config["tools"]["lmeval:tinyqa"] == "lm-eval@0.4.13"
    assert "lm-eval" in (out / "report.html").read_text()  # the engine line names the tool


def test_compare_inspect_and_report_rerender(tmp_path: Path) -> None:
    out = tmp_path / "cmp"
    args = ["compare", "--from-logs", f"base={INSPECT / 'base'}", f"cand={INSPECT / 'cand'}", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    first = json.loads((out / "results.json").read_text())
    deltas = {d["suite"]: d for d in first["summaries"][0]["deltas"]}
    assert deltas["inspect:arith_match"]["forgotten"] == 2 and deltas["inspect:arith_match"]["learned"] == 1
    assert deltas["inspect:arith_f1"]["delta"] == pytest.approx((4.0 - 4.5) / 6 * 100)  # continuous: 4.5 -> 4.0
    (out / "report.html").unlink()
    res = runner.invoke(app, ["report", str(out)])
    assert res.exit_code == 0, res.output
    assert (out / "report.html").exists()
    assert json.loads((out / "results.json").read_text())["summaries"] == first["summaries"]


@pytest.mark.parametrize(
    ("cand", "says"),
    [
        (LM / "cand-fewshot", "prompt settings differ (n-shot 1 vs 0)"),
        (INSPECT / "cand-temp", "generation settings differ (temperature 0.7 vs 0.0)"),
        (LM / "cand-limit", "item set differs (6 missing, 0 extra"),  # missing items: refused, never dropped
        (INSPECT / "cand-limit", "item set differs (2 missing, 0 extra"),
    ],
)
def test_mismatched_logs_are_refused(tmp_path: Path, cand: Path, says: str) -> None:
    base = cand.parent / "base"
    res = runner.invoke(app, ["compare", "--from-logs", f"b={base}", f"c={cand}", "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert says in res.output and len(res.output.strip().splitlines()) <= 3  # one line, wrapped at most
    assert not (tmp_path / "o").exists()


def test_corrupt_logs_one_line_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    shutil.copytree(LM / "cand", bad)
    samples = next(bad.glob("samples_tinyqa_*.jsonl"))
    samples.write_text(samples.read_text()[:-200])  # a run killed mid-write: the last line is cut
    eval_file = tmp_path / "bad.eval"
    eval_file.write_bytes(next((INSPECT / "cand").glob("*match*.eval")).read_bytes()[:3000])
    garbage = tmp_path / "g" / "results_x.json"
    garbage.parent.mkdir()
    garbage.write_text("{not json")
    for path, says in ((bad, "is not JSON"), (eval_file, "not a readable Inspect .eval log"), (garbage, "not JSON")):
        res = runner.invoke(app, ["compare", "--from-logs", f"base={LM / 'base'}", f"c={path}", "--out", "o"])
        assert res.exit_code == 2, res.output
        assert says in res.output and "Traceback" not in res.output
    with pytest.raises(LogsError, match="no lm-eval results"):
        read_logs(DATA / "VERSIONS")


def test_registry_logs_field_and_trained_on(tmp_path: Path) -> None:
    reg = tmp_path / "checkpoints.yaml"
    reg.write_text(
        f"checkpoints:\n  - id: b\n    logs: {LM / 'base'}\n    method: base\n"
        f"  - id: c\n    logs: {LM / 'cand'}\n    method: sft\n    base: b\n    trained_on: [lmeval:tinygen]\n"
    )
    logged = load(["b", "c"], __import__("harness.checkpoints.registry", fromlist=["Registry"]).Registry.load(reg))
    assert [(c.id, c.method, c.trained_on) for c in logged.checkpoints] == [
        ("b", "base", ()),
        ("c", "sft", ("lmeval:tinygen",)),
    ]
    res = runner.invoke(app, ["compare", "--from-logs", "b", "c", "--registry", str(reg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "o" / "results.json").read_text())["summaries"][0]["gain"] is not None
    with pytest.raises(LogsError, match="--trained-on: 'countdown' is not a suite of the logs"):
        load([f"b={LM / 'base'}", f"c={LM / 'cand'}"], trained_on="countdown")
    reg.write_text(reg.read_text().replace("[lmeval:tinygen]", "[lmeval:tinygne]"))
    res = runner.invoke(app, ["compare", "--from-logs", "b", "c", "--registry", str(reg), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "c: trained_on 'lmeval:tinygne' is not a suite of the logs" in res.output
    res = runner.invoke(app, ["compare", "b", "c", "--registry", str(reg), "--engine", "fake", "--out", "o2"])
    assert res.exit_code == 2 and "has only logs" in res.output  # no weights: not evaluated by mistake


def test_gate_from_logs_fails_a_planted_regression(tmp_path: Path) -> None:
    n = 300
    write_lmeval(tmp_path / "base", [1.0] * 200 + [0.0] * 100)
    write_lmeval(tmp_path / "cand", [1.0] * 150 + [0.0] * 50 + [0.0] * 90 + [1.0] * 10, model="cand")  # -40 pts
    write_lmeval(tmp_path / "same", [1.0] * 199 + [0.0] * 101, model="same")  # -1 item: no regression
    assert len(read_logs(tmp_path / "base")["lmeval:tinyqa"].item_ids) == n
    gate = ["gate", "--from-logs", "--base", f"base={tmp_path / 'base'}", "--n-boot", "200"]
    res = runner.invoke(app, [*gate, "--candidate", f"cand={tmp_path / 'cand'}", "--out", str(tmp_path / "g1")])
    assert res.exit_code == 1, res.output
    verdict = json.loads((tmp_path / "g1" / "gate.json").read_text())
    assert verdict["exit_code"] == 1 and (tmp_path / "g1" / "junit.xml").exists()
    res = runner.invoke(app, [*gate, "--candidate", f"same={tmp_path / 'same'}", "--out", str(tmp_path / "g2")])
    assert res.exit_code == 0, res.output
    res = runner.invoke(app, [*gate, "--candidate", f"c={LM / 'cand-fewshot'}", "--out", str(tmp_path / "g3")])
    assert res.exit_code == 2 and "n-shot" in (tmp_path / "g3" / "gate.md").read_text()
    write_lmeval(tmp_path / "rerun", [0.0] * 300)  # model "synthetic" again: the base's model, logged twice
    res = runner.invoke(app, [*gate, "--candidate", f"again={tmp_path / 'rerun'}", "--out", str(tmp_path / "g4")])
    assert res.exit_code == 2 and "logged the same model" in res.output


def test_leaderboard_picks_up_a_logs_comparison(tmp_path: Path) -> None:
    out = tmp_path / "runs" / "cmp"
    args = ["compare", "--from-logs", f"base={INSPECT / 'base'}", f"cand={INSPECT / 'cand'}", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    res = runner.invoke(app, ["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    assert "inspect:arith_match" in (tmp_path / "site" / "index.html").read_text()


BLOCKED = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'vllm', 'inspect_ai', 'lm_eval'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, _Block())
from harness.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    assert not any(m.split('.')[0] == 'torch' for m in sys.modules)
    raise
"""


def test_compare_from_logs_never_imports_torch(tmp_path: Path) -> None:
    args = ["compare", "--from-logs", f"base={LM / 'base'}", f"cand={INSPECT / 'cand'}", "--out", str(tmp_path / "o")]
    res = subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True)
    assert res.returncode == 2 and "lmeval:tinygen: in the base's logs" in res.stderr  # mixed tools: refused
    for logs in (LM, INSPECT):
        args = [
            "compare",
            "--from-logs",
            f"base={logs / 'base'}",
            f"cand={logs / 'cand'}",
            "--out",
            str(tmp_path / logs.name),
        ]
        res = subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True)
        assert res.returncode == 0, res.stderr[-2000:]


def test_inspect_values_read_as_inspect_does() -> None:
    from harness.logs.inspect import to_float

    assert [to_float(v, "x") for v in ("C", "I", "P", "N", True, 0.25, "yes", "0.5")] == [1, 0, 0.5, 0, 1, 0.25, 1, 0.5]
    with pytest.raises(LogsError, match="not a number"):
        to_float({"a": 1}, "x")


def _deflated_copy(src: Path, dst: Path, header_edit=None) -> Path:
    """The same log re-zipped with deflate (what older Inspect wrote), optionally with header.json edited."""
    import zipfile

    from harness.logs.inspect import _member

    with zipfile.ZipFile(src) as z, zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        for name in z.namelist():
            doc = _member(z, src, name)
            if name == "header.json" and header_edit:
                header_edit(doc)
            out.writestr(name, json.dumps(doc))
    return dst


def test_deflated_and_unfinished_inspect_logs(tmp_path: Path) -> None:
    src = next((INSPECT / "base").glob("*arith-f1*.eval"))
    plain = read_logs(_deflated_copy(src, tmp_path / "old.eval"))["inspect:arith_f1"]
    assert plain.scores == read_logs(src)["inspect:arith_f1"].scores
    cut = _deflated_copy(src, tmp_path / "cut.eval", lambda h: h.update(status="started"))
    with pytest.raises(LogsError, match="status is 'started', not 'success'"):
        read_logs(cut)


def test_suites_flag_keeps_some_tasks(tmp_path: Path) -> None:
    specs = [f"base={LM / 'base'}", f"cand={LM / 'cand'}"]
    assert list(load(specs, suites="lmeval:tinyqa").results["cand"]) == ["lmeval:tinyqa"]
    res = runner.invoke(app, ["compare", "--from-logs", *specs, "--suites", "lmeval:nope", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "'lmeval:nope' is not in the base's logs" in res.output
    res = runner.invoke(app, ["compare", "--from-logs", *specs, "--limit", "5", "--out", str(tmp_path)])
    assert res.exit_code == 2 and "the logs fix the items" in res.output


def test_inspect_epochs_give_the_noise_floor(tmp_path: Path) -> None:
    tasks = read_logs(INSPECT / "base-epochs")
    match = tasks["inspect:arith_match"]
    assert match.repeats == ((1, 1, 1, 1, 0, 0), (1, 1, 1, 1, 0, 1))  # s5 right on the second try only
    assert match.scores == (1, 1, 1, 1, 0, 0.5)  # Inspect's mean reducer over the two epochs
    out = tmp_path / "cmp"
    args = ["compare", "--from-logs", f"b={INSPECT / 'base-epochs'}", f"c={INSPECT / 'cand-epochs'}", "--out", str(out)]
    assert runner.invoke(app, args).exit_code == 0
    noise = {f["suite"]: f for f in json.loads((out / "results.json").read_text())["noise"]}
    assert noise["inspect:arith_match"]["flips"] == 1
    assert noise["inspect:arith_match"]["delta"] == pytest.approx(100 / 6)
    assert "epoch 1 -&gt; 2" in (out / "report.html").read_text()


def test_results_file_given_by_name(tmp_path: Path) -> None:
    """`lm_eval --output_path run.json` writes run_<date id>.json beside samples_<task>_<date id>.jsonl."""
    res = next((LM / "base").glob("results_*.json"))
    stamp = res.name.removeprefix("results_").removesuffix(".json")
    for f in (LM / "base").iterdir():
        shutil.copy(f, tmp_path / f.name.replace(f"results_{stamp}", f"run_{stamp}"))
    tasks = read_logs(tmp_path / f"run_{stamp}.json")
    assert tasks["lmeval:tinyqa"].scores == read_logs(LM / "base")["lmeval:tinyqa"].scores


def test_inspect_json_format_reads_as_eval(tmp_path: Path) -> None:
    as_json, as_eval = read_logs(INSPECT / "base-json"), read_logs(INSPECT / "base")
    assert set(as_json) == set(as_eval) == {"inspect:arith_match", "inspect:arith_f1"}
    for suite, task in as_json.items():
        assert (task.item_ids, task.scores, task.prompt_hashes) == (
            as_eval[suite].item_ids,
            as_eval[suite].scores,
            as_eval[suite].prompt_hashes,
        )
    specs = [f"base={INSPECT / 'base-json'}", f"cand={INSPECT / 'cand'}"]  # json against eval: same items, paired
    assert load(specs).results["cand"]["inspect:arith_match"].scores == (1, 1, 0, 0, 1, 0)
