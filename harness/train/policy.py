"""The models a run holds (policy, optional frozen reference), per-token log-probs, and checkpoint output.

Checkpoints are self-describing .pt files (harness.checkpoints.weights.save_pt) with a LoRA adapter merged first, so
the output is always a plain checkpoint; each one gets a registry entry appended to checkpoints.yaml (or
printed with --no-register).

    python -c "from harness.train.policy import run_name; print(run_name.__doc__)"
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
import transformers
import yaml
from transformers import AutoModelForCausalLM, AutoTokenizer

from harness.checkpoints.registry import Checkpoint, Registry, RegistryError, append_entry
from harness.checkpoints.weights import materialise, save_pt
from harness.train.config import TrainConfig
from harness.train.rollout import merged_state
from harness.types import stable_hash

transformers.utils.logging.disable_progress_bar()  # our own progress bar carries the ETA


@dataclass(frozen=True)
class Base:
    """The initial checkpoint: its registry view, whether the registry knows it (lineage), its HF dir."""

    ckpt: Checkpoint
    registered: bool
    model_dir: Path


def resolve_base(cfg: TrainConfig) -> tuple[Registry, Base]:
    registry = Registry.load(cfg.registry)
    ckpt = registry.resolve(cfg.base)
    if ckpt.format == "fake":
        raise RegistryError(f"--base {cfg.base}: a fake checkpoint has no weights to train")
    return registry, Base(ckpt, ckpt.id in registry.by_id, materialise(ckpt, registry.lineage(ckpt)))


def run_name(cfg: TrainConfig, base: Base) -> str:
    """The final checkpoint's registry id: --name, or <base>-<method>-<suite>-lr<lr>-s<seed>."""
    return cfg.name or f"{base.ckpt.id}-{cfg.method}-{cfg.suite}-lr{cfg.lr:g}-s{cfg.seed}"


def check_ids_free(cfg: TrainConfig, registry: Registry, name: str) -> None:
    """Fail before training, not after, when this run's registry ids are taken."""
    if not cfg.register:
        return
    taken = [i for i in registry.by_id if i == name or i.startswith(f"{name}-step")]
    if taken:
        raise RegistryError(f"{cfg.registry}: checkpoint id {taken[0]!r} already exists; pass another --name")


def load_policy(cfg: TrainConfig, model_dir: Path) -> tuple[torch.nn.Module, Any]:
    """The trainable model (float32 master weights; accelerate casts for bf16) and its tokenizer."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if cfg.lora_r:
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=cfg.lora_r, lora_alpha=cfg.lora_alpha or 2 * cfg.lora_r, lora_dropout=0.0, target_modules="all-linear"
        )
        model = get_peft_model(model, lora)
        if cfg.gradient_checkpointing:
            model.enable_input_require_grads()  # checkpointed blocks need a grad path through frozen embeddings
    return model, tokenizer


def load_reference(model_dir: Path, device: torch.device | str) -> torch.nn.Module:
    """The frozen initial model for the KL term (loaded only when beta > 0 and no LoRA adapter can be
    switched off instead)."""
    ref = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).to(device).eval()
    ref.requires_grad_(False)
    return ref


def token_logprobs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """log p of each target token (batch["targets"], the last `window` tokens of each left-padded row) given
    the tokens before it: shape [B, window], aligned with batch["loss_mask"]."""
    window = batch["targets"].shape[1]
    logits = model(
        input_ids=batch["input_ids"],
        attention_mask=batch["attention_mask"],
        position_ids=batch["position_ids"],
        logits_to_keep=window + 1,  # the head runs only where a target is predicted (+1: the last, unused)
    ).logits[:, :-1]
    # float(): bf16 logits lose too much in the softmax; cross_entropy = -log_softmax gathered at the target.
    return -F.cross_entropy(logits.float().transpose(1, 2), batch["targets"], reduction="none")


_TIMINGS = ("tok_s", "gen_tok_s", "seconds", "t")


class _Merged:
    """What save_pt needs from a model (config, generation_config, state_dict), with LoRA merged in."""

    def __init__(self, model: torch.nn.Module) -> None:
        inner = model.get_base_model() if hasattr(model, "get_base_model") else model
        self.config = inner.config
        self.generation_config = getattr(inner, "generation_config", None)
        self._state = merged_state(model)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return self._state


class Saver:
    """Writes step checkpoints (.pt, optionally an HF dir) and hands each one to the registry."""

    def __init__(
        self,
        cfg: TrainConfig,
        base: Base,
        name: str,
        out: Path,
        tokenizer: Any,
        chat: dict[str, Any],
        target: str | None = None,
    ) -> None:
        self.cfg, self.base, self.name, self.out, self.tokenizer, self.chat = cfg, base, name, out, tokenizer, chat
        # the suite's name, not the spec: `countdown:lenient` trains on countdown, and compare matches names
        self.target = target or cfg.suite
        self.saved: list[Checkpoint] = []
        # RL runs set this before the final save: {"steps", "no_signal_steps", "mostly_no_signal"}.
        self.signal: dict[str, Any] | None = None
        # SFT runs set these: the data's score under the base at step 0 (harness/datascore.py) and, for
        # --data, the file trained on {"path", "sha256", "n_examples"}.
        self.data_score: dict[str, Any] | None = None
        self.data: dict[str, Any] | None = None

    def wants(self, step: int) -> bool:
        every = self.cfg.save_every
        return step in self.cfg.save_steps or bool(every and step % every == 0)

    def hparams(self, step: int) -> dict[str, Any]:
        """lr, epochs, seed, step (the registry's typed fields) plus the method's own settings."""
        own = {f.name for f in fields(self.cfg)} - {f.name for f in fields(TrainConfig)}
        hp: dict[str, Any] = {"lr": self.cfg.lr, "epochs": self.cfg.epochs, "seed": self.cfg.seed, "step": step}
        hp |= {"batch_size": self.cfg.batch_size, "lora_r": self.cfg.lora_r}
        hp |= {k: getattr(self.cfg, k) for k in sorted(own)}
        if self.data is not None:  # sft --data: which data, by content (runs on other data are not replicates)
            hp["data_sha256"] = self.data["sha256"][:16]
        if self.signal is not None:
            hp |= {"no_signal_steps": self.signal["no_signal_steps"], "rl_steps": self.signal["steps"]}
        return {k: v for k, v in hp.items() if v is not None}

    def notes(self) -> str:
        notes = [] if self.base.registered else [f"trained from {self.base.ckpt.path}"]
        if self.signal and self.signal["mostly_no_signal"]:
            notes.append(
                f"NO LEARNING SIGNAL: {self.signal['no_signal_steps']} of {self.signal['steps']} steps had equal "
                "rewards in every group"
            )
        return "; ".join(notes)

    def path(self, step: int, final: bool) -> Path:
        """Where the checkpoint of `step` is written (harness/runs.py reads these names back)."""
        return self.out / ("final.pt" if final else f"step-{step}.pt")

    def save(self, model: torch.nn.Module, step: int, final: bool, stats: dict[str, Any]) -> Checkpoint:
        cid = self.name if final else f"{self.name}-step{step}"
        path = self.path(step, final)
        meta = {
            "method": self.cfg.method,
            "base": self.base.ckpt.id,
            "trained_on": [self.target],
            "hparams": self.hparams(step),
            "config": self.cfg.to_dict(),
            "chat_template": self.chat,
            "system_prompt": self.base.ckpt.system_prompt,
            # Timings vary run to run; leaving them out keeps a re-run byte-identical (evaluation cache hits).
            "stats": {k: v for k, v in stats.items() if k not in _TIMINGS},
            "notes": self.notes(),
        }
        meta |= {k: v for k, v in (("data_score", self.data_score), ("data", self.data)) if v is not None}
        save_pt(path, _Merged(model), self.tokenizer, meta)
        if self.cfg.save_hf:
            self._save_hf(model, path.with_suffix(""))
        ckpt = Checkpoint(
            id=cid,
            path=_registry_path(path, self.cfg.registry),
            format="pt",
            method=self.cfg.method,
            base=self.base.ckpt.id if self.base.registered else None,
            trained_on=(self.target,),
            hparams=self.hparams(step),
            system_prompt=self.base.ckpt.system_prompt,
            notes=self.notes(),
            data_score=self.data_score,
        )
        if self.cfg.register:
            append_entry(self.cfg.registry, ckpt)
        self.saved.append(ckpt)
        return ckpt

    def _save_hf(self, model: torch.nn.Module, out: Path) -> None:
        if hasattr(model, "merge_and_unload"):  # LoRA: merge into a copy; the training model keeps its adapter
            import copy

            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)

    def entries_yaml(self) -> str:
        return yaml.safe_dump({"checkpoints": [c.to_dict() for c in self.saved]}, sort_keys=False)


def chat_record(tokenizer: Any, system_prompt: str | None, engine_ident: str) -> dict[str, Any]:
    """The chat-template policy used for training (the evaluation's), recorded with the output."""
    template = tokenizer.chat_template or ""
    return {"policy": "native", "system_prompt": system_prompt, "sha": stable_hash(template), "engine": engine_ident}


def _registry_path(path: Path, registry: Path) -> str:
    """Relative to the registry's folder when inside it (the registry resolves relative paths there)."""
    root = registry.resolve().parent
    full = path.resolve()
    return os.path.relpath(full, root) if full.is_relative_to(root) else str(full)
