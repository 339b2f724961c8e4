"""`forgetbench track RUN_DIR [RUN_DIR ...] --base CKPT`: the forgetting timeline of training runs.

Finds each run's checkpoints (harness/runs.py), evaluates them in step order like `compare` (same suites,
options, record store and cache, lineage flags) on ONE engine: the model is loaded once and each next
checkpoint of the same architecture is swapped into it (harness/engines/hf.py; vllm's in-place switch), a
cached checkpoint never starts an engine. Then the timeline (harness/timeline.py) is rendered into track.html
+ results.json + config.json as one unit (outputs.commit). `--watch` polls the runs and evaluates each new
complete checkpoint as training writes it, re-rendering after each; a restarted watcher evaluates only what
the store lacks. `--max-drop PP` prints one line a script can read (see timeline.max_drop_line).

    forgetbench track reports/train/RUN --base smollm2-135m --suites arithmetic,capitals --limit 20 --max-drop 2
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from harness.errors import ForgetbenchError
from harness.runs import RunCheckpoint, RunError, TrainingRun, discover, discover_all
from harness.timeline import Point, analyse, max_drop_line
from harness.types import stable_hash

if TYPE_CHECKING:
    from harness.checkpoints.registry import Checkpoint, Registry
    from harness.engines import Engine
    from harness.evaluate import EvalConfig
    from harness.suites import Suite
    from harness.types import SuiteResult

out_console = Console()
err_console = Console(stderr=True)


@dataclass
class Tracker:
    """Evaluates checkpoints of runs against one base on one engine, keeping every result for the timeline."""

    registry: Registry
    base: Checkpoint
    base_spec: str
    suites: list[Suite]
    cfg: EvalConfig
    lineage: tuple[str | None, str | None, int | None] = (None, None, None)  # --trained-on, --method, --seed
    cached_only: bool = False
    console: Console = field(default_factory=lambda: err_console)
    engine: Engine | None = None
    results: dict[str, dict[str, SuiteResult]] = field(default_factory=dict)
    points: list[Point] = field(default_factory=list)
    done: dict[str, Point] = field(default_factory=dict)  # by checkpoint path
    ckpts: dict[str, Checkpoint] = field(default_factory=dict)  # by point checkpoint id: lineage, hparams
    notes: list[str] = field(default_factory=list)

    def start(self) -> None:
        self.results[self.base.id] = self._evaluate(self.base, "base")

    def checkpoint_of(self, rc: RunCheckpoint) -> Checkpoint:
        """The registry's view of a run's checkpoint, with the lineage flags for paths."""
        from harness.checkpoints.registry import RegistryError, with_lineage

        ck = self.registry.resolve(str(rc.path))
        ck = replace(ck, id=f"{rc.run}-step{rc.step}")
        if ck.format == "peft":  # an adapter whose named base is not here (a hub id offline) is one of --base
            try:
                self.registry.resolve(ck.base or "")
            except RegistryError:
                ck = replace(ck, base=self.base_spec)
        trained_on, method, seed = self.lineage
        ck = with_lineage(self.registry, [self.base, ck], [self.base_spec, str(rc.path)], trained_on, method)[1]
        if seed is not None and "seed" not in ck.hparams:
            ck = replace(ck, hparams={**ck.hparams, "seed": seed})
        return replace(ck, hparams={**ck.hparams, "step": rc.step})

    def add(self, rc: RunCheckpoint) -> Point | None:
        """Evaluate one checkpoint (what the store lacks); a checkpoint that cannot be read is a logged skip."""
        from harness.checkpoints.registry import RegistryError
        from harness.engines import EngineError

        key = str(rc.path)
        if key in self.done:
            return self.done[key]
        try:
            ck = self.checkpoint_of(rc)
            res = self._evaluate(ck, f"{rc.label} step {rc.step}")
        except (RegistryError, EngineError, FileNotFoundError, OSError) as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            note = f"skipped {rc.path} (step {rc.step}): {first}"
            self.console.print(note, highlight=False, markup=False)
            self.notes.append(note)
            self.done[key] = None  # type: ignore[assignment]  # never retried in this process
            return None
        point = Point(rc.run, rc.step, ck.id, key, tuple(ck.trained_on), ck.method)
        self.results[ck.id] = res
        self.ckpts[ck.id] = ck
        self.points.append(point)
        self.points.sort(key=lambda p: (p.run, p.step))
        self.done[key] = point
        return point

    def _evaluate(self, ck: Checkpoint, label: str) -> dict[str, SuiteResult]:
        from harness.evaluate import MissingRecordsError, evaluate

        try:  # everything stored: no engine, no torch
            return evaluate(self.registry, [ck], self.suites, self.cfg, console=self.console, cached_only=True)[ck.id]
        except MissingRecordsError:
            if self.cached_only:
                raise
        engine = self._engine()
        starts, t0 = getattr(engine, "starts", 0), time.perf_counter()
        res = evaluate(self.registry, [ck], self.suites, self.cfg, engine=engine, console=self.console)[ck.id]
        what = getattr(engine, "last_load", "")
        if getattr(engine, "starts", 0) > starts and starts:
            what = f"RELOADED the engine: {what}"  # another architecture (or weights that would not swap)
        self.console.print(f"{label}: {what} ({time.perf_counter() - t0:.1f} s)", highlight=False, markup=False)
        return res

    def _engine(self) -> Engine:
        if self.engine is None:
            from harness.engines import make_engine

            cfg = self.cfg
            self.engine = make_engine(cfg.engine, **({"dtype": cfg.dtype} if cfg.dtype else {}), **cfg.engine_options)
            if cfg.engine != "fake":
                self.engine.batch_size = cfg.batch_size
        return self.engine

    def timeline(self, points: Sequence[Point], **options: Any) -> dict[str, Any]:
        """The timeline of `points` (timeline.analyse), its headline drop over the informative suites as compare's."""
        from harness.pipeline import chance_for

        chance, ceiling = chance_for(self.suites, self.cfg)
        groups = self.run_groups(points)
        return analyse(self.results, self.base.id, points, chance=chance, ceiling=ceiling, groups=groups, **options)

    def run_groups(self, points: Sequence[Point]) -> dict[str, str]:
        """run -> replicate group, by compare's rule (harness/groups.py: same base, method, targets and recipe,
        seeds apart), read from each run's first checkpoint without its step, so runs at different steps of a
        live track still group (outcomes only a finished run records are not read)."""
        from harness import groups

        first: dict[str, Checkpoint] = {}
        for p in points:
            if p.run not in first and p.checkpoint in self.ckpts:
                ck = self.ckpts[p.checkpoint]
                first[p.run] = replace(ck, id=p.run, hparams={k: v for k, v in ck.hparams.items() if k != "step"})
        return groups.assign(list(first.values()))

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def default_out(runs: Sequence[TrainingRun], base: str, suites: Sequence[Suite], cfg: EvalConfig) -> Path:
    names = "-".join(r.label for r in runs)[:60]
    key = stable_hash([[r.spec for r in runs], base, [s.ident for s in suites], cfg.limit, cfg.limits, cfg.engine], 6)
    return Path("reports") / f"track-{names}-{key}"


def render(tracker: Tracker, out: Path, config: dict[str, Any], n_boot: int, last_k: int, max_drop: float | None):
    """Analyse what is evaluated so far and write track.html, results.json and config.json as one unit."""
    from harness.outputs import commit
    from harness.track_report import render_html, write_json

    tl = tracker.timeline(tracker.points, n_boot=n_boot, last_k=last_k, max_drop=max_drop)
    config = config | {"notes": list(tracker.notes), "points": [asdict(p) for p in tracker.points]}
    if max_drop is not None:
        config["max_drop_line"] = max_drop_line(tl, max_drop)

    def write(stage: Path) -> None:
        import json

        (stage / "config.json").write_text(json.dumps(config, indent=1, default=str))
        render_html(tl, stage / "track.html", config)
        write_json(tl, stage / "results.json", config)

    commit(out, write)
    return tl


def run_track(
    runs: list[TrainingRun],
    tracker: Tracker,
    out: Path,
    config: dict[str, Any],
    n_boot: int = 1000,
    last_k: int = 3,
    max_drop: float | None = None,
    watch: bool = False,
    poll_s: float = 30.0,
    settle_s: float = 10.0,
    until_step: int | None = None,
) -> dict[str, Any]:
    """Evaluate every run's checkpoints in step order, render; with `watch`, keep polling until each run
    reached `until_step`, wrote its final checkpoint, or Ctrl-C. Returns the last timeline."""
    for r in runs:
        for why in r.skipped:
            tracker.console.print(f"{r.label}: skipped {why}", highlight=False, markup=False)
    tracker.start()
    try:
        while True:
            fresh = 0
            for r in runs:
                for rc in r.checkpoints:
                    if until_step is not None and rc.step > until_step:
                        continue
                    if str(rc.path) not in tracker.done:
                        fresh += tracker.add(rc) is not None
                        if watch:  # the report follows the run, one checkpoint at a time
                            render(tracker, out, config, n_boot, last_k, max_drop)
            if not watch or _finished(runs, tracker, until_step):
                break
            time.sleep(poll_s)
            runs = [_rediscover(r, settle_s, tracker) for r in runs]
    except KeyboardInterrupt:
        tracker.console.print("stopped (Ctrl-C): rendering what is evaluated", highlight=False)
    return render(tracker, out, config, n_boot, last_k, max_drop)


def _rediscover(run: TrainingRun, settle_s: float, tracker: Tracker) -> TrainingRun:
    """The run as it is on disk now; a run that cannot be read now (a checkpoint half-renamed, a mixed
    architecture) keeps what was found before, and the reason is logged once."""
    try:
        return discover(run.spec, settle_s, label=run.label)
    except RunError as e:
        note = f"{run.label}: {e}; keeping the checkpoints found before"
        if note not in tracker.notes:
            tracker.notes.append(note)
            tracker.console.print(note, highlight=False, markup=False)
        return run


def _finished(runs: Sequence[TrainingRun], tracker: Tracker, until_step: int | None) -> bool:
    def done(r: TrainingRun) -> bool:
        evaluated = [c for c in r.checkpoints if str(c.path) in tracker.done]
        if until_step is not None and any(c.step >= until_step for c in evaluated):
            return True
        return any(c.final for c in evaluated)

    return all(done(r) for r in runs)


class TrackError(ForgetbenchError):
    """A flag of `track` that cannot be used (one line naming it)."""


def track_cmd(
    runs: Annotated[list[str], typer.Argument(help="run directories (or globs of checkpoints), one run each")],
    base: Annotated[str, typer.Option("--base", help="the run's initial checkpoint: registry id or path")],
    suites: Annotated[str | None, typer.Option("--suites", help="suite specs, comma-separated")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="first N items of every suite")] = None,
    suite_limit: Annotated[str | None, typer.Option("--suite-limit", help="per-suite limits, e.g. mmlu=100")] = None,
    engine: Annotated[str, typer.Option("--engine", help="fake | hf | vllm")] = "hf",
    registry: Annotated[Path, typer.Option("--registry", help="checkpoints.yaml")] = Path("checkpoints.yaml"),
    runs_dir: Annotated[str, typer.Option("--runs-dir", help="record store: a path or a URL")] = "reports/runs",
    out: Annotated[Path | None, typer.Option("--out", help="output dir (default reports/track-<hash>)")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per engine call")] = 32,
    max_new_tokens: Annotated[int | None, typer.Option(help="cap every suite's generation length")] = None,
    dtype: Annotated[str | None, typer.Option(help="model dtype (default float32)")] = None,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples")] = 1000,
    cached_only: Annotated[bool, typer.Option(help="fail instead of evaluating what is not stored")] = False,
    engine_opt: Annotated[list[str] | None, typer.Option("--engine-opt", help="KEY=VALUE for the engine")] = None,
    trained_on: Annotated[str | None, typer.Option(help="target suites of the runs' checkpoints")] = None,
    method: Annotated[str | None, typer.Option(help="method of the runs' checkpoints (sft, grpo...)")] = None,
    seed: Annotated[int | None, typer.Option(help="training seed of the runs (recorded in the lineage)")] = None,
    max_drop: Annotated[
        float | None, typer.Option("--max-drop", help="print the best checkpoint whose drop is not resolved above PP")
    ] = None,
    noise_k: Annotated[int, typer.Option("--noise-k", help="noise floor over each run's last K checkpoints")] = 3,
    watch: Annotated[bool, typer.Option("--watch", help="keep polling the runs for new checkpoints")] = False,
    poll: Annotated[float, typer.Option(help="--watch: seconds between polls")] = 30.0,
    settle: Annotated[float, typer.Option(help="--watch: complete once unchanged this long (s)")] = 10.0,
    until_step: Annotated[int | None, typer.Option("--until-step", help="--watch: stop at step N")] = None,
) -> None:
    """The forgetting timeline of training runs: gain and drop against step, per-item turnover, noise floor."""
    from harness import pipeline
    from harness.commandline import eval_config

    try:
        cfg = eval_config(engine, limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt, suite_limit)
        pipeline.check_flags(limit, max_new_tokens, n_boot, batch_size)
        if noise_k < 2:
            raise TrackError(f"--noise-k must be at least 2, got {noise_k}")
        if watch and (poll <= 0 or settle <= 0):
            raise TrackError("--poll and --settle must be positive seconds")
        found = discover_all(list(runs), settle if watch else 0.0)  # bad run dirs fail before any model work
        reg, ckpts, suite_objs = pipeline.resolve(registry, [base], suites)
        out = out or default_out(found, ckpts[0].id, suite_objs, cfg)
        pipeline.check_paths(out, cfg.runs_dir)
        tracker = Tracker(reg, ckpts[0], base, suite_objs, cfg, (trained_on, method, seed), cached_only)
        config = {
            "command": "track",
            "runs": list(runs),
            "base": base,
            "suites": [s.spec for s in suite_objs],
            "registry": str(reg.source or ""),
            "eval": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
            "n_boot": n_boot,
            "noise_k": noise_k,
            "max_drop": max_drop,
            "lineage": {"trained_on": trained_on, "method": method, "seed": seed},
        }
        t0 = time.perf_counter()
        try:
            tl = run_track(found, tracker, out, config, n_boot, noise_k, max_drop, watch, poll, settle, until_step)
        finally:
            tracker.close()
    except (ForgetbenchError, FileNotFoundError) as e:  # every known error: one line, exit 2
        err_console.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    err_console.print(
        f"track: {len(tracker.points)} checkpoint(s) of {len(found)} run(s); report: {out / 'track.html'} "
        f"({time.perf_counter() - t0:.1f} s)",
        highlight=False,
    )
    if max_drop is not None:
        out_console.print(max_drop_line(tl, max_drop), highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    """Add `track` to the main forgetbench app."""
    app.command("track")(track_cmd)
