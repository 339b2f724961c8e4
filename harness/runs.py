"""Training runs on disk: find every checkpoint of a run directory and order them by step. No torch (a final.pt
of our trainer is read for its step only when its name carries none), no model.

What a run directory may hold (several kinds at once are fine; a glob names the checkpoints directly):

    step-N.pt, final.pt (+ step-N/, final/ HF copies)   our trainer (harness/train): .pt written atomically
    checkpoint-N/            HF Trainer / TRL: a full HF dir or a PEFT adapter; step from trainer_state.json
    step_N/, step-N/         prime-rl and others after merging: HF dirs
    global_step_N/actor/huggingface/   verl after merging (global_step_N/ itself when it is an HF dir)

Steps come from trainer_state.json (`global_step`), the .pt metadata (`hparams.step`) or the name. A run with
no checkpoint, a checkpoint whose step cannot be read, one step given by two checkpoints, or checkpoints of
different architectures in one run are one-line RunErrors naming the path (exit 2). A checkpoint still being
written (a `.tmp` file, a shard index whose shards are missing, a truncated file, files that changed within
the settle time without the trainer's marker) is left out as pending, never read.

    python -c "from harness.runs import discover; print(discover('reports/train/RUN'))"
"""

from __future__ import annotations

import glob
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ForgetbenchError

_STEP_NAME = re.compile(r"^(?:checkpoint|step|global_step|iter|ckpt)[-_]?(\d+)$")
_ARCH_KEYS = ("architectures", "model_type", "hidden_size", "num_hidden_layers", "vocab_size", "intermediate_size")


class RunError(ForgetbenchError):
    """A run directory that cannot be tracked as given; one line naming the path."""


@dataclass(frozen=True)
class RunCheckpoint:
    """One checkpoint of a run: what the registry resolves (`path`), its step, and whether the trainer says
    it is the run's last."""

    run: str
    step: int
    path: Path
    final: bool = False

    @property
    def label(self) -> str:
        return f"{self.run}/{self.path.name}"


@dataclass
class TrainingRun:
    """The ordered checkpoints of one run found now; `pending` are still being written, `skipped` say why a
    candidate was left out (logged)."""

    label: str
    spec: str
    checkpoints: list[RunCheckpoint] = field(default_factory=list)
    pending: list[Path] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return any(c.final for c in self.checkpoints)


def discover(spec: str, settle_s: float = 0.0, label: str | None = None, now: float | None = None) -> TrainingRun:
    """The checkpoints of the run at `spec` (a directory or a glob), ordered by step.

    settle_s > 0 (watching): a directory checkpoint without a trainer marker counts as complete only once its
    files have not changed for settle_s seconds."""
    now = time.time() if now is None else now
    if glob.has_magic(spec):
        candidates = [Path(p) for p in sorted(glob.glob(spec))]
        root = Path(spec.split("*")[0].rstrip("/") or ".")
        label = label or (root.name if root.is_dir() else root.parent.name) or "run"
    else:
        root = Path(spec)
        if not root.is_dir():
            raise RunError(f"{spec}: not a directory (give a run directory or a glob of checkpoints)")
        candidates = sorted(root.iterdir())
        label = label or root.resolve().name
    run = TrainingRun(label=label, spec=spec)
    by_step: dict[int, RunCheckpoint] = {}
    archs: dict[str, Path] = {}
    pt_steps = {_name_step(p.stem) for p in candidates if p.suffix == ".pt"} - {None}
    has_final_pt = any(p.name == "final.pt" for p in candidates)
    for cand in candidates:
        if cand.name.endswith(".tmp") or cand.name.startswith("."):
            continue
        if cand.is_dir() and ((cand.name == "final" and has_final_pt) or _name_step(cand.name) in pt_steps):
            if (cand / "config.json").exists():
                run.skipped.append(f"{cand}: an HF copy of the .pt beside it (same checkpoint)")
                continue
        target = _checkpoint_path(cand)
        if target is None:
            continue
        why = _pending(target, settle_s, now)
        if why is not None:
            run.pending.append(target)
            if not settle_s:
                run.skipped.append(f"{target}: {why}; not read")
            continue
        step, final = _step(cand, target)
        ck = RunCheckpoint(run=label, step=step, path=target, final=final)
        if step in by_step:
            raise RunError(f"{target}: step {step} is also {by_step[step].path}; give one checkpoint per step")
        arch = _architecture(target)
        if arch is not None:
            archs.setdefault(arch, target)
            if len(archs) > 1:
                first = next(iter(archs.values()))
                raise RunError(f"{target}: architecture differs from {first} in the same run ({_arch_text(arch)})")
        by_step[step] = ck
    run.checkpoints = [by_step[s] for s in sorted(by_step)]
    if not run.checkpoints and not run.pending and not settle_s:
        raise RunError(
            f"{spec}: no checkpoints found (expected step-N.pt, checkpoint-N/, step_N/ or "
            "global_step_N/actor/huggingface/ inside)"
        )
    return run


_FILE_SUFFIXES = (".pt", ".safetensors", ".fake.json")  # files that are checkpoints (fake: the test engine's)


def _stem(p: Path) -> str:
    return next((p.name.removesuffix(x) for x in _FILE_SUFFIXES if p.name.endswith(x)), p.name)


def _name_step(name: str) -> int | None:
    m = _STEP_NAME.match(name)
    return int(m.group(1)) if m else None


def _checkpoint_path(cand: Path) -> Path | None:
    """What to hand the registry for this entry of a run dir, or None when it is not a checkpoint."""
    if cand.is_file():
        if not cand.name.endswith(_FILE_SUFFIXES):
            return None
        return cand if _stem(cand) == "final" or _name_step(_stem(cand)) is not None else None
    if not cand.is_dir():
        return None
    merged = cand / "actor" / "huggingface"
    if merged.is_dir():
        return merged
    names = {p.name for p in cand.iterdir()}
    if "config.json" in names or "adapter_config.json" in names or _name_step(cand.name) is not None:
        return cand
    return None


def _pending(path: Path, settle_s: float, now: float) -> str | None:
    """Why `path` is not (yet) a complete checkpoint, or None."""
    if path.is_file():
        if path.suffix == ".pt":  # our trainer writes .pt files to a .tmp name and renames them: present = complete
            return None
        if settle_s and now - path.stat().st_mtime < settle_s:
            return f"changed within the last {settle_s:g} s"
        return None
    files = [p for p in path.rglob("*") if p.is_file()]
    if any(p.name.endswith((".tmp", ".partial", ".incomplete")) for p in files):
        return "a file is still being written"
    names = {p.name for p in files}
    if "adapter_config.json" not in names:
        if "config.json" not in names:
            return "no config.json yet"
        index = path / "model.safetensors.index.json"
        if index.exists():
            try:
                shards = set(json.loads(index.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError, TypeError):
                return "its shard index is not readable yet"
            missing = sorted(s for s in shards if not (path / s).exists())
            if missing:
                return f"shard {missing[0]} of its index is missing"
        elif not names & {"model.safetensors", "pytorch_model.bin"}:
            return "no weights yet"
    elif not names & {"adapter_model.safetensors", "adapter_model.bin"}:
        return "no adapter weights yet"
    if settle_s and "trainer_state.json" not in names:  # HF Trainer writes its state after the weights
        newest = max(p.stat().st_mtime for p in files)
        if now - newest < settle_s:
            return f"files changed within the last {settle_s:g} s"
    return None


def _step(cand: Path, target: Path) -> tuple[int, bool]:
    """(step, is the trainer's final checkpoint) from trainer_state.json, .pt metadata or the name."""
    state_file = next((d / "trainer_state.json" for d in (cand, target) if (d / "trainer_state.json").is_file()), None)
    if state_file is not None:
        try:
            state = json.loads(state_file.read_text())
            step = int(state["global_step"])
        except (OSError, ValueError, KeyError, TypeError):
            raise RunError(f"{state_file}: no readable global_step") from None
        max_steps = state.get("max_steps")
        return step, isinstance(max_steps, int) and max_steps > 0 and step >= max_steps
    if cand.suffix == ".pt" and cand.stem == "final":
        from harness.checkpoints.weights import read_pt_metadata  # torch, only for a final.pt

        step = read_pt_metadata(cand).get("hparams", {}).get("step")
        if not isinstance(step, int):
            raise RunError(f"{cand}: cannot read its step (no hparams.step in the .pt metadata)")
        return step, True
    step = _name_step(_stem(cand))
    if step is None:
        raise RunError(f"{target}: cannot read its step (no trainer_state.json, no step in the name)")
    return step, False


def _architecture(path: Path) -> str | None:
    """What must be equal across one run: the model shape of an HF dir, the base of an adapter (None: .pt)."""
    try:
        if (path / "adapter_config.json").is_file():
            cfg = json.loads((path / "adapter_config.json").read_text())
            return json.dumps({"adapter of": cfg.get("base_model_name_or_path")})
        if (path / "config.json").is_file():
            cfg = json.loads((path / "config.json").read_text())
            return json.dumps({k: cfg.get(k) for k in _ARCH_KEYS}, sort_keys=True)
    except (OSError, ValueError):
        raise RunError(f"{path}: config.json is not readable JSON") from None
    return None


def _arch_text(arch: str) -> str:
    return ", ".join(f"{k} {v}" for k, v in json.loads(arch).items() if v is not None)


def discover_all(specs: list[str], settle_s: float = 0.0) -> list[TrainingRun]:
    """Every run, labels made unique (two runs named `output` become `output` and `output-2`)."""
    runs: list[TrainingRun] = []
    seen: dict[str, int] = {}
    for spec in specs:
        run = discover(spec, settle_s)
        n = seen.get(run.label, 0) + 1
        seen[run.label] = n
        if n > 1:
            run = discover(spec, settle_s, label=f"{run.label}-{n}")
        runs.append(run)
    return runs
