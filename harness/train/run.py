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
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from rich.console import Console

from harness.chatdata import file_sha256, read_chats
from harness.checkpoints.registry import Registry, RegistryError
from harness.checkpoints.weights import materialise
from harness.suites import Suite, get_suite, train_items
from harness.train.config import RL_METHODS, ConfigError, TrainConfig
from harness.train.data import ChatFormat
from harness.train.policy import (
    Base,
    Saver,
    chat_record,
    check_ids_free,
    load_policy,
    resolve_base,
    run_name,
)
from harness.train.rl import train_rl
from harness.train.rollout import RolloutLog, Sampler
from harness.train.session import Session, StepBar, lr_at  # noqa: F401 (StepBar, lr_at: the old import path)
from harness.train.sft import train_sft
from harness.types import Checkpoint, Item


def check_suite(cfg: TrainConfig, suite: Suite) -> None:
    """SFT needs an expert response per item: an `expert` override or gold answers."""
    if getattr(cfg, "teacher", None):
        return  # the teacher's responses, kept when the suite's scorer accepts them
    if cfg.method == "sft" and not suite.has_reference and type(suite).expert is Suite.expert:
        raise ConfigError(f"suite {suite.name} has no gold or expert responses, so it cannot be used for sft")


def train(
    cfg: TrainConfig, suite: Suite | None = None, console: Console | None = None, probe: Any = None
) -> list[Checkpoint]:
    """Run `cfg` and return the checkpoints written (registered unless cfg.register is False). `probe` (a
    harness.integrations.probe.ForgettingProbe, `--track`) scores each checkpoint as it is saved; it is not
    part of cfg, so a run with and without it writes byte-identical checkpoints."""
    console = console or Console(stderr=True)
    # sft --data: the whole file is validated first; a malformed line stops the run before any model loads
    chats = read_chats(cfg.data)[: cfg.train_limit or None] if cfg.data is not None else []
    suite = suite or get_suite(cfg.suite)
    if not chats:
        check_suite(cfg, suite)
    items = train_items(suite, cfg.train_limit) if not chats else []
    registry, base = resolve_base(cfg)
    teacher = resolve_teacher(cfg, registry)  # before any model is loaded: a bad --teacher fails fast
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
    saver = Saver(cfg, base, name, out, tokenizer, chat, suite.name)
    if cfg.data is not None:  # lineage: which file, by content, the checkpoint was trained on
        saver.data = {"path": str(cfg.data), "sha256": file_sha256(cfg.data), "n_examples": len(chats)}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, betas=cfg.adam_betas, eps=1e-8, weight_decay=cfg.weight_decay)
    model, optimizer = acc.prepare(model, optimizer)

    if acc.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        for stale in ("log.jsonl", "rollouts.jsonl"):  # a rerun into the same folder starts fresh logs
            (out / stale).unlink(missing_ok=True)
        record = {"config": cfg.to_dict(), "name": name, "base": base.ckpt.to_dict(), "chat_template": chat}
        record |= {"suite": suite.ident, "n_train_items": len(items or chats), "world_size": acc.num_processes}
        if saver.data is not None:
            record["data"] = saver.data
        (out / "config.json").write_text(json.dumps(record, indent=1, default=str))
    n_train = sum(p.numel() for p in params)
    console.print(
        f"train {cfg.method} on {cfg.data or suite.ident} ({len(items or chats)} items) from {base.ckpt.id}: "
        f"{name} -> {out} "
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
        teacher=teacher,
        chats=chats,
        probe=probe if acc.is_main_process else None,
    )
    first = chats[0] if chats else None
    session.sampler.probe = (
        _probe(suite, items[0], session.fmt) if first is None else (session.fmt.render(first.messages), first.response)
    )
    try:
        if cfg.method in RL_METHODS:
            train_rl(session)
        else:
            train_sft(session)
    finally:
        sampler.close()
        if probe is not None:
            probe.close()
    if not cfg.register and acc.is_main_process:
        print(saver.entries_yaml(), end="")
    return saver.saved


def resolve_teacher(cfg: TrainConfig, registry: Registry) -> Base | None:
    """sft --teacher: any checkpoint (registry id, HF dir, hub id, .pt, adapter) as an HF dir to sample from."""
    spec = getattr(cfg, "teacher", None)
    if not spec:
        return None
    ckpt = registry.resolve(spec)
    if ckpt.format == "fake":
        raise RegistryError(f"--teacher {spec}: a fake checkpoint has no weights to sample from")
    return Base(ckpt, ckpt.id in registry.by_id, materialise(ckpt, registry.lineage(ckpt)))


def _probe(suite: Suite, item: Item, fmt: ChatFormat) -> tuple[str, str]:
    """A fixed prompt and response whose log-prob the engine and the policy must agree on after a sync."""
    try:
        response = suite.expert(item)
    except NotImplementedError:  # no gold response: any fixed text works for comparing two log-probs
        response = "Let me think about this step by step. The answer is 42."
    return fmt.render(suite.prompt(item)), response
