"""`forgetbench train METHOD --suite SUITE --base CKPT ...`: the reference trainer's command line.

`register(app)` adds the command to the main CLI; `python -m harness.train.cli METHOD ...` runs it alone.
Options left out take the method's default (harness/train/config.py, from the paper's recipes).

    python -m harness.train.cli sft --suite countdown --base smollm2-135m --train-limit 32 --batch-size 8 \\
        --max-steps 2 --no-register
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

err_console = Console(stderr=True)


def _fail(msg: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {msg}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _steps(text: str | None) -> tuple[int, ...] | None:
    if not text:
        return None
    try:
        return tuple(sorted({int(x) for x in text.split(",") if x.strip()}))
    except ValueError:
        raise _fail(f"--save-steps: expected comma-separated integers, got {text!r}") from None


def train_cmd(
    method: Annotated[str, typer.Argument(help="sft | self-sft | iter-sft | grpo | reinforce | grpo-nokl")],
    suite: Annotated[str, typer.Option("--suite", help="suite to train on (its train split; its score is the reward)")],
    base: Annotated[str, typer.Option("--base", help="initial checkpoint: registry id or path")],
    name: Annotated[str | None, typer.Option(help="registry id of the final checkpoint")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="output folder (default reports/train/NAME)")] = None,
    registry: Annotated[Path, typer.Option("--registry", help="resolves --base; gets the entries")] = Path(
        "checkpoints.yaml"
    ),
    no_register: Annotated[bool, typer.Option("--no-register", help="print the entries instead")] = False,
    seed: Annotated[int | None, typer.Option(help="random seed (default 0)")] = None,
    lr: Annotated[float | None, typer.Option(help="peak learning rate (sft 1e-4, rl 5e-6)")] = None,
    schedule: Annotated[str | None, typer.Option(help="cosine | constant")] = None,
    warmup_ratio: Annotated[float | None, typer.Option(help="warmup fraction (cosine)")] = None,
    epochs: Annotated[int | None, typer.Option(help="passes over the data (iter-sft: rounds); default 2")] = None,
    max_steps: Annotated[int | None, typer.Option(help="stop after N optimizer steps")] = None,
    batch_size: Annotated[int | None, typer.Option(help="sequences per step (rl: prompts per step)")] = None,
    micro_batch_size: Annotated[int | None, typer.Option(help="sequences per forward/backward")] = None,
    train_limit: Annotated[int | None, typer.Option(help="first N items of the train split")] = None,
    max_seq_len: Annotated[int | None, typer.Option(help="drop longer SFT examples")] = None,
    lora_r: Annotated[int | None, typer.Option(help="LoRA rank (0 = full fine-tuning); merged before saving")] = None,
    lora_alpha: Annotated[int | None, typer.Option(help="LoRA alpha (default 2 * rank)")] = None,
    gradient_checkpointing: Annotated[bool, typer.Option(help="recompute activations to save memory")] = False,
    mixed_precision: Annotated[str | None, typer.Option(help="no | bf16 | fp16 (GPU)")] = None,
    engine: Annotated[str | None, typer.Option(help="rollout engine: hf | vllm")] = None,
    rollout_batch_size: Annotated[int | None, typer.Option(help="prompts per hf generate call")] = None,
    sync_tol: Annotated[float | None, typer.Option(help="max per-token log-prob gap engine vs policy")] = None,
    save_steps: Annotated[str | None, typer.Option(help="also save at these steps, e.g. 50,100")] = None,
    save_every: Annotated[int | None, typer.Option(help="also save every N steps")] = None,
    save_hf: Annotated[bool, typer.Option(help="also write an HF directory per checkpoint")] = False,
    k: Annotated[int | None, typer.Option("--k", help="self-sft/iter-sft: samples per prompt (5)")] = None,
    teacher: Annotated[
        str | None, typer.Option(help="sft: sample the data from this checkpoint, keep what the suite scores 1")
    ] = None,
    teacher_samples: Annotated[int | None, typer.Option(help="sft --teacher: responses per prompt (4)")] = None,
    resample_every: Annotated[int | None, typer.Option(help="iter-sft: re-sample every N steps (0 = epoch)")] = None,
    temperature: Annotated[float | None, typer.Option(help="sampling temperature (0.8)")] = None,
    max_new_tokens: Annotated[int | None, typer.Option(help="rollout length (default: the suite's)")] = None,
    group_size: Annotated[int | None, typer.Option(help="rl: samples per prompt (5)")] = None,
    beta: Annotated[float | None, typer.Option(help="rl: k2 KL weight (grpo 0.05)")] = None,
    track: Annotated[
        str | None, typer.Option(help="score each saved checkpoint against --base on these suites (forgetting/*)")
    ] = None,
    track_limit: Annotated[int, typer.Option(help="--track: first N items of each suite")] = 50,
    runs_dir: Annotated[str, typer.Option("--runs-dir", help="--track: the record store")] = "reports/runs",
) -> None:
    """Train a checkpoint with SFT, Self-SFT, Iterative-SFT, GRPO, REINFORCE or GRPO without KL."""
    given = {  # --track and its options are not training config: the checkpoints do not depend on them
        k_: v
        for k_, v in locals().items()
        if k_ not in ("method", "no_register", "save_steps", "track", "track_limit", "runs_dir")
    }
    from harness.train.config import ConfigError, make_config

    given |= {"register": False if no_register else None, "save_steps": _steps(save_steps)}
    for flag in ("gradient_checkpointing", "save_hf"):  # a flag not given means "the method's default"
        given[flag] = True if given[flag] else None
    try:
        cfg = make_config(method, **given)
    except ConfigError as e:
        raise _fail(str(e)) from None
    except TypeError as e:
        raise _fail(f"bad option: {e}") from None

    from harness.checkpoints.registry import RegistryError
    from harness.engines import EngineError
    from harness.errors import ForgetbenchError
    from harness.suites import SuiteError
    from harness.train.rollout import SyncError
    from harness.train.run import train
    from harness.train.sft import TrainError

    try:
        probe = None
        if track:  # checked (suites, base, store) before any training
            from harness.integrations.probe import ForgettingProbe

            probe = ForgettingProbe(
                base, track, track_limit, runs_dir=runs_dir, registry=registry, run=cfg.name or "train"
            )
        train(cfg, console=err_console, probe=probe)
    except (ConfigError, SuiteError, RegistryError, EngineError, FileNotFoundError) as e:
        raise _fail(str(e)) from None
    except (TrainError, SyncError) as e:
        raise _fail(str(e), 1) from None
    except ForgetbenchError as e:  # --track's flags and store
        raise _fail(str(e)) from None


def register(app: typer.Typer) -> None:
    """Add `train` to the main forgetbench app."""
    app.command("train")(train_cmd)


app = typer.Typer(add_completion=False, help="The forgetbench reference trainer.")
app.command()(train_cmd)

if __name__ == "__main__":
    app()
