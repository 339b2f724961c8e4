"""The `forgetbench` command line (typer). Each command is a thin shell over the pipeline stages.

forgetbench compare smollm2-135m reports/ckpt/sft.pt --suites countdown,arithmetic --limit 20
forgetbench eval CKPT ... | report DIR | suites | checkpoints | simulate
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness import gate, leaderboard
from harness.errors import ForgetbenchError
from harness.table import print_comparison, print_scores
from harness.train import cli as train_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure what post-training gained and forgot.")
out_console = Console()
err_console = Console(stderr=True)

RegistryOpt = Annotated[Path, typer.Option("--registry", help="checkpoints.yaml to resolve ids from")]
SuitesOpt = Annotated[
    str | None,
    typer.Option("--suites", help="comma-separated suite specs name[:option[+option]] (default: registry's)"),
]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="first N items of every suite, for a quick look")]
SuiteLimitOpt = Annotated[
    str | None, typer.Option("--suite-limit", help="per-suite item limits overriding --limit, e.g. mmlu=100,ifeval=50")
]
EngineOpt = Annotated[str, typer.Option("--engine", help="fake | hf | vllm")]
EngineOptsOpt = Annotated[
    list[str] | None,
    typer.Option("--engine-opt", help="KEY=VALUE for the engine, repeatable (batching=static, tensor_parallel_size=2)"),
]
RunsOpt = Annotated[str, typer.Option("--runs-dir", help="record store: a path or a URL (s3://, gs://, file://)")]


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _known_errors() -> tuple[type[Exception], ...]:
    from harness.checkpoints.registry import RegistryError
    from harness.compare import ComparisonError
    from harness.engines import EngineError
    from harness.evaluate import MissingRecordsError
    from harness.pipeline import InputError
    from harness.store import StoreError
    from harness.suites import SuiteError

    return (
        InputError,
        RegistryError,
        SuiteError,
        EngineError,
        ComparisonError,
        StoreError,
        MissingRecordsError,
        FileNotFoundError,
    )


def _cfg(
    engine: str,
    limit: int | None,
    runs_dir: Path | str,
    batch_size: int,
    max_new_tokens: int | None,
    dtype: str | None,
    engine_opts: list[str] | None = None,
    suite_limit: str | None = None,
):
    from harness.evaluate import EvalConfig

    return EvalConfig(
        engine=engine,
        limit=limit,
        limits=parse_suite_limits(suite_limit),
        runs_dir=runs_dir,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        engine_options=_engine_options(engine_opts or []),
    )


def parse_suite_limits(text: str | None) -> dict[str, int]:
    """'mmlu=100,ifeval=50' -> {'mmlu': 100, 'ifeval': 50}; a bad entry is a one-line error naming it."""
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, n = part.partition("=")
        if not name.strip() or not n.strip().isdigit() or int(n) < 1:
            raise _fail(f"--suite-limit: expected SUITE=N with N a positive integer, got {part.strip()!r}")
        out[name.strip()] = int(n)
    return out


def _engine_options(pairs: list[str]) -> dict:
    """--engine-opt KEY=VALUE pairs; values read as JSON when they parse (2, 0.5, true), else as strings."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise _fail(f"--engine-opt {pair!r}: expected KEY=VALUE, e.g. tensor_parallel_size=2")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


@app.command()
def compare(
    checkpoints: Annotated[list[str], typer.Argument(help="base first, then candidates: registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    suite_limit: SuiteLimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsOpt = "reports/runs",
    out: Annotated[Path | None, typer.Option("--out", help="output dir (default reports/compare-<hash>)")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per engine call")] = 32,
    max_new_tokens: Annotated[int | None, typer.Option(help="cap every suite's generation length at N tokens")] = None,
    dtype: Annotated[str | None, typer.Option(help="model dtype (default float32)")] = None,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples")] = 1000,
    cached_only: Annotated[bool, typer.Option(help="fail instead of evaluating what is not stored")] = False,
    engine_opt: EngineOptsOpt = None,
    ray_address: Annotated[
        str | None, typer.Option("--ray", help="evaluate as Ray tasks: auto | local | ray://host:port")
    ] = None,
    ray_gpus_per_task: Annotated[
        float | None, typer.Option("--ray-gpus-per-task", help="GPUs per Ray task (default 1 if the cluster has GPUs)")
    ] = None,
    trained_on: Annotated[str | None, typer.Option(help="target suites of every candidate given as a path")] = None,
    method: Annotated[str | None, typer.Option(help="method of every candidate given as a path (sft, grpo...)")] = None,
    noise_floor: Annotated[bool, typer.Option(help="score the base a second time (another batch size/seed)")] = True,
    kl: Annotated[bool, typer.Option(help="KL(base||ckpt) on target prompts (samples + log-probs; slow)")] = False,
    from_logs: Annotated[
        bool, typer.Option("--from-logs", help="checkpoints are lm-eval/Inspect sample logs: NAME=PATH (no model)")
    ] = False,
) -> None:
    """Evaluate (what is not cached), compare with the base, print the table, write the report."""

    if from_logs:  # lm-eval --log_samples / Inspect .eval logs instead of evaluating (harness/logs)
        if limit is not None or suite_limit is not None:
            raise _fail("--limit/--suite-limit do not apply to --from-logs: the logs fix the items")
        return _compare_logs(checkpoints, registry, out, trained_on, method, suites, n_boot)
    try:
        cfg = _cfg(engine, limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt, suite_limit)
        lineage = (trained_on, method)  # for candidates given as paths; recorded in config.json's lineage
        if ray_address and not cached_only:  # Ray tasks fill the store; the comparison below only reads it
            from harness import pipeline
            from harness.distributed import run_plan

            reg, ckpts, suite_objs = pipeline.resolve(registry, checkpoints, suites, lineage)
            run_plan(
                reg, ckpts, suite_objs, cfg, ray_address, ray_gpus_per_task, console=err_console, noise=noise_floor
            )
            cached_only = True  # KL's samples and log-probs are drawn on the driver (probes stay uncached-only)
        probe_opts = {"noise_floor": noise_floor, "kl": kl}
        _compare_and_write(
            registry, checkpoints, suites, cfg, out, n_boot, cached_only, lineage, probe_opts, bool(ray_address)
        )
    except _known_errors() as e:
        raise _fail(str(e)) from None


def _compare_and_write(
    registry: Path,
    specs: list[str],
    suites: str | None,
    cfg,
    out: Path | None,
    n_boot: int,
    cached_only: bool,
    lineage: tuple[str | None, str | None] = (None, None),
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
    try:
        _, out = compare_logs(specs, registry, out, trained_on, method, suites, n_boot,
                              finish=lambda run: print_comparison(out_console, run.comparison))  # fmt: skip
    except (ForgetbenchError, *_known_errors()) as e:  # LogsError: a bad or mismatched log, one line
        raise _fail(str(e)) from None
    err_console.print(f"report: {out / 'report.html'}  ({time.perf_counter() - t0:.1f} s)", highlight=False)


@app.command("eval")
def eval_cmd(
    checkpoints: Annotated[list[str], typer.Argument(help="registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsOpt = "reports/runs",
    batch_size: Annotated[int, typer.Option(help="prompts per engine call")] = 32,
    max_new_tokens: Annotated[int | None, typer.Option(help="cap every suite's generation length at N tokens")] = None,
    dtype: Annotated[str | None, typer.Option(help="model dtype (default float32)")] = None,
    engine_opt: EngineOptsOpt = None,
) -> None:
    """Evaluate checkpoints on suites (cached) and print per-suite scores."""
    from harness import pipeline
    from harness.evaluate import evaluate

    try:
        pipeline.check_flags(limit, max_new_tokens, None, batch_size)
        reg, ckpts, suite_objs = pipeline.resolve(registry, checkpoints, suites)
        pipeline.check_runs_dir(runs_dir)
        results = evaluate(
            reg,
            ckpts,
            suite_objs,
            _cfg(engine, limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt),
            console=err_console,
        )
    except _known_errors() as e:
        raise _fail(str(e)) from None
    print_scores(out_console, results)


@app.command()
def report(
    compare_dir: Annotated[Path, typer.Argument(help="a directory written by `forgetbench compare`")],
    out: Annotated[Path | None, typer.Option("--out", help="where to write (default: the same dir)")] = None,
) -> None:
    """Re-render a comparison from stored records (rescoring with the current scorers); never loads a model."""
    from harness.evaluate import EvalConfig

    cfg_path = compare_dir / "config.json"
    if not cfg_path.exists():
        raise _fail(f"{cfg_path}: not found (is {compare_dir} a compare output directory?)")
    try:
        config = json.loads(cfg_path.read_text())
        if "from_logs" in config:  # a comparison of lm-eval/Inspect logs: read them again (harness/logs)
            from harness.logs.run import rerun

            rerun(config, out or compare_dir, finish=lambda run: print_comparison(out_console, run.comparison))
            return
        ev = config["eval"]
        cfg = EvalConfig(**ev)  # runs_dir stays a string: it may be a URL
        suites = ",".join(config["suites"])
        registry = Path(config["registry"] or "checkpoints.yaml")
        n_boot = config.get("n_boot", 1000)
        probes = config.get("probes")  # an older dir has none
        _compare_and_write(
            registry, config["checkpoints"], suites, cfg, out or compare_dir, n_boot, True, probe_opts=probes
        )
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise _fail(f"{cfg_path}: malformed ({e})") from None
    except _known_errors() as e:
        raise _fail(str(e)) from None
    except ForgetbenchError as e:  # e.g. harness.logs.LogsError: the logs moved or changed since
        raise _fail(str(e)) from None


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

    try:
        reg = Registry.load(registry)
    except RegistryError as e:
        raise _fail(str(e), 1) from None
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
        raise _fail(f"{bad} checkpoint(s) in {registry} have missing files", 1)


@app.command()
def data(suites: SuitesOpt = None) -> None:
    """Fetch every suite's pinned data files into the data cache (sha256-checked); run once at setup."""
    from harness.data import DataError, fetch
    from harness.suites import SuiteError, all_suites, parse_suites

    try:
        chosen = parse_suites(suites) if suites is not None else list(all_suites().values())
    except SuiteError as e:
        raise _fail(str(e)) from None
    try:
        for s in chosen:
            for spec in s.data_files:
                out_console.print(f"{s.name}: {fetch(spec)}", highlight=False)
    except DataError as e:
        raise _fail(str(e)) from None


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


def main() -> None:  # pragma: no cover - console entry for `python -m harness.cli`
    app()


if __name__ == "__main__":
    sys.exit(main())
