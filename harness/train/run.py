"""One training run end to end: resolve the base, load the policy, run the method's loop, save checkpoints
and registry entries. `train` is the Python entry point; the CLI (harness/train/cli.py) is a thin shell.

Multi-device through accelerate (GPUs: `accelerate launch --num_processes N -m harness.train.cli ...`;
CPU: `ACCELERATE_USE_CPU=true torchrun --nproc_per_node N -m harness.train.cli ...`): every process holds
the policy and takes its share of each global batch; gradients are all-reduced by accelerate's backward.

    python -c "from harness.train.run import train; from harness.train.config import make_config; \\
        train(make_config('sft', suite='countdown', base='smollm2-135m', max_steps=2, batch_size=4))"
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.registry import Checkpoint
from harness.suites import Suite, SuiteError, get_suite, load_items
from harness.train.config import RL_METHODS, ConfigError, TrainConfig
from harness.train.data import ChatFormat
from harness.train.policy import Base, Saver, chat_record, check_ids_free, load_policy, resolve_base, run_name
from harness.train.rollout import RolloutLog, Sampler
from harness.types import Item


@dataclass
class Session:
    """Everything a training loop needs; the loops in sft.py and rl.py are written against this."""

    cfg: TrainConfig
    suite: Suite
    items: list[Item]  # the train split (first train_limit items)
    base: Base
    acc: Accelerator
    model: torch.nn.Module  # as prepared by accelerate (may be a DDP wrapper)
    tokenizer: Any
    optimizer: torch.optim.Optimizer
    sampler: Sampler
    fmt: ChatFormat
    saver: Saver
    out: Path
    rollouts: RolloutLog
    console: Console
    started: float = field(default_factory=time.perf_counter)

    @property
    def policy(self) -> torch.nn.Module:
        """The bare model (no DDP wrapper): what engines serve and what is saved."""
        return self.acc.unwrap_model(self.model)

    @property
    def world(self) -> int:
        return self.acc.num_processes

    def shard(self, rows: list[Any]) -> list[Any]:
        """This process's share of a global batch."""
        return rows[self.acc.process_index :: self.acc.num_processes]

    def set_lr(self, step: int, total: int) -> float:
        """nanoGPT-style: the schedule is a function of the step, set by hand before each update."""
        lr = lr_at(self.cfg, step, total)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def update(self) -> float:
        """Clip, step, zero: returns the gradient norm before clipping."""
        norm = self.acc.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return float(norm)

    def log(self, row: dict[str, Any]) -> None:
        if self.acc.is_main_process:
            row = {"t": round(time.perf_counter() - self.started, 3)} | row
            with (self.out / "log.jsonl").open("a") as fh:
                fh.write(json.dumps(row) + "\n")

    def checkpoint(self, step: int, final: bool, stats: dict[str, Any]) -> None:
        """Save when asked (and always at the end), from the main process only."""
        if not (final or self.saver.wants(step)):
            return
        self.acc.wait_for_everyone()
        if self.acc.is_main_process:
            ckpt = self.saver.save(self.policy, step, final, stats)
            where = f"registered in {self.cfg.registry}" if self.cfg.register else "not registered"
            self.console.print(f"saved {ckpt.id}: {ckpt.path} ({where})", highlight=False)


def lr_at(cfg: TrainConfig, step: int, total: int) -> float:
    """Linear warmup then cosine to 0 over `total` steps, or constant. `step` counts from 0."""
    if cfg.schedule == "constant":
        return cfg.lr
    warm = max(1, int(cfg.warmup_ratio * total))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    progress = min(1.0, (step - warm) / max(1, total - warm))
    return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * progress))


class StepBar:
    """Rich progress: step M/N, the latest loss/reward/KL/tokens per second, elapsed and ETA."""

    def __init__(self, console: Console, label: str, total: int, enabled: bool) -> None:
        columns = (
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[stats]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console, disable=not enabled)
        self.task = self.progress.add_task(label, total=total, stats="")

    def __enter__(self) -> StepBar:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def set_total(self, total: int) -> None:
        self.progress.update(self.task, total=total)

    def step(self, stats: dict[str, float]) -> None:
        shown = {
            "loss": "loss {:.4f}",
            "reward": "reward {:.3f}",
            "kl": "kl {:.4f}",
            "tok_s": "{:.0f} tok/s",
            "gen_tok_s": "gen {:.0f} tok/s",
        }
        text = "  ".join(fmt.format(stats[k]) for k, fmt in shown.items() if k in stats)
        self.progress.update(self.task, advance=1, stats=text)


def train_items(suite: Suite, limit: int | None) -> list[Item]:
    try:
        items = load_items(suite, limit, split="train")
    except (SuiteError, KeyError, ValueError) as e:
        raise SuiteError(f"suite {suite.name} has no train split: {e}") from None
    if not items:
        raise SuiteError(f"suite {suite.name}: the train split is empty")
    return items


def check_suite(cfg: TrainConfig, suite: Suite) -> None:
    """SFT needs an expert response per item: an `expert` override or gold answers."""
    if cfg.method == "sft" and not suite.has_reference and type(suite).expert is Suite.expert:
        raise ConfigError(f"suite {suite.name} has no gold or expert responses, so it cannot be used for sft")


def train(cfg: TrainConfig, suite: Suite | None = None, console: Console | None = None) -> list[Checkpoint]:
    """Run `cfg` and return the checkpoints written (registered unless cfg.register is False)."""
    console = console or Console(stderr=True)
    suite = suite or get_suite(cfg.suite)
    check_suite(cfg, suite)
    items = train_items(suite, cfg.train_limit)
    registry, base = resolve_base(cfg)
    name = run_name(cfg, base)
    check_ids_free(cfg, registry, name)
    out = cfg.out or Path("reports") / "train" / name

    acc = Accelerator(mixed_precision=cfg.mixed_precision)
    if not acc.is_main_process:  # one voice: the other processes train silently
        console = Console(quiet=True)
    if cfg.engine != "hf" and acc.num_processes > 1:
        raise ConfigError("--engine vllm: run rollouts in a single process (multi-process training uses --engine hf)")
    set_seed(cfg.seed)
    model, tokenizer = load_policy(cfg, base.model_dir)
    model.to(acc.device)
    # SFT only renders prompts: the hf engine over the in-memory policy does that without a second model.
    engine = cfg.engine if cfg.method != "sft" else "hf"
    sampler = Sampler(
        engine,
        model,
        tokenizer,
        base.model_dir,
        base.ckpt.system_prompt,
        acc.device,
        cfg.rollout_batch_size,
        cfg.sync_tol,
    )
    chat = chat_record(tokenizer, base.ckpt.system_prompt, sampler.ident)
    saver = Saver(cfg, base, name, out, tokenizer, chat)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, eps=1e-8, weight_decay=cfg.weight_decay)
    model, optimizer = acc.prepare(model, optimizer)

    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("log.jsonl", "rollouts.jsonl"):  # a rerun into the same folder starts fresh logs
            (out / stale).unlink(missing_ok=True)
        record = {"config": cfg.to_dict(), "name": name, "base": base.ckpt.to_dict(), "chat_template": chat}
        record |= {"suite": suite.ident, "n_train_items": len(items), "world_size": acc.num_processes}
        (out / "config.json").write_text(json.dumps(record, indent=1, default=str))
    n_train = sum(p.numel() for p in params)
    console.print(
        f"train {cfg.method} on {suite.ident} ({len(items)} items) from {base.ckpt.id}: {name} -> {out} "
        f"({n_train / 1e6:.2f}M trainable parameters, {acc.num_processes} process(es) on {acc.device})",
        highlight=False,
    )
    session = Session(
        cfg=cfg,
        suite=suite,
        items=items,
        base=base,
        acc=acc,
        model=model,
        tokenizer=tokenizer,
        optimizer=optimizer,
        sampler=sampler,
        fmt=ChatFormat(sampler.render, tokenizer),
        saver=saver,
        out=out,
        rollouts=RolloutLog(out / "rollouts.jsonl"),
        console=console,
    )
    session.sampler.probe = _probe(suite, items[0], session.fmt)
    try:
        if cfg.method in RL_METHODS:
            from harness.train.rl import train_rl

            train_rl(session)
        else:
            from harness.train.sft import train_sft

            train_sft(session)
    finally:
        sampler.close()
    if not cfg.register and acc.is_main_process:
        print(saver.entries_yaml(), end="")
    return saver.saved


def _probe(suite: Suite, item: Item, fmt: ChatFormat) -> tuple[str, str]:
    """A fixed prompt and response whose log-prob the engine and the policy must agree on after a sync."""
    try:
        response = suite.expert(item)
    except NotImplementedError:  # no gold response: any fixed text works for comparing two log-probs
        response = "Let me think about this step by step. The answer is 42."
    return fmt.render(suite.prompt(item)), response
