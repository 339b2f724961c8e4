"""One config dataclass per training method, every field documented; saved as config.json next to the output.

Defaults follow the paper's repo (reference/paper.md section 4): AdamW (0.9, 0.95), no weight decay, clip 1.0,
2 epochs; SFT lr 1e-4 cosine with 3% warmup; RL lr 5e-6 constant, 5 samples per prompt at temperature 0.8,
k2 KL with beta 0.05, truncated samples rewarded 0. CPU runs override sizes on the command line.

    python -c "from harness.train.config import make_config; print(make_config('grpo', suite='countdown', base='b'))"
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from harness.errors import ForgetbenchError


class ConfigError(ForgetbenchError):
    """A bad method, option or value (one line, names the option)."""


@dataclass(frozen=True)
class TrainConfig:
    """Fields every method shares."""

    method: ClassVar[str] = ""
    suite: str  # the suite whose train split is trained on (its `score` is the filter / reward)
    base: str  # registry id or path of the initial checkpoint
    name: str = ""  # registry id of the final checkpoint ("" = <base>-<method>-<suite>-lr<lr>-s<seed>)
    out: Path | None = None  # output folder (None = reports/train/<name>)
    registry: Path = Path("checkpoints.yaml")  # where entries are appended; also resolves --base
    register: bool = True  # False: print the entries instead of appending them
    seed: int = 0  # random seed (data order, sampling, LoRA init)
    lr: float = 1e-4  # peak learning rate (sft 1e-4, rl 5e-6)
    schedule: str = "cosine"  # "cosine" (to 0, after linear warmup) or "constant"
    warmup_ratio: float = 0.03  # fraction of the steps spent warming up (cosine only)
    epochs: int = 2  # passes over the training data (iter-sft: sampling rounds)
    max_steps: int | None = None  # stop after this many optimizer steps (None = as the epochs give)
    batch_size: int = 64  # sequences per optimizer step (RL: prompts per step, each with a group of samples)
    micro_batch_size: int = 8  # sequences per forward/backward; gradients accumulate up to batch_size
    train_limit: int | None = None  # first N items of the suite's train split (None = all)
    max_seq_len: int = 4096  # SFT examples longer than this (prompt + response tokens) are dropped and counted
    grad_clip: float = 1.0  # max gradient norm
    adam_betas: tuple[float, float] = (0.9, 0.95)
    weight_decay: float = 0.0  # AdamW weight decay
    lora_r: int = 0  # 0 = full fine-tuning; > 0 = LoRA of this rank on all linear layers, merged before saving
    lora_alpha: int | None = None  # LoRA scale numerator (None = 2 * lora_r)
    gradient_checkpointing: bool = False  # trade compute for memory on long sequences
    mixed_precision: str = "no"  # accelerate's: "no" (CPU, float32), "bf16" (GPU, as in the paper), "fp16"
    engine: str = "hf"  # rollout backend: "hf" (serves the in-memory policy) or "vllm" (weights pushed per update)
    rollout_batch_size: int = 32  # prompts per engine.generate call (hf engine)
    sync_tol: float = 0.05  # max |engine - policy| mean per-token log-prob on the probe after a weight push
    save_steps: tuple[int, ...] = ()  # also save at these optimizer steps (the final step is always saved)
    save_every: int = 0  # also save every N steps (0 = off)
    save_hf: bool = False  # also write an HF directory next to each .pt
    data: Path | None = None  # sft: train on this chat jsonl (last turn = the response) instead of the suite's data

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["method"] = self.method
        return {k: (str(v) if isinstance(v, Path) else list(v) if isinstance(v, tuple) else v) for k, v in d.items()}


@dataclass(frozen=True)
class SFTConfig(TrainConfig):
    """SFT: off-policy, on expert responses (Countdown: the solver's solutions; else the suite's gold)."""

    method: ClassVar[str] = "sft"
    teacher: str | None = None  # sample the data from this checkpoint (id, path, hub id), keep what scores 1
    teacher_samples: int = 4  # responses per training prompt from the teacher
    temperature: float = 0.8  # sampling (teacher, self-sft, iter-sft)
    max_new_tokens: int | None = None  # None = the suite's evaluation length


@dataclass(frozen=True)
class SelfSFTConfig(SFTConfig):
    """Self-SFT: sample k responses per prompt once from the initial model, keep the ones scored correct."""

    method: ClassVar[str] = "self-sft"
    k: int = 5  # samples per prompt


@dataclass(frozen=True)
class IterSFTConfig(SelfSFTConfig):
    """Iterative-SFT: re-sample from the current model before every round and keep the correct responses.

    A round is one pass over the kept data (resample_every = 0) or N optimizer steps; epochs = rounds."""

    method: ClassVar[str] = "iter-sft"
    resample_every: int = 0  # a round = N optimizer steps (0 = one pass over the kept data)


@dataclass(frozen=True)
class GRPOConfig(TrainConfig):
    """GRPO: a group per prompt, reward = suite.score (0 when truncated), group-normalised advantage, k2 KL."""

    method: ClassVar[str] = "grpo"
    lr: float = 5e-6
    schedule: str = "constant"
    batch_size: int = 32  # prompts per optimizer step
    group_size: int = 5  # samples per prompt
    temperature: float = 0.8
    max_new_tokens: int | None = None  # None = the suite's evaluation length
    beta: float = 0.05  # weight of the k2 KL to the frozen initial model (0 = no reference model loaded)
    advantage: str = "group"  # "group": (r - mean) / (std + 1e-8) in the group; "raw": r itself (REINFORCE)


@dataclass(frozen=True)
class ReinforceConfig(GRPOConfig):
    """REINFORCE: GRPO with the raw reward as the weight (no group baseline, no normalisation)."""

    method: ClassVar[str] = "reinforce"
    advantage: str = "raw"


@dataclass(frozen=True)
class GRPONoKLConfig(GRPOConfig):
    """GRPO without the KL term: beta 0, so no reference model is loaded."""

    method: ClassVar[str] = "grpo-nokl"
    beta: float = 0.0


CONFIGS: dict[str, type[TrainConfig]] = {
    c.method: c for c in (SFTConfig, SelfSFTConfig, IterSFTConfig, GRPOConfig, ReinforceConfig, GRPONoKLConfig)
}
RL_METHODS = ("grpo", "reinforce", "grpo-nokl")


def make_config(method: str, **given: Any) -> TrainConfig:
    """The method's config with the given fields set; None values mean "the method's default"."""
    if method not in CONFIGS:
        raise ConfigError(f"unknown method {method!r}; choose one of {', '.join(CONFIGS)}")
    cls = CONFIGS[method]
    known = {f.name for f in fields(cls)}
    given = {k: v for k, v in given.items() if v is not None}
    extra = sorted(set(given) - known)
    if extra:
        opts = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ConfigError(f"option(s) {opts} do not apply to method {method!r}")
    cfg = cls(**given)
    _check(cfg)
    return cfg


def _check(cfg: TrainConfig) -> None:
    def bad(field: str, why: str) -> ConfigError:
        return ConfigError(f"--{field.replace('_', '-')}: {why}")

    for name in ("epochs", "batch_size", "micro_batch_size", "rollout_batch_size", "max_seq_len"):
        if getattr(cfg, name) < 1:
            raise bad(name, "must be at least 1")
    if cfg.max_steps is not None and cfg.max_steps < 1:
        raise bad("max_steps", "must be at least 1")
    if cfg.lr <= 0:
        raise bad("lr", "must be positive")
    if cfg.schedule not in ("cosine", "constant"):
        raise bad("schedule", "must be 'cosine' or 'constant'")
    if cfg.lora_r < 0:
        raise bad("lora_r", "must be 0 (full fine-tuning) or a positive rank")
    from harness.engines import ENGINES

    if cfg.engine not in ENGINES or cfg.engine == "fake":  # the fake engine has no weights to sample from
        raise bad("engine", f"must be one of {', '.join(e for e in ENGINES if e != 'fake')}")
    if cfg.name and not all(ch.isalnum() or ch in "._-" for ch in cfg.name):
        raise bad("name", "use letters, digits, '.', '_' or '-'")
    if isinstance(cfg, SelfSFTConfig) and cfg.k < 1:
        raise bad("k", "must be at least 1")
    if isinstance(cfg, SFTConfig) and cfg.teacher is not None and cfg.method != "sft":
        raise bad("teacher", f"applies to sft only ({cfg.method} samples from the model being trained)")
    if cfg.data is not None and (cfg.method != "sft" or getattr(cfg, "teacher", None)):
        raise bad("data", "applies to sft without --teacher only (the other methods sample their own data)")
    if isinstance(cfg, SFTConfig) and cfg.teacher_samples < 1:
        raise bad("teacher_samples", "must be at least 1")
    if isinstance(cfg, GRPOConfig):
        if cfg.group_size < 2 and cfg.advantage == "group":
            raise bad("group_size", "group-normalised advantages need at least 2 samples per prompt")
        if cfg.beta < 0:
            raise bad("beta", "must be >= 0")
        if cfg.advantage not in ("group", "raw"):
            raise bad("advantage", "must be 'group' or 'raw'")
