"""The record store: bad part files name themselves, URLs work like paths, claims exclude, two runs share a store."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.store import Store, StoreError
from harness.types import Record, RecordKey
from tests.fakes import write_fake

KEY = RecordKey("fp1", "arithmetic", "1", "dec", "fake@1")


def _rec(i: int, completion: str = "x") -> Record:
    return Record("fp1", "arithmetic", "1", f"i{i}", "h", "dec", "fake@1", completion, "stop", 1)


def _good_row() -> dict[str, object]:
    from dataclasses import asdict

    return asdict(_rec(0))


def _drop(col: str):
    return lambda t: t.drop_columns([col])


def _retype(col: str, values: list[object], kind: pa.DataType):
    return lambda t: t.set_column(t.schema.get_field_index(col), col, pa.array(values, kind))


BAD_PARTS = [
    ("missing item_id", _drop("item_id"), "lacks column 'item_id'"),
    ("missing schema", _drop("schema"), "lacks column 'schema'"),
    ("n_tokens as text", _retype("n_tokens", ["one"], pa.string()), "column 'n_tokens' is string"),
    ("completion as int", _retype("completion", [3], pa.int64()), "column 'completion' is int64"),
    ("schema as float", _retype("schema", [1.0], pa.float64()), "column 'schema' is double"),
    ("null item_id", _retype("item_id", [None], pa.string()), "column 'item_id' has 1 empty"),
    ("repeated column", lambda t: t.append_column("suite", pa.array(["x"])), "unreadable record file ("),
    ("other schema", _retype("schema", [99], pa.int64()), "schema 99 != 1"),
]


@pytest.mark.parametrize(("case", "corrupt", "message"), BAD_PARTS, ids=[c[0] for c in BAD_PARTS])
def test_a_readable_part_with_bad_columns_is_a_store_error_naming_the_file(
    tmp_path: Path, case: str, corrupt, message: str
) -> None:
    store = Store(tmp_path)
    store.append([_rec(1)])  # a good part beside the bad one
    part = Path(store.key_dir(KEY)) / "part-9999999999999999999-1-00001.parquet"
    pq.write_table(corrupt(pa.Table.from_pylist([_good_row()])), part)
    with pytest.raises(StoreError) as e:
        store.load(KEY)
    assert str(part) in str(e.value) and message in str(e.value) and "\n" not in str(e.value)


def test_a_bad_part_is_exit_2_naming_the_file_on_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from harness.cli import app

    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "a.fake.json", {"arithmetic": 1.0}, 4)
    args = ["eval", "a.fake.json", "--engine", "fake", "--suites", "arithmetic", "--limit", "4"]
    assert CliRunner().invoke(app, args).exit_code == 0
    (part,) = (tmp_path / "reports/runs/records").rglob("part-*.parquet")
    pq.write_table(pq.read_table(part).drop_columns(["prompt_hash"]), part)
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2, res.output
    assert part.name in res.output.replace("\n", "") and "lacks column 'prompt_hash'" in res.output


@pytest.fixture(params=["path", "file", "memory"])
def root(request: pytest.FixtureRequest, tmp_path: Path) -> str | Path:
    if request.param == "path":
        return tmp_path / "runs"
    if request.param == "file":
        return f"file://{tmp_path}/runs"
    return f"memory://forgetbench-test-{uuid.uuid4().hex[:8]}/runs"


def test_a_url_store_behaves_like_a_path(root: str | Path) -> None:
    store = Store(root, settle_s=0.01)
    assert store.load(KEY) == {} and store.fingerprints() == []
    store.append([_rec(i) for i in range(3)])
    store.append([_rec(1, "newer")])
    got = Store(root).load(KEY)  # a second client sees what the first committed
    assert sorted(got) == ["i0", "i1", "i2"] and got["i1"].completion == "newer"
    store.note_checkpoint("fp1", {"id": "base"})
    assert Store(root).checkpoint_info("fp1") == {"id": "base"} and Store(root).fingerprints() == ["fp1"]
    if isinstance(root, Path):  # temp names never linger beside committed parts
        assert not [p for p in root.rglob("*") if p.name.endswith(".tmp")]


def test_an_unknown_url_scheme_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="nosuch://x"):
        Store("nosuch://x/runs")


def test_claims_exclude_each_other(root: str | Path) -> None:
    """Four threads (four Store clients) claim overlapping groups: never two inside at once, all get in."""
    keys = [KEY, replace(KEY, decoding="dec2")]
    inside, peak, done = [0], [0], []
    lock = threading.Lock()

    def work(n: int) -> None:
        store = Store(root, settle_s=0.01)
        for _ in range(3):
            with store.claim(keys[n % 2 :] if n < 2 else keys):
                with lock:
                    inside[0] += 1
                    peak[0] = max(peak[0], inside[0])
                time.sleep(0.02)
                with lock:
                    inside[0] -= 1
        done.append(n)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(done) == [0, 1, 2, 3] and peak[0] == 1


def test_a_claim_of_a_dead_or_silent_owner_is_taken_over(tmp_path: Path) -> None:
    """Claim files (URL stores): a dead pid on this host is stale at once, a silent owner after stale_s."""
    import json

    store = Store(f"file://{tmp_path}/runs", settle_s=0.01, stale_s=1.0)
    folder = tmp_path / "runs/claims/fp1/arithmetic@1/dec__fake@1"
    folder.mkdir(parents=True)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "claim-00000000000000000001-a.json").write_text(
        json.dumps({"host": os.uname().nodename, "pid": dead.pid, "heartbeat": time.time(), "held": True})
    )
    (folder / "claim-00000000000000000002-b.json").write_text(
        json.dumps({"host": "elsewhere", "pid": 1, "heartbeat": time.time(), "held": True})
    )
    t0 = time.monotonic()
    with store.claim([KEY]):
        waited = time.monotonic() - t0
        assert [p.name for p in folder.glob("claim-*.json")] != []  # ours
    assert 0.9 < waited < 20  # the silent one needed its stale_s, the dead one nothing more
    assert not list(folder.glob("claim-*.json"))  # released


ROUNDS = ["path", "path", "path", "file"]  # file:// drives the claim-file protocol of URL stores


def _worker(tmp: str, who: str) -> None:
    """One of two processes: each round, wait for the other at a barrier, then evaluate into that round's store."""
    import json

    from harness.checkpoints.registry import Registry
    from harness.engines.fake import FakeEngine
    from harness.evaluate import EvalConfig, evaluate
    from harness.suites import get_suite

    tmp_path = Path(tmp)
    reg = Registry.load(tmp_path / "checkpoints.yaml")
    ckpts = [reg.resolve("base.fake.json"), reg.resolve("sft.fake.json")]
    suites = [get_suite("arithmetic"), get_suite("capitals")]
    for r, scheme in enumerate(ROUNDS):
        (tmp_path / f"ready-{r}-{who}").touch()
        while len(list(tmp_path.glob(f"ready-{r}-*"))) < 2:
            time.sleep(0.01)
        runs = tmp_path / f"runs{r}"
        cfg = EvalConfig(
            engine="fake", limit=20, batch_size=4, runs_dir=str(runs) if scheme == "path" else f"file://{runs}"
        )
        engine = FakeEngine()
        res = evaluate(reg, ckpts, suites, cfg, engine=engine)
        scores = {c: {s: r_.scores for s, r_ in by.items()} for c, by in res.items()}
        (tmp_path / f"result-{r}-{who}.json").write_text(json.dumps({"scores": scores, "calls": engine.calls}))


def test_two_processes_on_one_store_evaluate_each_record_once(tmp_path: Path) -> None:
    """Two processes evaluate the same checkpoints into one store, several rounds: each batch once, same scores."""
    import json

    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "capitals": 0.5}, 20, seed=1, latency_s=0.05)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.2, "capitals": 0.9}, 20, seed=2, latency_s=0.05)
    (tmp_path / "checkpoints.yaml").write_text("checkpoints: []\n")
    env = os.environ | {"PYTHONPATH": str(Path(__file__).parents[1])}
    code = "import sys; from tests.test_store import _worker; _worker(sys.argv[1], sys.argv[2])"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(tmp_path), who], cwd=tmp_path, env=env, stderr=subprocess.PIPE
        )
        for who in "ab"
    ]
    errs = [p.communicate(timeout=240)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    for r in range(len(ROUNDS)):
        a, b = (json.loads((tmp_path / f"result-{r}-{who}.json").read_text()) for who in "ab")
        rows = sum(pq.read_metadata(p).num_rows for p in (tmp_path / f"runs{r}/records").rglob("part-*.parquet"))
        assert rows == 2 * 2 * 20, f"round {r}"  # checkpoints x suites x items: nothing evaluated twice
        assert a["calls"] + b["calls"] == 2 * 2 * 20 // 4, f"round {r}"  # engine calls = batches, once each
        assert a["scores"] == b["scores"]
