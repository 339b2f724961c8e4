"""ForgettingProbe: score one saved checkpoint of a run against the base on a fixed probe set (a few suites, a
limit), into the record store that `forgetbench track` reads, and return gain, drop and per-suite deltas with
their paired 95% CIs. One engine for the whole run (checkpoints swapped in place, harness/track.Tracker).

    python -c "from harness.integrations.probe import ForgettingProbe; print(ForgettingProbe.metrics.__doc__)"
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.runs import RunCheckpoint


def _csv(value: str | Sequence[str] | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return ",".join(value)


class ForgettingProbe:
    """Scores checkpoints of one run (`run` names it in logs and ids) on `suites` against `base`."""

    def __init__(
        self,
        base: str,
        suites: str | Sequence[str],
        limit: int | None = 50,
        trained_on: str | Sequence[str] | None = None,
        method: str | None = None,
        runs_dir: str | Path = "reports/runs",
        registry: str | Path = "checkpoints.yaml",
        engine: str = "hf",
        batch_size: int = 16,
        max_new_tokens: int | None = None,
        n_boot: int = 1000,
        run: str = "run",
        console: Console | None = None,
    ) -> None:
        from harness import pipeline
        from harness.evaluate import EvalConfig
        from harness.track import Tracker

        pipeline.check_flags(limit, max_new_tokens, n_boot, batch_size)
        reg, ckpts, suite_objs = pipeline.resolve(Path(registry), [base], _csv(suites))
        pipeline.check_runs_dir(runs_dir)
        cfg = EvalConfig(
            engine=engine, limit=limit, runs_dir=runs_dir, batch_size=batch_size, max_new_tokens=max_new_tokens
        )
        lineage = (_csv(trained_on), method, None)
        self.tracker = Tracker(reg, ckpts[0], base, suite_objs, cfg, lineage, console=console or Console(stderr=True))
        self.n_boot, self.run, self._started = n_boot, run, False

    def score(self, path: str | Path, step: int) -> dict[str, Any] | None:
        """The timeline point of the checkpoint at `path` (evaluated unless stored); None when it could not be
        read (the reason is logged and kept in `notes`)."""
        if not self._started:
            self.tracker.start()
            self._started = True
        point = self.tracker.add(RunCheckpoint(self.run, step, Path(path)))
        if point is None:
            return None
        return self.tracker.timeline([point], n_boot=self.n_boot)["points"][0]

    @property
    def notes(self) -> list[str]:
        return self.tracker.notes

    @staticmethod
    def metrics(point: Mapping[str, Any], prefix: str = "forgetting/") -> dict[str, float]:
        """Flat numbers for a trainer's logger: gain, drop (with ci_low / ci_high) and each suite's delta."""
        out: dict[str, float] = {}
        for what in ("gain", "drop", "drop_all"):  # drop: informative suites; drop_all: every non-target one
            if point.get(what) is not None:
                out[f"{prefix}{what}"] = point[what]
                out[f"{prefix}{what}_ci_low"], out[f"{prefix}{what}_ci_high"] = point[f"{what}_ci"]
        for suite, s in point["suites"].items():
            out[f"{prefix}{suite}/delta"] = s["delta"]
            out[f"{prefix}{suite}/ci_low"], out[f"{prefix}{suite}/ci_high"] = s["ci"]
        return out

    @staticmethod
    def drop_resolved_above(point: Mapping[str, Any], pp: float) -> bool:
        """The drop's 95% CI lies above pp points: forgetting beyond the budget that noise cannot explain."""
        return point["drop_ci"] is not None and point["drop_ci"][0] > pp

    def close(self) -> None:
        self.tracker.close()
