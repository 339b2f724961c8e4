"""`forgetbench train METHOD --suite SUITE --base CKPT ...`: the reference trainer's command line.

The options are generated from the config dataclasses (harness/train/config.py): every field of any method's
config is an option named after it (`--max-steps` for max_steps), its help is the field's comment, and a field
added to a config is an option with no edit here. Options left out take the method's default; an option that
does not apply to the method is a one-line error (make_config). `register(app)` adds the command to the main CLI;
`python -m harness.train.cli METHOD ...` runs it alone.

    python -m harness.train.cli sft --suite countdown --base smollm2-135m --train-limit 32 --batch-size 8 \\
        --max-steps 2 --no-register
"""

from __future__ import annotations

import inspect
import re
import typing
from dataclasses import fields
from functools import cache
from typing import Annotated, Any

import typer

from harness.commandline import App, Command, UsageError, err_console
from harness.train.config import CONFIGS, TrainConfig

# Fields set by the method itself, never by a flag: the method's advantage estimator and AdamW's constants.
_FIXED = {"advantage", "adam_betas"}
# Fields whose flag reads differently from the field: `--no-register` prints the entries instead.
_RENAMED = {"register": "--register/--no-register"}


@cache
def _field_help() -> dict[str, str]:
    """Each config field's trailing comment (the documentation the dataclasses already carry)."""
    out: dict[str, str] = {}
    for cls in CONFIGS.values():
        for klass in cls.__mro__:
            if not (isinstance(klass, type) and issubclass(klass, TrainConfig)):
                continue
            for line in inspect.getsource(klass).splitlines():
                m = re.match(r"\s+(\w+): [^=]+= .*?#\s*(.+)$", line) or re.match(r"\s+(\w+): [^#=]+#\s*(.+)$", line)
                if m:
                    out.setdefault(m.group(1), m.group(2).strip())
    return out


def _steps(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise UsageError(f"--save-steps: expected comma-separated integers, got {text!r}") from None


def _option_type(hint: Any) -> Any:
    """The flag's type: the field's scalar type, optional (None = "the method's default")."""
    if typing.get_origin(hint) is tuple:  # save_steps: comma-separated integers on the command line
        return str | None
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = args[0] if args else hint
    return base | None


def _parameters() -> list[inspect.Parameter]:
    """One keyword parameter per config field (the union over methods), in declaration order."""
    helps = _field_help()
    seen: dict[str, inspect.Parameter] = {}
    for cls in CONFIGS.values():
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            if f.name in seen or f.name in _FIXED or f.name in ("suite", "base"):
                continue
            help_ = helps.get(f.name, "")  # defaults differ by method: `make_config` fills them in
            names = [_RENAMED.get(f.name, "--" + f.name.replace("_", "-"))]
            opt = typer.Option(*names, help=help_ or None)
            seen[f.name] = inspect.Parameter(
                f.name,
                inspect.Parameter.KEYWORD_ONLY,
                default=None,
                annotation=Annotated[_option_type(hints[f.name]), opt],
            )
    return list(seen.values())


def train_cmd(
    method: str,
    suite: str,
    base: str,
    track: str | None = None,
    track_limit: int = 50,
    runs_dir: str = "reports/runs",
    **given: Any,
) -> None:
    """Train a checkpoint with SFT, Self-SFT, Iterative-SFT, GRPO, REINFORCE or GRPO without KL."""
    from harness.train.config import make_config
    from harness.train.run import train

    given = {k: v for k, v in given.items() if v is not None}
    if "save_steps" in given:
        given["save_steps"] = _steps(given["save_steps"])
    cfg = make_config(method, suite=suite, base=base, **given)
    probe = None
    if track:  # checked (suites, base, store) before any training
        from harness.integrations.probe import ForgettingProbe

        probe = ForgettingProbe(
            base, track, track_limit, runs_dir=runs_dir, registry=cfg.registry, run=cfg.name or "train"
        )
    train(cfg, console=err_console, probe=probe)


def _command() -> Any:
    """train_cmd with a signature typer reads: METHOD, --suite, --base, then one option per config field."""

    def command(**kwargs: Any) -> None:
        train_cmd(**kwargs)

    head = [
        inspect.Parameter(
            "method",
            inspect.Parameter.POSITIONAL_OR_KEYWORD,
            annotation=Annotated[str, typer.Argument(help=f"{' | '.join(CONFIGS)}")],
        ),
        inspect.Parameter(
            "suite",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[
                str, typer.Option("--suite", help="suite to train on (its train split; its score is the reward)")
            ],
        ),
        inspect.Parameter(
            "base",
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[str, typer.Option("--base", help="initial checkpoint: registry id or path")],
        ),
    ]
    # --track and its options are not training config: the checkpoints do not depend on them
    tracking = [
        inspect.Parameter(
            "track",
            inspect.Parameter.KEYWORD_ONLY,
            default=None,
            annotation=Annotated[
                str | None,
                typer.Option("--track", help="score each saved checkpoint against --base on these suites"),
            ],
        ),
        inspect.Parameter(
            "track_limit",
            inspect.Parameter.KEYWORD_ONLY,
            default=50,
            annotation=Annotated[int, typer.Option("--track-limit", help="--track: first N items of each suite")],
        ),
        inspect.Parameter(
            "runs_dir",
            inspect.Parameter.KEYWORD_ONLY,
            default="reports/runs",
            annotation=Annotated[str, typer.Option("--runs-dir", help="--track: the record store")],
        ),
    ]
    command.__signature__ = inspect.Signature([*head, *_parameters(), *tracking])  # type: ignore[attr-defined]
    command.__doc__ = train_cmd.__doc__
    command.__annotations__ = {}
    return command


def register(app: typer.Typer) -> None:
    """Add `train` to the main forgetbench app."""
    app.command("train")(_command())


app = App(help="The forgetbench reference trainer.")
app.command(cls=Command)(_command())

if __name__ == "__main__":
    app()
