"""The `forgetbench` command line (typer). Each command is a thin shell over the pipeline stages.

forgetbench compare smollm2-135m reports/ckpt/sft.pt --suites countdown,arithmetic --limit 20
forgetbench eval CKPT ... | report DIR | suites | checkpoints | cache | simulate
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness import datascore, gate, leaderboard, track
from harness.commandline import (
    App,
    BatchSizeOpt,
    CachedOnlyOpt,
    DtypeOpt,
    EngineOpt,
    EngineOptsOpt,
    LimitOpt,
    MaxNewTokensOpt,
    MethodOpt,
    NBootOpt,
    RegistryOpt,
    RunsDirOpt,
    SuiteLimitOpt,
    SuitesOpt,
    TrainedOnOpt,
    UsageError,
    err_console,
    eval_config,
    fail_line,
)
from harness.table import print_comparison, print_scores
from harness.train import cli as train_cli

app = App(no_args_is_help=True, help="Measure what post-training gained and forgot.")
out_console = Console()


@app.command()
def compare(
    checkpoints: Annotated[list[str], typer.Argument(help="base first, then candidates: registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    suite_limit: SuiteLimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsDirOpt = "reports/runs",
    out: Annotated[Path | None, typer.Option("--out", help="output dir (default reports/compare-<hash>)")] = None,
    batch_size: BatchSizeOpt = 32,
    max_new_tokens: MaxNewTokensOpt = None,
    dtype: DtypeOpt = None,
    n_boot: NBootOpt = 1000,
    cached_only: CachedOnlyOpt = False,
    engine_opt: EngineOptsOpt = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray", help="evaluate as Ray tasks: auto | local | ray://host:port")
    ] = None,
    ray_gpus_per_task: Annotated[
        float | None, typer.Option("--ray-gpus-per-task", help="GPUs per Ray task (default 1 if the cluster has GPUs)")
    ] = None,
    trained_on: TrainedOnOpt = None,
    method: MethodOpt = None,
    group: Annotated[str | None, typer.Option(help="replicate group of every candidate given as a path")] = None,
    noise_floor: Annotated[bool, typer.Option(help="score the base a second time (another batch size/seed)")] = True,
    kl: Annotated[bool, typer.Option(help="KL(base||ckpt) on target prompts (samples + log-probs; slow)")] = False,
    from_logs: Annotated[
        bool, typer.Option("--from-logs", help="checkpoints are lm-eval/Inspect sample logs: NAME=PATH (no model)")
    ] = False,
) -> None:
    """Evaluate (what is not cached), compare with the base, print the table, write the report."""

    if from_logs:  # lm-eval --log_samples / Inspect .eval logs instead of evaluating (harness/logs)
        if limit is not None or suite_limit is not None:
            raise UsageError("--limit/--suite-limit do not apply to --from-logs: the logs fix the items")
        return _compare_logs(checkpoints, registry, out, trained_on, method, suites, n_boot)
    cfg = eval_config(engine, limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt, suite_limit)
    lineage = (trained_on, method, group)  # for candidates given as paths; recorded in config.json's lineage
    if ray_address and not cached_only:  # Ray tasks fill the store; the comparison below only reads it
        from harness import pipeline
        from harness.distributed import run_plan

        reg, ckpts, suite_objs = pipeline.resolve(registry, checkpoints, suites, lineage)
        run_plan(reg, ckpts, suite_objs, cfg, ray_address, ray_gpus_per_task, console=err_console, noise=noise_floor)
        cached_only = True  # KL's samples and log-probs are drawn on the driver (probes stay uncached-only)
    probe_opts = {"noise_floor": noise_floor, "kl": kl}
    _compare_and_write(
        registry, checkpoints, suites, cfg, out, n_boot, cached_only, lineage, probe_opts, bool(ray_address)
    )


def _compare_and_write(
    registry: Path,
    specs: list[str],
    suites: str | None,
    cfg,
    out: Path | None,
    n_boot: int,
    cached_only: bool,
    lineage: tuple[str | None, ...] = (None, None),
    probe_opts: dict | None = None,
    probes_may_evaluate: bool = False,
) -> None:
    """The shared pipeline (harness/pipeline.py); the table is printed before the outputs land as one unit."""
    from harness import pipeline

    t0 = time.perf_counter()
    _, out = pipeline.run(
        registry,
        specs,
        suites,
        cfg,
        out,
        n_boot,
        cached_only=cached_only,
        console=err_console,
        lineage=lineage,
        probe_opts=probe_opts,
        probes_cached_only=cached_only and not probes_may_evaluate,
        finish=lambda run: print_comparison(out_console, run.comparison),
    )
    err_console.print(f"report: {out / 'report.html'}  ({time.perf_counter() - t0:.1f} s)", highlight=False)


def _compare_logs(specs: list[str], registry: Path, out: Path | None, trained_on, method, suites, n_boot: int) -> None:
    from harness.logs.run import compare_logs

    t0 = time.perf_counter()
    _, out = compare_logs(specs, registry, out, trained_on, method, suites, n_boot,
                          finish=lambda run: print_comparison(out_console, run.comparison))  # fmt: skip
    err_console.print(f"report: {out / 'report.html'}  ({time.perf_counter() - t0:.1f} s)", highlight=False)


@app.command("eval")
def eval_cmd(
    checkpoints: Annotated[list[str], typer.Argument(help="registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    suite_limit: SuiteLimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsDirOpt = "reports/runs",
    batch_size: BatchSizeOpt = 32,
    max_new_tokens: MaxNewTokensOpt = None,
    dtype: DtypeOpt = None,
    engine_opt: EngineOptsOpt = None,
) -> None:
    """Evaluate checkpoints on suites (cached) and print per-suite scores."""
    from harness import pipeline
    from harness.evaluate import evaluate

    pipeline.check_flags(limit, max_new_tokens, None, batch_size)
    cfg = eval_config(engine, limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt, suite_limit)
    reg, ckpts, suite_objs = pipeline.resolve(registry, checkpoints, suites)
    pipeline.check_runs_dir(runs_dir)
    pipeline.check_config(cfg, suite_objs)
    print_scores(out_console, evaluate(reg, ckpts, suite_objs, cfg, console=err_console))


@app.command()
def report(
    compare_dir: Annotated[Path, typer.Argument(help="a directory written by `forgetbench compare`")],
    out: Annotated[Path | None, typer.Option("--out", help="where to write (default: the same dir)")] = None,
) -> None:
    """Re-render a comparison from stored records (rescoring with the current scorers); never loads a model."""
    from harness.evaluate import EvalConfig

    cfg_path = compare_dir / "config.json"
    if not cfg_path.exists():
        raise UsageError(f"{cfg_path}: not found (is {compare_dir} a compare output directory?)")
    try:
        config = json.loads(cfg_path.read_text())
        if "from_logs" in config:  # a comparison of lm-eval/Inspect logs: read them again (harness/logs)
            from harness.logs.run import rerun

            rerun(config, out or compare_dir, finish=lambda run: print_comparison(out_console, run.comparison))
            return
        ev = config["eval"]
        cfg = EvalConfig(**ev)  # runs_dir stays a string: it may be a URL
        suites = ",".join(config["suites"])
        registry = Path(config["registry"]) if config["registry"] else None  # none then: none now
        n_boot = config.get("n_boot", 1000)
        probes = config.get("probes")  # an older dir has none
        _compare_and_write(
            registry, config["checkpoints"], suites, cfg, out or compare_dir, n_boot, True, probe_opts=probes
        )
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise UsageError(f"{cfg_path}: malformed ({e})") from None


@app.command("suites")
def suites_cmd(counts: Annotated[bool, typer.Option(help="load each suite to count items")] = True) -> None:
    """List suites with kind, area, data and scorer versions, options, size and description."""
    from harness.listing import suites_table

    out_console.print(suites_table(out_console.width, counts))


@app.command("checkpoints")
def checkpoints_cmd(
    registry: RegistryOpt = Path("checkpoints.yaml"),
    fingerprints: Annotated[bool, typer.Option(help="hash weights (slow on first run)")] = False,
) -> None:
    """List and validate the registry (exit 1 when an entry's files are missing)."""
    from rich.table import Table

    from harness.checkpoints.registry import Registry, RegistryError
    from harness.checkpoints.weights import fingerprint, local_files

    reg = Registry.load(registry)
    table = Table("id", "method", "base", "trained_on", "format", "path", "status")
    bad = 0
    for c in reg.by_id.values():
        try:
            exists = local_files(c).exists()  # hub ids: their snapshot in the hub cache
            status = ("ok " + fingerprint(c) if fingerprints else "ok") if exists else "missing file"
        except RegistryError as e:
            exists, status = False, str(e)
        bad += not exists
        table.add_row(c.id, c.method, c.base or "", ",".join(c.trained_on), c.format, c.path, status)
    out_console.print(table)
    if bad:
        fail_line(f"{bad} checkpoint(s) in {registry} have missing files")
        raise typer.Exit(1)


@app.command()
def cache(
    registry: Annotated[
        Path | None, typer.Option("--registry", help="name the checkpoint each materialised model was written from")
    ] = None,
    clear_models: Annotated[
        bool, typer.Option("--clear-models", help="remove materialised models (rebuilt when next needed)")
    ] = False,
    unused_days: Annotated[
        float | None, typer.Option("--unused-days", min=0, help="with --clear-models: only those unused this long")
    ] = None,
) -> None:
    """What $FORGETBENCH_HOME holds (materialised models, data, fingerprints); --clear-models frees the models."""
    from harness import cachedir

    if unused_days is not None and not clear_models:
        raise UsageError("--unused-days only applies with --clear-models")
    if clear_models:
        n, freed = cachedir.clear_models(unused_days)
        when = "" if unused_days is None else f" unused for {unused_days:g} day(s)"
        out_console.print(f"removed {n} materialised model(s){when}: {cachedir.human(freed)} freed", highlight=False)
    entries = cachedir.materialised()
    for area, (path, size) in cachedir.area_sizes(entries).items():
        out_console.print(f"{area:>12}  {cachedir.human(size):>9}  {path}", highlight=False, soft_wrap=True)
    if registry is not None:
        for line in cachedir.name_owners(entries, registry):
            err_console.print(f"not matched: {line}", highlight=False, soft_wrap=True)
    for m in entries:  # plain lines, least recently used first: greppable, and keys are never cut
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(m.last_used))
        state = "unfinished (a killed run's)" if m.unfinished else ", ".join(m.owners)
        if registry is not None and not state:
            state = "(no checkpoint in the registry)"
        out_console.print(
            f"{cachedir.human(m.bytes):>9}  {used}  {m.key}  {state}".rstrip(), highlight=False, soft_wrap=True
        )


@app.command()
def data(suites: SuitesOpt = None) -> None:
    """Fetch every suite's pinned data files into the data cache (sha256-checked); run once at setup."""
    from harness.data import fetch
    from harness.suites import all_suites, parse_suites

    chosen = parse_suites(suites) if suites is not None else list(all_suites().values())
    for s in chosen:
        for spec in s.data_files:
            out_console.print(f"{s.name}: {fetch(spec)}", highlight=False)


@app.command()
def simulate(
    seeds: Annotated[int, typer.Option(help="seeds to average over")] = 5,
    out: Annotated[Path, typer.Option("--out", help="HTML page")] = Path("reports/simulate.html"),
    as_json: Annotated[bool, typer.Option("--json", help="print machine-readable results only")] = False,
    threshold: Annotated[float, typer.Option(help="gain threshold for matched-gain drop")] = 0.9,
) -> None:
    """The paper's mixture-of-Gaussians experiment: forward vs reverse KL forgetting."""
    from harness.simulate.report import run_and_render

    raise typer.Exit(run_and_render(seeds=seeds, out=out, as_json=as_json, threshold=threshold))


# Commands that live with their stage; their modules import torch only inside the command.
train_cli.register(app)
gate.register(app)
leaderboard.register(app)
datascore.register(app)
track.register(app)


def main() -> None:  # pragma: no cover - console entry for `python -m harness.cli`
    app()


if __name__ == "__main__":
    sys.exit(main())
