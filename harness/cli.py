"""The `forgetbench` command line (typer). Each command is a thin shell over the pipeline stages.

forgetbench compare smollm2-135m reports/ckpt/sft.pt --suites countdown,arithmetic --limit 20
forgetbench eval CKPT ... | report DIR | suites | checkpoints | simulate
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from harness import gate, leaderboard
from harness.table import print_comparison, print_scores
from harness.train import cli as train_cli

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Measure what post-training gained and forgot.")
out_console = Console()
err_console = Console(stderr=True)

RegistryOpt = Annotated[Path, typer.Option("--registry", help="checkpoints.yaml to resolve ids from")]
SuitesOpt = Annotated[str | None, typer.Option("--suites", help="comma-separated suite names (default: registry's)")]
LimitOpt = Annotated[int | None, typer.Option("--limit", help="first N items of every suite, for a quick look")]
EngineOpt = Annotated[str, typer.Option("--engine", help="fake | hf | vllm")]
RunsOpt = Annotated[Path, typer.Option("--runs-dir", help="record store")]


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _known_errors() -> tuple[type[Exception], ...]:
    from harness.compare import ComparisonError
    from harness.engines import EngineError
    from harness.evaluate import MissingRecordsError
    from harness.registry import RegistryError
    from harness.store import StoreError
    from harness.suites import SuiteError

    return (
        RegistryError,
        SuiteError,
        EngineError,
        ComparisonError,
        StoreError,
        MissingRecordsError,
        FileNotFoundError,
    )


def _resolve(registry_path: Path, specs: list[str], suites_arg: str | None):
    from harness.registry import Registry
    from harness.suites import get_suite

    registry = Registry.load(registry_path)
    ckpts, seen = [], set()
    for spec in specs:
        c = registry.resolve(spec)
        if c.id in seen:  # two paths with the same file name: keep both, distinctly named
            from dataclasses import replace

            c = replace(c, id=f"{c.id}-{len(seen)}")
        seen.add(c.id)
        ckpts.append(c)
    names = [s.strip() for s in suites_arg.split(",")] if suites_arg else list(registry.default_suites)
    return registry, ckpts, [get_suite(n) for n in names if n]


def _cfg(
    engine: str,
    limit: int | None,
    runs_dir: Path,
    batch_size: int,
    max_new_tokens: int | None,
    dtype: str | None,
):
    from harness.evaluate import EvalConfig

    return EvalConfig(
        engine=engine,
        limit=limit,
        runs_dir=runs_dir,
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
    )


@app.command()
def compare(
    checkpoints: Annotated[list[str], typer.Argument(help="base first, then candidates: registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsOpt = Path("reports/runs"),
    out: Annotated[Path | None, typer.Option("--out", help="output dir (default reports/compare-<hash>)")] = None,
    batch_size: Annotated[int, typer.Option(help="prompts per engine call")] = 32,
    max_new_tokens: Annotated[int | None, typer.Option(help="override suites' generation length")] = None,
    dtype: Annotated[str | None, typer.Option(help="model dtype (default float32)")] = None,
    n_boot: Annotated[int, typer.Option(help="bootstrap resamples")] = 1000,
    cached_only: Annotated[bool, typer.Option(help="fail instead of evaluating what is not stored")] = False,
    noise_floor: Annotated[bool, typer.Option(help="score the base a second time (another batch size/seed)")] = True,
    kl: Annotated[bool, typer.Option(help="KL(base||ckpt) on target prompts (samples + log-probs; slow)")] = False,
) -> None:
    """Evaluate (what is not cached), compare with the base, print the table, write the report."""
    try:
        reg, ckpts, suite_objs = _resolve(registry, checkpoints, suites)
        cfg = _cfg(engine, limit, runs_dir, batch_size, max_new_tokens, dtype)
        out = out or Path("reports") / f"compare-{_slug(ckpts, suite_objs, cfg)}"
        probe_opts = {"noise_floor": noise_floor, "kl": kl}
        _compare_and_write(reg, ckpts, suite_objs, cfg, out, n_boot, checkpoints, cached_only, probe_opts)
    except _known_errors() as e:
        raise _fail(str(e)) from None


def _slug(ckpts, suite_objs, cfg) -> str:
    from harness.types import stable_hash

    names = "-".join(c.id for c in ckpts)[:60]
    return f"{names}-{stable_hash([[c.id for c in ckpts], [s.ident for s in suite_objs], cfg.limit, cfg.engine], 6)}"


def _compare_and_write(
    reg, ckpts, suite_objs, cfg, out: Path, n_boot: int, specs: list[str], cached_only: bool, probe_opts=None
) -> None:
    from harness.compare import compare as run_compare
    from harness.evaluate import evaluate
    from harness.report import render_html, write_json, write_parquet
    from harness.suites import load_items

    t0 = time.perf_counter()
    results = evaluate(reg, ckpts, suite_objs, cfg, console=err_console, cached_only=cached_only)
    prompts = {
        s.name: {it.id: (s.prompt(it)[-1]["content"], _reference(s, it)) for it in load_items(s, cfg.limit)}
        for s in suite_objs
    }
    # -- probes (harness/probes.py): noise floor and KL, cached like evaluations; recorded in config.json --
    from harness.probes import run_probes

    probe_opts = probe_opts or {"noise_floor": False, "kl": False}  # `report` of an older dir: none
    extra = run_probes(reg, ckpts, suite_objs, cfg, err_console, probe_opts["noise_floor"], probe_opts["kl"],
                       cached_only)  # fmt: skip
    # -- end of probes --
    base = ckpts[0]
    cands = [(c.id, c.method, c.trained_on) for c in ckpts[1:]]
    comp = run_compare(results, base.id, cands, prompts, n_boot=n_boot, **extra)
    print_comparison(out_console, comp)
    config = {
        "checkpoints": specs,
        "suites": [s.name for s in suite_objs],
        "registry": str(reg.source or ""),
        "eval": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "n_boot": n_boot,
        "lineage": {c.id: c.to_dict() for c in ckpts},
        "probes": probe_opts,
    }
    out.mkdir(parents=True, exist_ok=True)
    _write_text(out / "config.json", json.dumps(config, indent=1, default=str))
    html = render_html(comp, out / "report.html", config=config)
    write_json(comp, out / "results.json", config=config)
    write_parquet(comp, out / "results.parquet")
    err_console.print(f"report: {html}  ({time.perf_counter() - t0:.1f} s)", highlight=False)


def _reference(suite, item) -> str:
    """The gold answer for the forgotten-items browser; suites without one (IFEval) show their checks."""
    if not suite.has_reference:
        return "(no reference answer: scored by the suite's checkers)"
    return suite.reference(item)


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@app.command("eval")
def eval_cmd(
    checkpoints: Annotated[list[str], typer.Argument(help="registry ids or paths")],
    suites: SuitesOpt = None,
    limit: LimitOpt = None,
    engine: EngineOpt = "hf",
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsOpt = Path("reports/runs"),
    batch_size: Annotated[int, typer.Option(help="prompts per engine call")] = 32,
    max_new_tokens: Annotated[int | None, typer.Option(help="override suites' generation length")] = None,
    dtype: Annotated[str | None, typer.Option(help="model dtype (default float32)")] = None,
) -> None:
    """Evaluate checkpoints on suites (cached) and print per-suite scores."""
    from harness.evaluate import evaluate

    try:
        reg, ckpts, suite_objs = _resolve(registry, checkpoints, suites)
        results = evaluate(
            reg,
            ckpts,
            suite_objs,
            _cfg(engine, limit, runs_dir, batch_size, max_new_tokens, dtype),
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
        ev = config["eval"]
        cfg = EvalConfig(**(ev | {"runs_dir": Path(ev["runs_dir"])}))
        reg, ckpts, suite_objs = _resolve(
            Path(config["registry"] or "checkpoints.yaml"), config["checkpoints"], ",".join(config["suites"])
        )
        _compare_and_write(
            reg,
            ckpts,
            suite_objs,
            cfg,
            out or compare_dir,
            config.get("n_boot", 1000),
            config["checkpoints"],
            cached_only=True,
            probe_opts=config.get("probes"),
        )
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise _fail(f"{cfg_path}: malformed ({e})") from None
    except _known_errors() as e:
        raise _fail(str(e)) from None


@app.command("suites")
def suites_cmd(counts: Annotated[bool, typer.Option(help="load each suite to count items")] = True) -> None:
    """List suites with kind, area, version and size."""
    from rich.table import Table

    from harness.suites import all_suites, unavailable_suites

    table = Table("suite", "kind", "area", "version", "items", "description")
    for name, why in sorted(unavailable_suites().items()):
        table.add_row(name, "", "", "", "unavailable", why)
    for name, s in sorted(all_suites().items()):
        try:
            size = str(len(s.load())) if counts else "-"
        except Exception as e:  # a suite whose data is absent still lists, with the reason
            size = "needs hub data" if s.needs_hub else f"unavailable ({str(e).splitlines()[0][:40]})"
        table.add_row(name, s.kind, s.area, s.version, size, s.description)
    out_console.print(table)


@app.command("checkpoints")
def checkpoints_cmd(
    registry: RegistryOpt = Path("checkpoints.yaml"),
    fingerprints: Annotated[bool, typer.Option(help="hash weights (slow on first run)")] = False,
) -> None:
    """List and validate the registry (exit 1 when an entry's files are missing)."""
    from rich.table import Table

    from harness.registry import Registry, RegistryError
    from harness.weights import embedded_path, fingerprint

    try:
        reg = Registry.load(registry)
    except RegistryError as e:
        raise _fail(str(e), 1) from None
    table = Table("id", "method", "base", "trained_on", "format", "path", "status")
    bad = 0
    for c in reg.by_id.values():
        try:
            exists = embedded_path(c.path).exists() if c.format == "embedded" else Path(c.path).exists()
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
    from harness.suites import all_suites, get_suite

    chosen = [get_suite(n.strip()) for n in suites.split(",")] if suites else list(all_suites().values())
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
    from harness.simulate import cli_main

    raise typer.Exit(cli_main(seeds=seeds, out=out, as_json=as_json, threshold=threshold))


# Commands that live with their stage; their modules import torch only inside the command.
train_cli.register(app)
gate.register(app)
leaderboard.register(app)


def main() -> None:  # pragma: no cover - console entry for `python -m harness.cli`
    app()


if __name__ == "__main__":
    sys.exit(main())
