"""Generated suite items are cached on disk, keyed by the generator's source: an edit regenerates, a garbled
file regenerates, data that JSON would change is never cached; the cached items equal freshly generated ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import data
from harness.types import Item


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORGETBENCH_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(data, "_GENERATED", {})


def _maker(calls: list[int], payload: object):
    def make() -> list[Item]:
        calls.append(1)
        return [Item(f"x-{k}", {"k": k, "v": payload}) for k in range(3)]

    return make


def test_second_process_reads_the_file_and_an_edit_regenerates(tmp_path: Path) -> None:
    src, calls = tmp_path / "gen.py", []
    src.write_text("VERSION = 1\n")
    first = data.generated("toy", src, "", _maker(calls, [1, 2]))
    data._GENERATED.clear()  # as a new process
    again = data.generated("toy", src, "", _maker(calls, [1, 2]))
    assert len(calls) == 1 and [(i.id, i.data) for i in again] == [(i.id, i.data) for i in first]
    src.write_text("VERSION = 2\n")
    data.generated("toy", src, "", _maker(calls, [1, 2]))
    assert len(calls) == 2
    data.generated("toy", src, "pkg-2.0", _maker(calls, [1, 2]))  # another package version: another key
    assert len(calls) == 3


def test_garbled_file_regenerates_and_tuples_are_not_cached(tmp_path: Path) -> None:
    src, calls = tmp_path / "gen.py", []
    src.write_text("x\n")
    data.generated("toy", src, "", _maker(calls, 1))
    (f,) = (tmp_path / "data" / "generated").glob("toy-*.json")
    f.write_text("[[")
    data._GENERATED.clear()
    assert [i.data["k"] for i in data.generated("toy", src, "", _maker(calls, 1))] == [0, 1, 2]
    assert len(calls) == 2
    made = data.generated("tup", src, "", _maker(calls, (1, 2)))  # JSON would read the tuple back as a list
    assert made[0].data["v"] == (1, 2) and not list((tmp_path / "data" / "generated").glob("tup-*.json"))


def test_countdown_from_the_cache_equals_the_generator() -> None:
    from harness.suites import get_suite
    from suites.countdown import _generate

    get_suite("countdown").load()  # fills the cache
    data._GENERATED.clear()
    cached = get_suite("countdown").load()
    assert [(i.id, i.data) for i in cached] == [(i.id, i.data) for i in _generate("eval")]
