"""The command line's one layer: the options every evaluating command shares, and the one error handler.

Options that mean the same thing in `compare`, `eval`, `gate`, `track` and `report` are declared here once
(`RunsDirOpt` is a string, so a URL store such as memory://runs or s3://bucket/runs reaches the Store as a URL
in every command) and turned into an EvalConfig by `eval_config`. Errors: every error the tool can explain
subclasses harness.errors.ForgetbenchError; `App` catches that class in one place and prints one line, exit
`exit_code` (2 unless the class says otherwise). Anything else is a bug and keeps its traceback.

    forgetbench eval base.fake.json --engine fake --suites arithmetic --limit 4 --runs-dir memory://runs
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from typer.core import TyperCommand, TyperGroup

from harness.errors import ForgetbenchError

if TYPE_CHECKING:
    from harness.evaluate import EvalConfig

err_console = Console(stderr=True)


class UsageError(ForgetbenchError):
    """A flag whose value cannot mean anything (names the flag)."""


def fail_line(msg: str) -> None:
    """The one way an error reaches the user: one line on stderr."""
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)


class _Known:
    """Runs a command and turns a known error into one line and its exit code (the one catch)."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ForgetbenchError as e:
            fail_line(str(e).splitlines()[0] if str(e) else type(e).__name__)
            ctx.exit(e.exit_code)
        except FileNotFoundError as e:  # a path the user named that is not there: their input, not our bug
            fail_line(f"{e.filename or ''}: not found" if e.filename else str(e))
            ctx.exit(2)


class _Group(_Known, TyperGroup):
    """An app of several commands (forgetbench)."""


class Command(_Known, TyperCommand):
    """A command standing alone (`python -m harness.train.cli`): a one-command typer app is not a group."""


def App(**kwargs: Any) -> typer.Typer:  # noqa: N802 (reads as the class it builds)
    """A typer app whose subcommands share the one error handler."""
    return typer.Typer(cls=_Group, add_completion=False, **kwargs)


# -- options shared by the evaluating commands (compare, eval, gate, track, report) --------------------------
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
RunsDirOpt = Annotated[str, typer.Option("--runs-dir", help="record store: a path or a URL (s3://, gs://, memory://)")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", help="prompts per engine call")]
MaxNewTokensOpt = Annotated[
    int | None, typer.Option("--max-new-tokens", help="cap every suite's generation length at N tokens")
]
DtypeOpt = Annotated[str | None, typer.Option("--dtype", help="model dtype (default float32)")]
NBootOpt = Annotated[int, typer.Option("--n-boot", help="bootstrap resamples")]
CachedOnlyOpt = Annotated[bool, typer.Option("--cached-only", help="fail instead of evaluating what is not stored")]
TrainedOnOpt = Annotated[
    str | None, typer.Option("--trained-on", help="target suites of every candidate given as a path")
]
MethodOpt = Annotated[
    str | None, typer.Option("--method", help="method of every candidate given as a path (sft, grpo)")
]
RUNS_DIR = "reports/runs"


def parse_suite_limits(text: str | None) -> dict[str, int]:
    """'mmlu=100,ifeval=50' -> {'mmlu': 100, 'ifeval': 50}; a bad entry is a one-line error naming it."""
    out: dict[str, int] = {}
    for part in (text or "").split(","):
        if not part.strip():
            continue
        name, _, n = part.partition("=")
        if not name.strip() or not n.strip().isdigit() or int(n) < 1:
            raise UsageError(f"--suite-limit: expected SUITE=N with N a positive integer, got {part.strip()!r}")
        out[name.strip()] = int(n)
    return out


def engine_options(pairs: list[str] | None) -> dict[str, Any]:
    """--engine-opt KEY=VALUE pairs; values read as JSON when they parse (2, 0.5, true), else as strings."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.isidentifier():
            raise UsageError(f"--engine-opt {pair!r}: expected KEY=VALUE, e.g. tensor_parallel_size=2")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def eval_config(
    engine: str = "hf",
    limit: int | None = None,
    runs_dir: Path | str = RUNS_DIR,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    dtype: str | None = None,
    engine_opts: list[str] | None = None,
    suite_limit: str | None = None,
) -> EvalConfig:
    """The shared options as the evaluation's config (saved in every output's config.json)."""
    from harness.evaluate import EvalConfig

    return EvalConfig(
        engine=engine,
        limit=limit,
        limits=parse_suite_limits(suite_limit),
        runs_dir=str(runs_dir),
        batch_size=batch_size,
        max_new_tokens=max_new_tokens,
        dtype=dtype,
        engine_options=engine_options(engine_opts),
    )
