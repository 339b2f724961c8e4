"""Suite options and the two versions: specs parse or fail in one line; a scorer switch or upgrade rescores
stored completions with zero engine calls; the comparator refuses mixed scorer versions."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.compare import ComparisonError, check_comparable
from harness.suites import SuiteError, all_suites, get_suite, load_items, parse_suites
from harness.types import SuiteResult
from tests.fakes import write_fake

runner = CliRunner()


# -- parsing -------------------------------------------------------------------------------------------
def test_specs_parse_into_suites_with_options() -> None:
    got = parse_suites("mmlu:lenient,gsm8k:minerva,countdown")
    assert [s.spec for s in got] == ["mmlu:lenient", "gsm8k:minerva", "countdown"]
    assert [s.name for s in got] == ["mmlu", "gsm8k", "countdown"]
    assert got[0].mode == "lenient" and got[1].mode == "minerva" and get_suite("mmlu").mode == "paper"
    assert [s.spec for s in parse_suites(["arithmetic", "countdown:lenient"])] == ["arithmetic", "countdown:lenient"]
    assert get_suite("countdown").chosen == ()  # the shared instance is never changed by with_options


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("", "suite spec '': empty suite name"),
        (",", "suite spec ',': empty suite name"),
        ("countdown,", "suite spec 'countdown,': empty suite name"),
        ("nope", "unknown suite 'nope' in spec 'nope'"),
        ("mmlu:strict", "suite spec 'mmlu:strict': unknown option 'strict' for mmlu (options: paper, lenient)"),
        ("mmlu:", "suite spec 'mmlu:': expected name[:option[+option]]"),
        ("mmlu:lenient+", "suite spec 'mmlu:lenient+': expected name[:option[+option]]"),
        ("mmlu:paper+lenient", "options of one group exclude each other"),
        ("arithmetic:lenient", "unknown option 'lenient' for arithmetic (options: none)"),
        ("countdown,countdown:lenient", "countdown is given twice"),
    ],
)
def test_bad_specs_are_one_line_suite_errors(spec: str, needle: str) -> None:
    with pytest.raises(SuiteError) as e:
        parse_suites(spec)
    assert needle in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("spec", ["", ",", "mmlu:strict"])
def test_bad_specs_on_the_command_line_exit_2(spec: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "a.fake.json", {"arithmetic": 1.0}, 2)
    res = runner.invoke(app, ["eval", "a.fake.json", "--engine", "fake", "--suites", spec])
    assert res.exit_code == 2 and "suite spec" in res.output
    assert not (tmp_path / "reports").exists()  # nothing half-written


# -- versions ------------------------------------------------------------------------------------------
def test_options_go_into_their_own_version() -> None:
    paper, lenient = get_suite("countdown"), get_suite("countdown:lenient")
    assert paper.data_version == lenient.data_version == "1"
    assert (paper.scorer_version, lenient.scorer_version) == ("2", "2+lenient")
    assert get_suite("countdown:paper").scorer_version == paper.scorer_version  # the default adds nothing
    assert get_suite("gsm8k:minerva").scorer_version == "1+minerva"


def test_scorer_parts_never_reach_the_data_version() -> None:
    for name, suite in all_suites().items():
        for part in suite.scorer_parts():
            assert part not in suite.data_version, (name, part)


def test_a_checker_upgrade_changes_only_the_scorer_version(monkeypatch: pytest.MonkeyPatch) -> None:
    import suites._math as math_base

    gsm = get_suite("gsm8k")
    before = (gsm.data_version, gsm.scorer_version)
    monkeypatch.setattr(math_base, "checker_version", lambda: "math-verify9.9.9")
    assert gsm.data_version == before[0] and gsm.scorer_version == "1+math-verify9.9.9" != before[1]


def _result(scorer_version: str, ckpt: str = "a") -> SuiteResult:
    return SuiteResult(
        ckpt, "fp", "countdown", "1", "reasoning", "d", "fake@1", ("x",), ("h",), (1.0,), scorer_version=scorer_version
    )


def test_comparator_refuses_mixed_scorer_versions() -> None:
    assert check_comparable(_result("2"), _result("2", "b")) == []
    with pytest.raises(ComparisonError, match=r"suite countdown: b vs a: scorer version differs \(2\+lenient vs 2\)"):
        check_comparable(_result("2"), _result("2+lenient", "b"))


# -- rescoring from the store ------------------------------------------------------------------------------
@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two fake checkpoints; the base writes its Countdown answers with LaTeX operators (\\times)."""
    monkeypatch.chdir(tmp_path)
    cd = get_suite("countdown")
    latex = {}
    for it in load_items(cd, 20):
        expr = it.data["solution"].replace("*", " \\times ")
        latex[cd.prompt(it)[-1]["content"]] = f"\\boxed{{{expr}}}"
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5}, 20, seed=1, extra=latex)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.4, "countdown": 0.9}, 20, seed=2)
    (tmp_path / "checkpoints.yaml").write_text(
        "default_suites: [arithmetic, 'countdown:lenient']\ncheckpoints:\n"
        "  - id: base\n    path: base.fake.json\n    method: base\n"
        "  - id: sft\n    path: sft.fake.json\n    method: sft\n    base: base\n    trained_on: [countdown]\n"
    )
    return tmp_path


def _compare(out: str, *extra: str) -> object:
    args = ["compare", "base", "sft", "--engine", "fake", "--limit", "20", "--out", out, "--n-boot", "50", *extra]
    return runner.invoke(app, args)


def _no_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.engines import fake

    for method in ("load", "generate", "logprobs"):
        monkeypatch.setattr(fake.FakeEngine, method, lambda *a, **k: pytest.fail("rescoring must not call the engine"))


def test_a_scorer_switch_rescores_stored_completions_with_zero_engine_calls(
    ws: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    res = _compare("paper", "--suites", "arithmetic,countdown")
    assert res.exit_code == 0, res.output
    _no_engine(monkeypatch)
    res = _compare("lenient", "--suites", "arithmetic,countdown:lenient", "--cached-only")
    assert res.exit_code == 0, res.output
    paper = json.loads((ws / "paper" / "results.json").read_text())["scores"]["base"]["countdown"]
    lenient = json.loads((ws / "lenient" / "results.json").read_text())["scores"]["base"]["countdown"]
    assert paper < lenient  # the same stored \times completions, scored 0 by the paper's checker, 1 leniently
    config = json.loads((ws / "lenient" / "config.json").read_text())
    assert config["suites"] == ["arithmetic", "countdown:lenient"]
    assert config["versions"]["countdown"] == {"data": "1", "scorer": "2+lenient"}
    assert runner.invoke(app, ["report", "lenient"]).exit_code == 0  # re-resolves the recorded options


def test_a_scorer_upgrade_never_regenerates(ws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert _compare("before", "--suites", "arithmetic,countdown").exit_code == 0
    _no_engine(monkeypatch)
    from suites.countdown import Countdown

    monkeypatch.setattr(Countdown, "scorer", "3")  # as after a checker release
    res = _compare("after", "--suites", "arithmetic,countdown", "--cached-only")
    assert res.exit_code == 0, res.output
    assert json.loads((ws / "after" / "config.json").read_text())["versions"]["countdown"]["scorer"] == "3"


def test_options_work_in_the_registry_default_suites(ws: Path) -> None:
    res = _compare("default")
    assert res.exit_code == 0, res.output
    assert json.loads((ws / "default" / "config.json").read_text())["suites"] == ["arithmetic", "countdown:lenient"]


def test_options_work_in_the_gate_config_file(ws: Path) -> None:
    (ws / "gate.yaml").write_text("max_drop: 100\nsuites: [arithmetic, 'countdown:lenient']\nlimit: 20\n")
    args = ["gate", "--base", "base", "--candidate", "sft", "--engine", "fake", "--config", "gate.yaml"]
    res = runner.invoke(app, [*args, "--out", "g", "--n-boot", "50"])
    assert res.exit_code == 0, res.output
    bad = runner.invoke(app, [*args, "--out", "g2", "--suites", "countdown:strict"])
    assert bad.exit_code == 2 and "unknown option 'strict'" in bad.output


def test_suite_result_defaults_keep_old_constructors_working() -> None:
    r = replace(_result("x"), scorer_version="")
    assert r.scorer_version == "" and r.mean == 1.0


def _scorer_options() -> list[tuple[str, str]]:
    return [
        (name, o.name)
        for name, s in sorted(all_suites().items())
        for o in s.options
        if o.part == "scorer" and not o.default and o.stamp  # stamp False: a model judge (test_judges)
    ]


@pytest.mark.parametrize(("name", "option"), _scorer_options())
def test_every_scorer_option_keeps_the_contract_and_what_the_model_sees(name: str, option: str) -> None:
    plain, opted = get_suite(name), get_suite(f"{name}:{option}")
    try:
        items = load_items(plain, 12)
    except SuiteError as e:
        if plain.needs_hub:
            pytest.skip(f"{name}: {e}")
        raise
    assert opted.data_version == plain.data_version and opted.scorer_version != plain.scorer_version
    for it in items:
        assert opted.prompt_hash(it) == plain.prompt_hash(it)  # a scorer option never changes the prompt
        if plain.has_reference:
            assert opted.score(it, opted.reference(it)) == 1.0, (name, option, it.id)
            assert opted.score(it, opted.wrong(it)) == 0.0, (name, option, it.id)
