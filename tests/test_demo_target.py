"""The demo's pieces without a model: the addsub target suite, --max-new-tokens as a cap, --suite-limit.

.venv/bin/python -m pytest tests/test_demo_target.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.evaluate import EvalConfig, decoding_for
from harness.suites import get_suite
from tests.fakes import write_fake

runner = CliRunner()


def test_addsub_splits_are_fixed_disjoint_and_solvable() -> None:
    s = get_suite("addsub")
    ev, tr = s.load("eval"), s.load("train")
    assert len(ev) == 1000 and len(tr) == 10000
    key = lambda it: (it.data["a"], it.data["op"], it.data["b"])  # noqa: E731
    assert len({key(it) for it in ev}) == 1000  # eval problems are distinct
    assert not {key(it) for it in ev} & {key(it) for it in tr}  # and never trained on
    for it in ev[:50] + tr[:50]:
        d = it.data
        assert d["answer"] == (d["a"] + d["b"] if d["op"] == "+" else d["a"] - d["b"]) and d["answer"] >= 0
        assert s.score(it, s.expert(it)) == 1.0 and s.score(it, s.reference(it)) == 1.0
        assert s.score(it, s.wrong(it)) == 0.0
    it = ev[0]
    assert s.score(it, f"{it.data['a']} {it.data['op']} {it.data['b']} = {it.data['answer'] + 1}") == 0.0
    assert s.load("eval")[0] == ev[0]  # seeded: the same items every time


def test_addsub_dev_is_held_out_from_eval_and_the_first_train_rows() -> None:
    """The study's sweep scores lr choices on addsub:dev: never an eval problem, never one a run with
    --train-limit <= 2,000 trains on, and its own data version (its records never mix with eval's)."""
    s, dev = get_suite("addsub"), get_suite("addsub:dev")
    key = lambda it: (it.data["a"], it.data["op"], it.data["b"])  # noqa: E731
    items = dev.load("eval")
    assert len(items) == 200 and len({key(it) for it in items}) == 200
    assert not {key(it) for it in items} & {key(it) for it in s.load("eval")}
    assert not {key(it) for it in items} & {key(it) for it in s.load("train")[:2000]}
    assert dev.data_version != s.data_version and items[0].id.startswith("as-dev-")
    assert dev.load("train") == s.load("train")  # training data is the same split either way


@pytest.mark.parametrize(
    ("suite", "cap", "want"),
    [("capitals", 96, 48), ("mmlu", 96, 96), ("addsub", 96, 32), ("mmlu", None, 1024), ("capitals", 20, 20)],
)
def test_max_new_tokens_caps_each_suite(suite: str, cap: int | None, want: int) -> None:
    assert decoding_for(get_suite(suite), EvalConfig(max_new_tokens=cap)).max_new_tokens == want


def test_limit_for_prefers_the_suite_limit() -> None:
    cfg = EvalConfig(limit=30, limits={"capitals": 5})
    assert (cfg.limit_for("capitals"), cfg.limit_for("arithmetic")) == (5, 30)


def test_suite_limit_flag_sets_per_suite_item_counts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "capitals": 0.7}, 20, seed=1)
    write_fake(tmp_path / "cand.fake.json", {"arithmetic": 0.3, "capitals": 0.7}, 20, seed=2)
    args = ["compare", "base.fake.json", "cand.fake.json", "--engine", "fake", "--suites", "arithmetic,capitals"]
    res = runner.invoke(app, [*args, "--out", "out", "--limit", "12", "--suite-limit", "capitals=4"])
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    (cand,) = data["summaries"]
    assert {d["suite"]: d["n"] for d in cand["deltas"]} == {"arithmetic": 12, "capitals": 4}


@pytest.mark.parametrize("bad", ["capitals", "capitals=0", "capitals=x", "=3", "capitals=-2"])
def test_bad_suite_limit_is_one_line_exit_2(bad: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"capitals": 0.7}, 5)
    res = runner.invoke(
        app, ["compare", "base.fake.json", "--engine", "fake", "--suites", "capitals", "--suite-limit", bad]
    )
    assert res.exit_code == 2 and "--suite-limit" in res.output
    assert not (tmp_path / "reports").exists()
