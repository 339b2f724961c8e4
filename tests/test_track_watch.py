"""`forgetbench track --watch` on the fake engine while a thread writes checkpoints: each complete checkpoint
is evaluated once and the report re-rendered after it; a checkpoint that disappears before it settled is never
read; the watcher stops at --until-step; a restarted watcher evaluates only what the store lacks."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from harness.engines.fake import FakeEngine
from tests.test_track import PLAN, _track, write_plan


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every checkpoint a fake engine is pointed at."""
    seen: list[str] = []
    real = FakeEngine.load

    def load(self, model_dir):
        seen.append(Path(model_dir).name)
        return real(self, model_dir)

    monkeypatch.setattr(FakeEngine, "load", load)
    return seen


def _writer(run: Path) -> None:
    time.sleep(0.2)
    write_plan(run / "step-100.fake.json", PLAN[100])
    gone = write_plan(run / "step-150.fake.json", PLAN[100])
    time.sleep(0.1)
    gone.unlink()  # vanishes before it settled: never read
    time.sleep(0.5)
    write_plan(run / "step-200.fake.json", PLAN[200])
    time.sleep(0.5)
    write_plan(run / "step-300.fake.json", PLAN[300])
    write_plan(run / "step-400.fake.json", {"arithmetic": range(20), "capitals": range(13)})  # past --until-step


def test_watch_evaluates_new_checkpoints_as_they_land(
    tmp_path: Path, loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import harness.track as track

    renders: list[int] = []
    real_render = track.render
    monkeypatch.setattr(track, "render", lambda t, *a: (renders.append(len(t.points)), real_render(t, *a))[1])
    write_plan(tmp_path / "base.fake.json", PLAN["base"])
    run = tmp_path / "sft"
    run.mkdir()
    writer = threading.Thread(target=_writer, args=(run,))
    writer.start()
    out = tmp_path / "track"
    args = ["--watch", "--poll", "0.05", "--settle", "0.3", "--until-step", "300", "--out", str(out)]
    res = _track(tmp_path, str(run), *args)
    writer.join()
    assert res.exit_code == 0, res.output
    assert loads == ["base.fake.json", "step-100.fake.json", "step-200.fake.json", "step-300.fake.json"]
    assert renders[:3] == [1, 2, 3]  # re-rendered after each checkpoint as it landed
    tl = json.loads((out / "results.json").read_text())["timeline"]
    assert [p["step"] for p in tl["points"]] == [100, 200, 300]

    # restarted with a later stop: only the missing checkpoint is evaluated (the rest is in the store)
    loads.clear()
    (run / "step-100.fake.json").unlink()  # deleted after it was evaluated: this watcher never sees it
    res = _track(tmp_path, str(run), "--watch", "--poll", "0.05", "--settle", "0.01", "--until-step", "400")
    assert res.exit_code == 0, res.output
    assert loads == ["step-400.fake.json"]


def test_ctrl_c_renders_what_is_evaluated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.track as track

    write_plan(tmp_path / "base.fake.json", PLAN["base"])
    run = tmp_path / "sft"
    write_plan(run / "step-100.fake.json", PLAN[100])

    def interrupt(_s: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(track.time, "sleep", interrupt)
    out = tmp_path / "track"
    res = _track(tmp_path, str(run), "--watch", "--poll", "1", "--settle", "0.001", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "Ctrl-C" in res.output
    assert [p["step"] for p in json.loads((out / "results.json").read_text())["timeline"]["points"]] == [100]


def test_watch_stops_on_the_final_checkpoint_or_the_until_step(tmp_path: Path) -> None:
    from harness.runs import RunCheckpoint, TrainingRun
    from harness.track import _finished

    class Done:
        done: dict = {}

    last = RunCheckpoint("r", 20, tmp_path / "checkpoint-20", final=True)
    run = TrainingRun("r", "r", [RunCheckpoint("r", 10, tmp_path / "checkpoint-10"), last])
    t = Done()
    t.done = {str(tmp_path / "checkpoint-10"): object()}
    assert not _finished([run], t, None)
    assert _finished([run], t, 10) and not _finished([run], t, 15)
    t.done[str(last.path)] = object()
    assert _finished([run], t, None)
