"""`forgetbench train sft --data FILE.jsonl`: a malformed line is one error line naming the file and the line,
exit 2, before any model loads; a short SFT run on the tiny model trains on the file's responses and records
the data (path, sha256) and its data score in the checkpoint's metadata and registry entry."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest

from harness.chatdata import DataError, read_chats

GOOD = {"messages": [{"role": "user", "content": "What is 2 + 2?"}, {"role": "assistant", "content": "4"}]}


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


@pytest.mark.parametrize(
    ("bad", "needle"),
    [
        ("{not json", "not valid JSON"),
        ({"msgs": []}, 'expected an object with "messages"'),
        ({"messages": [GOOD["messages"][0]]}, "at least 2 turns"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "x"}]}, "messages[1].role"),
        ({"messages": [{"role": "user", "content": "hi"}, {"role": "user", "content": "x"}]}, "last turn"),
        ({"messages": [{"role": "system", "content": "s"}, {"role": "assistant", "content": "x"}]}, "no user turn"),
        ({"messages": [{"role": "user", "content": 3}, {"role": "assistant", "content": "x"}]}, "content must be"),
    ],
)
def test_a_malformed_line_names_the_file_and_line(tmp_path: Path, bad: object, needle: str) -> None:
    path = _write(tmp_path / "d.jsonl", [GOOD, "", GOOD, bad, GOOD])
    with pytest.raises(DataError) as e:
        read_chats(path)
    assert str(e.value).startswith(f"{path}:4: ") and needle in str(e.value)


def test_read_chats_keeps_the_prompt_turns_and_the_last_response(tmp_path: Path) -> None:
    turns = [{"role": "system", "content": "Be brief."}, *GOOD["messages"], {"role": "user", "content": "And 3+3?"}]
    path = _write(tmp_path / "d.jsonl", [GOOD, {"messages": [*turns, {"role": "assistant", "content": "6"}]}])
    a, b = read_chats(path)
    assert (a.response, b.response, len(b.prompt), b.where) == ("4", "6", 4, f"{path}:2")


@pytest.fixture
def registry(tmp_path: Path, tiny_model_dir: Path) -> Path:
    path = tmp_path / "checkpoints.yaml"
    path.write_text(f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n    method: base\n")
    return path


def test_cli_refuses_a_malformed_line_before_any_model_loads(
    registry: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    import harness.train.run
    from harness.cli import app

    def no_model(*a, **k):  # type: ignore[no-untyped-def]
        raise AssertionError("a model was loaded before the data was checked")

    monkeypatch.setattr(harness.train.run, "load_policy", no_model)
    monkeypatch.setattr(harness.train.run, "resolve_base", no_model)
    data = _write(tmp_path / "d.jsonl", [GOOD, GOOD, {"messages": "oops"}])
    args = ["train", "sft", "--suite", "addsub", "--base", "tiny", "--registry", str(registry), "--data", str(data)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert f"{data}:3:" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = CliRunner().invoke(app, [*args[:-2], "--data", str(tmp_path / "absent.jsonl")])
    assert res.exit_code == 2 and "absent.jsonl: cannot read chat data" in res.stderr
    res = CliRunner().invoke(app, ["train", "self-sft", *args[2:]])
    assert res.exit_code == 2 and "--data: applies to sft" in res.stderr


def test_sft_on_data_trains_on_its_responses_and_records_the_data(registry: Path, tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from typer.testing import CliRunner

    from harness.checkpoints.registry import Registry
    from harness.checkpoints.weights import load_pt
    from harness.cli import app

    rows = [
        {"messages": [{"role": "user", "content": f"What is {i} + {i}?"}, {"role": "assistant", "content": str(2 * i)}]}
        for i in range(6)
    ]
    data = _write(tmp_path / "d.jsonl", rows)
    out = tmp_path / "run"
    args = ["train", "sft", "--suite", "addsub", "--base", "tiny", "--registry", str(registry), "--data", str(data)]
    res = CliRunner().invoke(app, [*args, "--batch-size", "2", "--max-steps", "2", "--lr", "1e-2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    logged = [r["completion"] for r in map(json.loads, (out / "data.jsonl").read_text().splitlines())]
    assert logged == [str(2 * i) for i in range(6)]  # the file's responses, not addsub's expert data
    (ckpt,) = [c for c in Registry.load(registry).by_id.values() if c.method == "sft"]
    assert ckpt.trained_on == ("addsub",)
    meta = load_pt(Path(ckpt.path))["metadata"]
    assert meta["data"] == {
        "path": str(data),
        "sha256": hashlib.sha256(data.read_bytes()).hexdigest(),
        "n_examples": 6,
    }
    assert ckpt.hparams["data_sha256"] == meta["data"]["sha256"][:16]  # other data: not a replicate of this run
    assert meta["data_score"] == ckpt.data_score and math.isfinite(ckpt.data_score["mean_nll"])
    # a random 400-token model: every assistant token costs about log(400) nats
    assert abs(ckpt.data_score["mean_nll"] - math.log(400)) < 1.0
    assert ckpt.data_score["n_examples"] == 6 and torch is not None
    step0 = json.loads((out / "log.jsonl").read_text().splitlines()[0])
    assert step0["step"] == 0 and step0["data_score"] == ckpt.data_score
