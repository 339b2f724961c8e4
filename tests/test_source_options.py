"""Options, not environment variables, change what a suite measures: each data source is a suite option
(`hub`, `data=PATH`) in the data version (a file by its content hash), the WildGuard backend an option in
the scorer version, lm-eval's include folder an option in both; every retired variable is a one-line
error naming its option and is read nowhere; bad options are one-line errors listing the valid ones.

    python -m pytest tests/test_source_options.py -q
"""

from __future__ import annotations

import hashlib
import json
import sys
import types
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.suites import RETIRED_ENV, SuiteError, all_suites, get_suite
from tests.fakes import write_fake

# Every suite with a data-source switch, its default source's data-version part and the variable it replaces.
SOURCES = {
    "mmlu": ("olmo-eval0.9.0", "FORGETBENCH_MMLU"),
    "gsm8k": ("olmo-eval0.9.0", "FORGETBENCH_GSM8K"),
    "math500": ("olmo-eval0.9.0", "FORGETBENCH_MATH500"),
    "arc_challenge": ("olmo-eval0.9.0", "FORGETBENCH_ARC_CHALLENGE"),
    "hellaswag": ("olmo-eval0.9.0", "FORGETBENCH_HELLASWAG"),
    "winogrande": ("olmo-eval0.9.0", "FORGETBENCH_WINOGRANDE"),
    "ifeval_rlvr": ("generated", "FORGETBENCH_IFEVAL_RLVR"),
    "wildjailbreak": ("hub", "FORGETBENCH_WILDJAILBREAK"),
    "wildguardtest": ("hub", "FORGETBENCH_WILDGUARDTEST"),
}
GSM_ROWS = [
    {"question": f"Tom has {i} apples and buys 2. How many?", "answer": f"{i}+2\n#### {i + 2}"} for i in range(3)
]


@pytest.fixture(autouse=True)
def _no_retired_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for env in RETIRED_ENV:
        monkeypatch.delenv(env, raising=False)


def _file(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def _one_line_error(spec: str) -> str:
    with pytest.raises(SuiteError) as e:
        get_suite(spec)
    assert "\n" not in str(e.value)
    return str(e.value)


def test_every_source_switch_is_declared() -> None:
    declared = {n for n, s in all_suites().items() if any(o.group == "source" for o in s.options)}
    assert declared == set(SOURCES)


# -- data sources: the data version, never the scorer version ------------------------------------------
@pytest.mark.parametrize("name", sorted(SOURCES))
def test_a_data_source_option_changes_only_the_data_version(name: str, tmp_path: Path) -> None:
    default_part, _ = SOURCES[name]
    plain = get_suite(name)
    assert plain.data_version == f"1+{default_part}"
    a = _file(tmp_path / "a.jsonl", '{"x": 1}\n')
    local = get_suite(f"{name}:data={a}")
    sha = hashlib.sha256(a.read_bytes()).hexdigest()[:12]
    assert local.data_version == f"1+file-{sha}" and local.scorer_version == plain.scorer_version
    assert local.spec == f"{name}:data={a.resolve()}"  # what config.json records: re-resolvable anywhere
    b = _file(tmp_path / "b.jsonl", '{"x": 1}\n')
    assert get_suite(f"{name}:data={b}").data_version == local.data_version  # the content, not the path
    _file(a, '{"x": 2}\n')
    assert get_suite(f"{name}:data={a}").data_version not in (local.data_version, plain.data_version)
    if any(o.name == "hub" and not o.default for o in plain.options):
        hub = get_suite(f"{name}:hub")
        assert hub.data_version == "1+hub" and hub.scorer_version == plain.scorer_version


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_the_old_source_variable_is_an_error_and_read_nowhere(
    name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = sys.modules[type(get_suite(name)).__module__]
    suite = module.SUITE
    before = (suite.data_version, suite.scorer_version, suite.source())
    monkeypatch.setenv(SOURCES[name][1], str(_file(tmp_path / "copy.jsonl", '{"x": 1}\n')))
    assert (suite.data_version, suite.scorer_version, suite.source()) == before  # the variable is not read
    message = _one_line_error(name)
    assert f"{SOURCES[name][1]} is no longer read" in message and f"{name}:data=PATH" in message


def test_a_local_file_reaches_config_json_and_its_version(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    data = _file(tmp_path / "gsm.jsonl", "".join(json.dumps(r) + "\n" for r in GSM_ROWS))
    spec = f"gsm8k:data={data}"
    write_fake(tmp_path / "a.fake.json", {spec: 1.0}, 3)
    write_fake(tmp_path / "b.fake.json", {spec: 0.0}, 3)
    args = ["compare", "a.fake.json", "b.fake.json", "--engine", "fake", "--suites", spec, "--n-boot", "20"]
    res = CliRunner().invoke(app, [*args, "--out", "out"])
    assert res.exit_code == 0, res.output
    config = json.loads((tmp_path / "out" / "config.json").read_text())
    sha = hashlib.sha256(data.read_bytes()).hexdigest()[:12]
    assert config["suites"] == [f"gsm8k:data={data.resolve()}"]
    versions = config.get("versions") or config["suite_versions"]  # the key's name after / before issue 19's rename
    assert versions["gsm8k"]["data"] == f"1+file-{sha}"
    scores = json.loads((tmp_path / "out" / "results.json").read_text())["scores"]
    assert scores == {"a": {"gsm8k": 100.0}, "b": {"gsm8k": 0.0}}  # the local file's 3 items were scored


# -- the judge backend: the scorer version, never the data version -------------------------------------
def test_the_wildguard_backend_is_an_option_in_the_scorer_version(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FORGETBENCH_WILDGUARD", str(tiny_model_dir))  # where the weights live: stays a variable
    hf, vllm = get_suite("harmbench:wildguard"), get_suite("harmbench:wildguard-vllm")
    assert vllm.data_version == hf.data_version == get_suite("harmbench").data_version
    assert vllm.scorer_version == f"{hf.scorer_version}+vllm"
    assert (hf.judge()._engine_spec, vllm.judge()._engine_spec) == ("hf", "vllm")  # nothing loaded yet
    monkeypatch.setenv("FORGETBENCH_WILDGUARD_ENGINE", "vllm")
    direct = sys.modules["suites.harmbench"].SUITE.with_options(("wildguard",))
    assert direct.scorer_version == hf.scorer_version  # the variable is read nowhere
    message = _one_line_error("harmbench:wildguard")
    assert "FORGETBENCH_WILDGUARD_ENGINE is no longer read" in message and "harmbench:wildguard-vllm" in message


# -- lm-eval's include folder: both versions -----------------------------------------------------------
def test_the_lmeval_include_folder_is_an_option_in_both_versions(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from suites.lmeval import suite_for

    monkeypatch.setitem(sys.modules, "lm_eval", types.ModuleType("lm_eval"))  # suite_for only checks the import
    tasks = tmp_path / "tasks"
    tasks.mkdir()
    _file(tasks / "demo.yaml", "task: demo\n")
    plain, inc = suite_for(("demo",)), suite_for(("demo", f"include={tasks}"))
    assert inc.name == plain.name == "lmeval:demo" and inc.spec == f"lmeval:demo+include={tasks.resolve()}"
    assert inc.data_version.startswith(plain.data_version + "+include-")
    assert inc.scorer_version.startswith(plain.scorer_version + "+include-")
    _file(tasks / "demo.yaml", "task: demo\nmetric_list: [{metric: acc}]\n")
    edited = suite_for(("demo", f"include={tasks}"))
    assert edited.data_version != inc.data_version and edited.scorer_version != inc.scorer_version
    monkeypatch.setenv("FORGETBENCH_LMEVAL_INCLUDE", str(tasks))
    assert suite_for(("demo",)).data_version == plain.data_version  # the variable is read nowhere
    message = _one_line_error("lmeval:demo")
    assert "FORGETBENCH_LMEVAL_INCLUDE is no longer read" in message and "include=DIR" in message
    monkeypatch.delenv("FORGETBENCH_LMEVAL_INCLUDE")
    assert "is not a folder" in _one_line_error(f"lmeval:demo+include={tmp_path / 'nope'}")


# -- the grammar ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("gsm8k:nope", "unknown option 'nope' for gsm8k (options: math-verify, minerva, package, hub, data=PATH)"),
        ("gsm8k:data", "'gsm8k:data': option 'data' takes a value (data=PATH)"),
        ("gsm8k:data=", "'gsm8k:data=': option 'data' takes a value (data=PATH)"),
        ("gsm8k:hub=yes", "'gsm8k:hub=yes': option 'hub' takes no value (options: math-verify, minerva, package,"),
        ("gsm8k:hub+data=x.jsonl", "options of one group exclude each other"),
        ("gsm8k:data=/nonexistent/x.jsonl", "data=/nonexistent/x.jsonl is not a file"),
        ("harmbench:wildguard+wildguard-vllm", "options of one group exclude each other"),
        ("harmbench:vllm", "unknown option 'vllm' for harmbench (options: string, wildguard, wildguard-vllm)"),
        ("arithmetic:data=x", "unknown option 'data' for arithmetic (options: none)"),
        ("lmeval:demo+data=x", "unknown option 'data=x' for lmeval (options: <task>, include=DIR)"),
        ("lmeval:demo+include=a+include=b", "include= is given twice"),
    ],
)  # fmt: skip
def test_bad_options_are_one_line_errors_naming_the_suite(spec: str, needle: str) -> None:
    assert needle in _one_line_error(spec)
