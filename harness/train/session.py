"""The trainer's session: what every training loop is written against (Session), the learning-rate
schedule (lr_at), the progress bar (StepBar) and the step-0 data score both loops record (score_data). run.py
builds a Session; sft.py and rl.py consume it, so imports point one way: run -> sft, rl -> session.

    python -c "from harness.train.session import lr_at; print(lr_at.__doc__)"
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
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from harness.suites import Suite
from harness.train.config import TrainConfig
from harness.train.data import ChatFormat, Example, collate
from harness.train.policy import Base, Saver, token_logprobs
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
    teacher: Base | None = None  # sft --teacher: the checkpoint the SFT data is sampled from
    chats: list[Any] = field(default_factory=list)  # sft --data: the chat examples (harness/chatdata.Chat)
    probe: Any = None  # --track: a harness.integrations.probe.ForgettingProbe scoring each saved checkpoint

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
            if self.probe is not None:
                self.track(step, final)

    def track(self, step: int, final: bool) -> None:
        """--track: score the checkpoint just saved against the base; log its forgetting/* numbers."""
        point = self.probe.score(self.saver.path(step, final), step)
        if point is None:
            return
        metrics = self.probe.metrics(point)
        self.log({"step": step} | metrics)
        parts = [
            f"{k} {point[k]:+.1f} [{point[k + '_ci'][0]:+.1f}, {point[k + '_ci'][1]:+.1f}]"
            for k in ("gain", "drop")
            if point[k] is not None
        ]
        text = " ".join(parts)
        self.console.print(f"forgetting at step {step}: {text}", highlight=False)


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


@torch.no_grad()
def score_data(s: Session, examples: list[Example], wheres: list[str] | None = None) -> None:
    """The data's score (harness/datascore.py) under the policy before its first update, i.e. the base: the
    token-mean NLL of exactly the response tokens a step trains on (SFT data, or an RL step's rollouts). Logged
    at step 0; every checkpoint of the run records it (Saver.data_score -> .pt metadata and registry entry)."""
    from harness.datascore import score_tokens

    if not examples:
        return
    s.model.eval()
    lps: list[list[float]] = [[] for _ in examples]
    order = sorted(range(len(examples)), key=lambda i: -len(examples[i]))
    for start in range(0, len(order), s.cfg.micro_batch_size):
        rows = order[start : start + s.cfg.micro_batch_size]
        b = collate([examples[i] for i in rows], s.tokenizer.pad_token_id, s.acc.device)
        with s.acc.autocast():
            logp = token_logprobs(s.model, b).float().cpu()
        window = logp.shape[1]
        for r, i in enumerate(rows):
            lps[i] = logp[r, window - len(examples[i].response_ids) :].tolist()
    s.model.train()
    wheres = wheres or [f"example {k}" for k in range(len(examples))]
    texts = [s.tokenizer.decode(list(e.response_ids)) for e in examples]
    ds = score_tokens(lps, wheres, texts, top=5)
    s.saver.data_score = ds.summary()
    s.log({"step": 0, "data_score": ds.summary(), "off_policy": [[o.where, round(o.mean_nll, 3)] for o in ds.top]})
    s.console.print(
        f"step 0: data score under the base: mean NLL {ds.mean_nll:.3f} nats/token over {ds.n_tokens} response "
        f"tokens, {ds.frac_above:.1%} above perplexity {ds.ppl_threshold:g}",
        highlight=False,
    )
