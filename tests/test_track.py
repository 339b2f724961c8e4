"""`forgetbench track` on the fake engine: run discovery and step order, the timeline's numbers (a planted
gain, drop, forgetting and recovery are found; a point's CIs equal compare's), --max-drop's line, one unit of
outputs, and a fully cached re-track that never starts an engine. Bad run dirs are one-line errors (exit 2)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.runs import RunError, discover
from harness.suites import get_suite, load_items

runner = CliRunner()
LIMIT = 20
# items (by index) each checkpoint gets right; arithmetic is the target, capitals the non-target
PLAN = {
    "base": {"arithmetic": range(0, 5), "capitals": range(0, 16)},
    100: {"arithmetic": range(0, 10), "capitals": range(0, 16)},
    200: {"arithmetic": range(0, 15), "capitals": range(0, 8)},  # capitals 8..15 forgotten at 200
    300: {"arithmetic": range(0, 20), "capitals": range(0, 12)},  # 8..11 recovered at 300, 12..15 never
}


def write_plan(path: Path, right: dict[str, range]) -> Path:
    responses = {}
    for name, idx in right.items():
        s = get_suite(name)
        for k, it in enumerate(load_items(s, LIMIT)):
            responses[s.prompt(it)[-1]["content"]] = s.reference(it) if k in idx else s.wrong(it)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"responses": responses}))
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    write_plan(tmp_path / "base.fake.json", PLAN["base"])
    for step in (300, 100, 200):  # written out of order: track orders by step
        write_plan(tmp_path / "sft" / f"step-{step}.fake.json", PLAN[step])
    return tmp_path / "sft"


def _track(tmp_path: Path, *args: str):
    return runner.invoke(
        app,
        ["track", *args, "--base", str(tmp_path / "base.fake.json"), "--engine", "fake"]
        + ["--suites", "arithmetic,capitals", "--limit", str(LIMIT), "--trained-on", "arithmetic"]
        + ["--runs-dir", str(tmp_path / "store"), "--registry", str(tmp_path / "none.yaml"), "--n-boot", "400"],
    )


def test_timeline_finds_the_planted_gain_drop_and_turnover(tmp_path: Path, run_dir: Path) -> None:
    out = tmp_path / "track"
    res = _track(tmp_path, str(run_dir), "--out", str(out), "--max-drop", "2")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "results.json", "track.html"]
    tl = json.loads((out / "results.json").read_text())["timeline"]
    pts = tl["points"]
    assert [p["step"] for p in pts] == [100, 200, 300]
    assert [round(p["gain"], 6) for p in pts] == [25.0, 50.0, 75.0]
    assert [round(p["drop"], 6) for p in pts] == [0.0, 40.0, 20.0]
    assert pts[1]["drop_ci"][0] > 2 and pts[2]["drop_ci"][0] > 2 and pts[0]["drop_ci"] == [0.0, 0.0]
    # the best checkpoint under a 2-point drop budget is step 100, printed as one line on stdout
    line = f"max-drop 2: {run_dir / 'step-100.fake.json'} step 100 gain +25.0 drop +0.0 [+0.0, +0.0]"
    assert line in res.stdout.splitlines()
    by_step = {r["step"]: r for r in tl["turnover"]["sft"]["by_step"]}
    assert by_step[200] == {"step": 200, "forgotten": 8, "recovered_later": 4, "never_recovered": 4, "learned": 5}
    assert by_step[100]["learned"] == 5 and by_step[300]["learned"] == 5 and by_step[300]["forgotten"] == 0
    recovered = {it["item"]: it["recovered"] for it in tl["turnover"]["sft"]["items"] if it["kind"] == "forgotten"}
    capitals = [it.id for it in load_items(get_suite("capitals"), LIMIT)]
    assert {recovered[capitals[k]] for k in range(8, 12)} == {300}
    assert {recovered[capitals[k]] for k in range(12, 16)} == {None}
    nf = tl["noise_floor"]["sft"]["suites"]["capitals"]
    assert (round(nf["range"], 6), round(nf["adjacent"], 6)) == (40.0, 30.0)
    html = (out / "track.html").read_text()
    assert "Plotly.newPlot" in html and "<script src" not in html and "max-drop 2:" in html


def test_points_have_compares_numbers(tmp_path: Path, run_dir: Path) -> None:
    """The same pairing and bootstrap indices as compare: a point's gain/drop CIs equal compare's."""
    from harness.checkpoints.registry import Registry
    from harness.compare import compare
    from harness.evaluate import EvalConfig, evaluate
    from harness.timeline import Point, analyse

    reg = Registry([], (), None)
    cfg = EvalConfig(engine="fake", limit=LIMIT, runs_dir=tmp_path / "store")
    base = reg.resolve(str(tmp_path / "base.fake.json"))
    from dataclasses import replace

    ck = replace(reg.resolve(str(run_dir / "step-200.fake.json")), trained_on=("arithmetic",))
    suites = [get_suite("arithmetic"), get_suite("capitals")]
    results = evaluate(reg, [base, ck], suites, cfg)
    comp = compare(results, base.id, [(ck.id, "sft", ("arithmetic",))], n_boot=300)
    tl = analyse(results, base.id, [Point("sft", 200, ck.id, "p", ("arithmetic",))], n_boot=300)
    (s,) = comp.summaries
    p = tl["points"][0]
    assert (p["gain"], tuple(p["gain_ci"]), p["drop"], tuple(p["drop_ci"])) == (s.gain, s.gain_ci, s.drop, s.drop_ci)


def test_cached_retrack_starts_no_engine(tmp_path: Path, run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _track(tmp_path, str(run_dir), "--out", str(tmp_path / "a")).exit_code == 0
    import harness.engines as engines

    def refuse(*a, **k):
        raise AssertionError("a fully cached track must not start an engine")

    monkeypatch.setattr(engines, "make_engine", refuse)
    res = _track(tmp_path, str(run_dir), "--out", str(tmp_path / "a"), "--cached-only")
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "a" / "results.json").read_text())["timeline"]["points"][2]["step"] == 300


def _hf_dir(path: Path, state: dict | None = None, hidden: int = 64, weights: bool = True) -> Path:
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"], "hidden_size": hidden}))
    if weights:
        (path / "model.safetensors").write_bytes(b"x")
    if state is not None:
        (path / "trainer_state.json").write_text(json.dumps(state))
    return path


def test_discovery_orders_by_trainer_state_and_reads_every_layout(tmp_path: Path) -> None:
    run = tmp_path / "trl"
    _hf_dir(run / "checkpoint-a", {"global_step": 20, "max_steps": 20})
    _hf_dir(run / "checkpoint-b", {"global_step": 10, "max_steps": 20})
    _hf_dir(run / "global_step_5" / "actor" / "huggingface")
    _hf_dir(run / "step_7")
    sharded = _hf_dir(run / "step_8", weights=False)
    (sharded / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"w": "model-00001.safetensors"}}))
    found = discover(str(run))
    assert [(c.step, c.path.relative_to(run).as_posix(), c.final) for c in found.checkpoints] == [
        (5, "global_step_5/actor/huggingface", False),
        (7, "step_7", False),
        (10, "checkpoint-b", False),
        (20, "checkpoint-a", True),
    ]
    assert any("shard model-00001.safetensors" in s for s in found.skipped)  # never read while shards are missing


def test_our_trainers_hf_copy_is_not_a_second_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "ours"
    run.mkdir()
    (run / "config.json").write_text("{}")  # the trainer's own config, not a model
    (run / "step-2.pt").write_bytes(b"\x80x")
    (run / "step-4.pt.tmp").write_bytes(b"\x80x")  # still being written
    _hf_dir(run / "step-2")
    found = discover(str(run))
    assert [(c.step, c.path.name) for c in found.checkpoints] == [(2, "step-2.pt")]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ("empty", "no checkpoints found"),
        ("repeat", "step 3 is also"),
        ("mixed", "architecture differs"),
        ("nostep", "cannot read its step"),
        ("badstate", "no readable global_step"),
    ],
)
def test_bad_runs_are_one_line_errors(tmp_path: Path, layout: str, message: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    spec = str(run)
    if layout == "repeat":
        _hf_dir(run / "checkpoint-3")
        _hf_dir(run / "step_3")
    elif layout == "mixed":
        _hf_dir(run / "checkpoint-1")
        _hf_dir(run / "checkpoint-2", hidden=32)
    elif layout == "nostep":
        _hf_dir(run / "final-model")
        spec = str(run / "*")
    elif layout == "badstate":
        _hf_dir(run / "checkpoint-1").joinpath("trainer_state.json").write_text("{")
    with pytest.raises(RunError, match=message):
        discover(spec)
    (tmp_path / "base.fake.json").write_text("{}")
    res = _track(tmp_path, spec, "--out", str(tmp_path / "o"))
    assert res.exit_code == 2 and message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "o").exists()


def test_track_runs_without_torch(tmp_path: Path, run_dir: Path) -> None:
    """Discovery, evaluation on the fake engine, the timeline and its report never import torch."""
    import subprocess
    import sys

    from tests.test_pure_stages import BLOCK

    argv = ["track", str(run_dir), "--base", str(tmp_path / "base.fake.json"), "--engine", "fake", "--suites"]
    argv += ["arithmetic,capitals", "--limit", str(LIMIT), "--runs-dir", str(tmp_path / "store"), "--registry"]
    argv += [str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o"), "--max-drop", "1"]
    mods = ["harness.runs", "harness.timeline", "harness.track_report", "harness.track", "harness.integrations.probe"]
    code = f"MODULES = {mods!r}\n" + BLOCK + f"import sys; sys.argv = ['forgetbench', *{argv!r}]\n"
    code += "from harness.cli import app\napp()\n"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "max-drop 1:" in res.stdout


def test_report_escapes_run_names(tmp_path: Path) -> None:
    write_plan(tmp_path / "base.fake.json", PLAN["base"])
    run = tmp_path / "<script>alert(1)</script>"
    write_plan(run / "step-1.fake.json", PLAN[100])
    res = _track(tmp_path, str(run), "--out", str(tmp_path / "o"))
    assert res.exit_code == 0, res.output
    html = (tmp_path / "o" / "track.html").read_text()
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)" in html


def test_drop_is_over_the_informative_suites_as_compares(tmp_path: Path) -> None:
    """A non-target suite the base scores 0 on (not above chance) leaves the headline drop, which then equals
    compare's; drop_all keeps every non-target suite, and the report names the suite left out."""
    from harness.checkpoints.registry import Registry
    from harness.compare import compare
    from harness.evaluate import EvalConfig, evaluate
    from harness.pipeline import chance_for

    write_plan(tmp_path / "base.fake.json", {"arithmetic": range(0, 5), "capitals": range(0, 16), "elements": range(0)})
    # step 10: capitals loses 8 items (drop 40), elements gains 10 (a negative drop of -50 that is not forgetting)
    step10 = {"arithmetic": range(0, 10), "capitals": range(0, 8), "elements": range(0, 10)}
    write_plan(tmp_path / "run" / "step-10.fake.json", step10)
    out = tmp_path / "track"
    res = runner.invoke(
        app,
        ["track", str(tmp_path / "run"), "--base", str(tmp_path / "base.fake.json"), "--engine", "fake"]
        + ["--suites", "arithmetic,capitals,elements", "--limit", str(LIMIT), "--trained-on", "arithmetic"]
        + ["--runs-dir", str(tmp_path / "store"), "--registry", str(tmp_path / "none.yaml"), "--n-boot", "300"]
        + ["--out", str(out)],
    )
    assert res.exit_code == 0, res.output
    tl = json.loads((out / "results.json").read_text())["timeline"]
    (p,) = tl["points"]
    assert p["drop_suites"] == ["capitals"] and round(p["drop"], 6) == 40.0
    assert round(p["drop_all"], 6) == -5.0 and p["drop_all_ci"][0] < p["drop_all"] < p["drop_all_ci"][1]
    assert list(tl["left_out"]) == ["elements"] and "not above chance" in tl["left_out"]["elements"]
    assert "left out of the drop: elements" in (out / "track.html").read_text()

    reg = Registry([], (), None)
    cfg = EvalConfig(engine="fake", limit=LIMIT, runs_dir=tmp_path / "store")
    base, ck = reg.resolve(str(tmp_path / "base.fake.json")), reg.resolve(str(tmp_path / "run" / "step-10.fake.json"))
    suites = [get_suite(s) for s in ("arithmetic", "capitals", "elements")]
    chance, ceiling = chance_for(suites, cfg)
    results = evaluate(reg, [base, ck], suites, cfg, cached_only=True)
    comp = compare(results, base.id, [(ck.id, "sft", ("arithmetic",))], n_boot=300, chance=chance, ceiling=ceiling)
    (s,) = comp.summaries
    assert (s.drop, tuple(s.drop_ci)) == (p["drop"], tuple(p["drop_ci"]))
