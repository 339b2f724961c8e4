"""The score cache beside the records: a cached evaluation never calls the scorer again, but a new completion,
another scorer version or a garbled cache file is scored afresh (the cache is never trusted blindly)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.checkpoints.registry import Registry
from harness.evaluate import EvalConfig, evaluate
from harness.store import Store, StoreError
from harness.suites import get_suite
from harness.types import RecordKey
from tests.fakes import write_fake


def _setup(tmp_path: Path):
    reg = Registry([], (), None)
    ckpt = reg.resolve(str(write_fake(tmp_path / "m.fake.json", {"arithmetic": 0.5}, 8, seed=1)))
    return reg, ckpt, EvalConfig(engine="fake", limit=8, runs_dir=tmp_path / "runs")


def _count_calls(monkeypatch: pytest.MonkeyPatch, suite_cls: type) -> list[int]:
    calls = [0]
    real = suite_cls.score

    def counting(self, item, completion):  # type: ignore[no-untyped-def]
        calls[0] += 1
        return real(self, item, completion)

    monkeypatch.setattr(suite_cls, "score", counting)
    return calls


def test_second_evaluation_reads_scores_from_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, ckpt, cfg = _setup(tmp_path)
    suite = get_suite("arithmetic")
    calls = _count_calls(monkeypatch, type(suite))
    first = evaluate(reg, [ckpt], [suite], cfg)[ckpt.id]["arithmetic"].scores
    assert calls[0] == 8
    second = evaluate(reg, [ckpt], [suite], cfg, cached_only=True)[ckpt.id]["arithmetic"].scores
    assert calls[0] == 8 and second == first and 0 < sum(first) < 8


def test_new_scorer_version_or_garbled_cache_is_rescored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, ckpt, cfg = _setup(tmp_path)
    suite = get_suite("arithmetic")
    calls = _count_calls(monkeypatch, type(suite))
    first = evaluate(reg, [ckpt], [suite], cfg)[ckpt.id]["arithmetic"].scores
    (cache,) = (tmp_path / "runs").rglob("scores@*.json")
    cache.write_text("{not json")
    assert evaluate(reg, [ckpt], [suite], cfg, cached_only=True)[ckpt.id]["arithmetic"].scores == first
    assert calls[0] == 16
    monkeypatch.setattr(type(suite), "scorer", "99")  # a new scorer: its own cache file, everything rescored
    evaluate(reg, [ckpt], [suite], cfg, cached_only=True)
    assert calls[0] == 24 and len(list((tmp_path / "runs").rglob("scores@*.json"))) == 2


def test_a_new_completion_for_an_item_is_rescored(tmp_path: Path) -> None:
    reg, ckpt, cfg = _setup(tmp_path)
    suite = get_suite("arithmetic")
    res = evaluate(reg, [ckpt], [suite], cfg)[ckpt.id]["arithmetic"]
    store = Store(cfg.runs_dir)
    (fp,) = store.fingerprints()
    key = RecordKey(fp, "arithmetic", suite.data_version, res.decoding, res.engine)
    recs = store.load(key)
    wrong = next(i for i, s in zip(res.item_ids, res.scores, strict=True) if s == 0.0)
    item = next(it for it in suite.load() if it.id == wrong)
    store.append([recs[wrong].__class__(**{**recs[wrong].__dict__, "completion": suite.reference(item)})])
    again = evaluate(reg, [ckpt], [suite], cfg, cached_only=True)[ckpt.id]["arithmetic"]
    assert dict(zip(again.item_ids, again.scores, strict=True))[wrong] == 1.0
    assert sum(again.scores) == sum(res.scores) + 1


def test_a_store_that_refuses_the_cache_still_scores(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reg, ckpt, cfg = _setup(tmp_path)
    suite = get_suite("arithmetic")
    first = evaluate(reg, [ckpt], [suite], cfg)[ckpt.id]["arithmetic"].scores
    for p in (tmp_path / "runs").rglob("scores@*.json"):
        p.unlink()

    def refuse(self, key, version, scores):  # type: ignore[no-untyped-def]  # as a full disk or lost mount does
        raise StoreError("scores: cannot write to the record store (No space left on device)")

    monkeypatch.setattr(Store, "save_scores", refuse)
    assert evaluate(reg, [ckpt], [suite], cfg, cached_only=True)[ckpt.id]["arithmetic"].scores == first
