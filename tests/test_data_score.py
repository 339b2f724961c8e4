"""`forgetbench data-score`: planted off-policy examples (random character strings among the tiny model's own
greedy answers) rank first; the trainer's step-0 score of the same file is the same number; the comparison
shows each checkpoint's data score beside its drop, with a scatter from 3 checkpoints on."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.datascore import score_tokens
from tests.fakes import write_fake

PLANTED = 3


def _chat(q: str, a: str) -> dict:
    return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}


def test_score_tokens_is_the_token_mean_and_ranks_by_example_mean() -> None:
    ds = score_tokens([[-1.0, -1.0], [-4.0], [-0.1, -0.1, -0.1, -0.1]], ["a", "b", "c"], ["", "", ""], 10.0, top=2)
    assert ds.mean_nll == pytest.approx((2 + 4 + 0.4) / 7) and ds.n_tokens == 7
    assert ds.frac_above == pytest.approx(1 / 7)  # only -4.0 is above log(10)
    assert [o.where for o in ds.top] == ["b", "a"]


def _sums(lo: int, hi: int) -> list[dict]:
    return [
        _chat(f"What is {i} + {i + 3}?", f"{i} + {i + 3} = {2 * i + 3}. The answer is {2 * i + 3}.")
        for i in range(lo, hi)
    ]


@pytest.fixture
def tiny_data(tmp_path: Path, tiny_model_dir: Path) -> tuple[Path, Path]:
    """A base that has learned to answer sums (the tiny model after 30 SFT steps on 24 of them: a random model
    is nearly uniform, so nothing would be off-policy for it), and 12 held-out sums to score, PLANTED of them
    replaced by random character strings."""
    registry = tmp_path / "checkpoints.yaml"
    registry.write_text(f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n    method: base\n")
    seen = tmp_path / "seen.jsonl"
    seen.write_text("\n".join(json.dumps(r) for r in _sums(0, 24)) + "\n")
    train = ["train", "sft", "--suite", "addsub", "--base", "tiny", "--registry", str(registry), "--data", str(seen)]
    train += ["--name", "sums", "--max-steps", "30", "--epochs", "10", "--batch-size", "4", "--lr", "3e-3"]
    res = CliRunner().invoke(app, [*train, "--schedule", "constant", "--out", str(tmp_path / "sums")])
    assert res.exit_code == 0, res.output
    rng = random.Random(0)
    rows = _sums(40, 52)
    for k in (2, 6, 9):  # planted: characters the model was never shown in this order
        rows[k] = _chat(rows[k]["messages"][0]["content"], "".join(rng.choice("qzjxkvw#@%&~^") for _ in range(24)))
    data = tmp_path / "mixed.jsonl"
    data.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    return data, registry


def test_planted_off_policy_examples_rank_first(tiny_data: tuple[Path, Path]) -> None:
    data, registry = tiny_data
    res = CliRunner().invoke(app, ["data-score", str(data), "--base", "sums", "--registry", str(registry), "--json"])
    assert res.exit_code == 0, res.output
    ds = json.loads(res.stdout)
    top = [o["where"] for o in ds["top"]]
    assert set(top[:PLANTED]) == {f"{data}:{k}" for k in (3, 7, 10)}, top
    assert ds["n_examples"] == 12 and len(top) == 12 and math.isfinite(ds["mean_nll"])
    text = CliRunner().invoke(app, ["data-score", str(data), "--base", "sums", "--registry", str(registry)])
    assert text.exit_code == 0 and "most off-policy" in text.stdout and "mean NLL" in text.stdout


def test_the_trainers_step0_score_equals_the_commands(tiny_data: tuple[Path, Path], tmp_path: Path) -> None:
    data, registry = tiny_data
    cmd = ["data-score", str(data), "--base", "sums", "--registry", str(registry), "--json"]
    ds = json.loads(CliRunner().invoke(app, cmd).stdout)
    train = ["train", "sft", "--suite", "addsub", "--base", "sums", "--registry", str(registry), "--data", str(data)]
    res = CliRunner().invoke(app, [*train, "--max-steps", "1", "--batch-size", "4", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    step0 = json.loads((tmp_path / "o/log.jsonl").read_text().splitlines()[0])["data_score"]
    assert step0["n_tokens"] == ds["n_tokens"] and step0["mean_nll"] == pytest.approx(ds["mean_nll"], abs=1e-3)
    assert step0["frac_above"] == pytest.approx(ds["frac_above"], abs=1e-3)


def test_suite_data_and_the_fake_engine(tmp_path: Path) -> None:
    """suite:addsub is the trainer's expert data; a fake model that writes exactly it scores it on-policy."""
    from harness.datascore import suite_chats

    chats = suite_chats("addsub", 5)
    assert [c.response for c in chats][0].count("=") == 1 and len(chats) == 5
    fake = tmp_path / "m.fake.json"
    fake.write_text(json.dumps({"responses": {c.messages[-1]["content"]: c.response for c in chats[:4]}}))
    res = CliRunner().invoke(app, ["data-score", "suite:addsub", "--base", str(fake), "--engine", "fake"] + [
        "--limit", "5", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    ds = json.loads(res.stdout)
    assert ds["top"][0]["where"] == chats[4].where  # the one example the fake model would not write
    res = CliRunner().invoke(app, ["data-score", str(tmp_path / "nope.jsonl"), "--base", str(fake)])
    assert res.exit_code == 2 and "nope.jsonl: cannot read chat data" in res.stderr
    res = CliRunner().invoke(app, ["data-score", "suite:ifeval", "--base", str(fake), "--engine", "fake"])
    assert res.exit_code == 2 and "no gold or expert responses" in res.stderr
    res = CliRunner().invoke(app, ["data-score", "suite:capitals", "--base", str(fake), "--engine", "fake"])
    assert res.exit_code == 2 and "capitals has no train split" in res.stderr


def _workspace(tmp_path: Path, n: int) -> None:
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.8, "addsub": 0.2}, 30, seed=1)
    entries = "checkpoints:\n  - id: base\n    path: base.fake.json\n    method: base\n"
    for k in range(n):
        write_fake(tmp_path / f"c{k}.fake.json", {"arithmetic": 0.8 - 0.2 * k, "addsub": 0.9}, 30, seed=2 + k)
        entries += (
            f"  - id: c{k}\n    path: c{k}.fake.json\n    method: sft\n    base: base\n    trained_on: [addsub]\n"
            f"    hparams: {{seed: {k}}}\n    data_score: {{mean_nll: {0.5 + k}, frac_above: {0.1 * k}}}\n"
        )
    (tmp_path / "checkpoints.yaml").write_text(entries)


@pytest.mark.parametrize("n", [2, 3])
def test_the_comparison_shows_the_data_score_beside_the_drop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int
) -> None:
    _workspace(tmp_path, n)
    monkeypatch.chdir(tmp_path)
    ids = ["base", *(f"c{k}" for k in range(n))]
    res = CliRunner().invoke(
        app, ["compare", *ids, "--engine", "fake", "--limit", "30", "--suites", "arithmetic,addsub", "--out", "o"]
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "o/results.json").read_text())
    assert data["data_scores"]["c1"] == {"mean_nll": 1.5, "frac_above": 0.1}
    html = (tmp_path / "o/report.html").read_text()
    assert "training data NLL" in html and '<td class="num data-nll">1.500, 10% &gt; ppl 10</td>' in html
    figures = json.loads(html.split('<script type="application/json" id="figures">')[1].split("</script>")[0])
    assert ("datascore" in figures) == (n >= 3)
    if n >= 3:
        assert figures["datascore"]["data"][0]["x"] == [0.5, 1.5, 2.5]
