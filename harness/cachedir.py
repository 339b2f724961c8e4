"""What $FORGETBENCH_HOME holds, and freeing the part of it that rebuilds itself.

    forgetbench cache                                   # sizes: materialised models, data files, fingerprints
    forgetbench cache --registry checkpoints.yaml       # + which checkpoint each materialised model is
    forgetbench cache --clear-models --unused-days 7    # free what no run used for a week

Materialised models (models/) are HF directories written from .pt, GGUF, safetensors and PEFT checkpoints so
that an engine can load them. Each is a full copy of the weights (SmolLM2-135M: ~0.5 GB), so a study that
tracks dozens of checkpoints leaves tens of GB here without saying so. They are derived: a run that needs one
again writes it again (seconds for a small model). Data files (data/) are pinned downloads and are never
cleared here: an offline machine cannot fetch them again. Evaluation records live in the store (--runs-dir),
never here, so clearing this costs no evaluation.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness.places import home, models_dir

UNFINISHED_GRACE_S = 24 * 3600  # a half-written model younger than this may belong to a run still writing it


@dataclass
class Materialised:
    """One directory under models/: finished (`key` is the checkpoint's cache key) or left by a killed run."""

    path: Path
    bytes: int
    last_used: float  # mtime: materialise touches the directory on every cache hit
    unfinished: bool  # a `.KEY.xxxx` temp directory: materialise was killed before its rename
    owners: list[str] = field(default_factory=list)  # registry ids whose cache key this is (with --registry)

    @property
    def key(self) -> str:
        return self.path.name.lstrip(".").split(".")[0] if self.unfinished else self.path.name


def tree_bytes(path: Path) -> int:
    """Bytes of the regular files under `path` (links are not followed: a link's target is not ours)."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            f = Path(root) / name
            if not f.is_symlink():
                total += f.stat().st_size
    return total


def materialised() -> list[Materialised]:
    """Every directory under models/, the least recently used first."""
    root = models_dir()
    if not root.is_dir():
        return []
    out = []
    for p in root.iterdir():
        if not p.is_dir() or p.is_symlink():
            continue
        out.append(Materialised(p, tree_bytes(p), p.stat().st_mtime, p.name.startswith(".")))
    return sorted(out, key=lambda m: m.last_used)


def name_owners(entries: list[Materialised], registry: Path) -> list[str]:
    """Fill each entry's owners from the registry (hashes weights not yet fingerprinted: slow once).

    Returns one line per checkpoint whose key could not be computed (missing files, an unresolvable base)."""
    from harness.checkpoints.layouts import WeightsError
    from harness.checkpoints.registry import Registry, RegistryError
    from harness.checkpoints.weights import materialised_key

    reg = Registry.load(registry)
    by_key: dict[str, list[str]] = {}
    problems = []
    for c in reg.by_id.values():
        if c.format in ("fake", "hf", "hub"):  # loaded in place: nothing under models/
            continue
        try:
            by_key.setdefault(materialised_key(c, reg.lineage(c)), []).append(c.id)
        except (RegistryError, WeightsError, OSError) as e:
            problems.append(f"{c.id}: {str(e).splitlines()[0]}")
    for m in entries:
        m.owners = by_key.get(m.key, []) if not m.unfinished else []
    return problems


def clear_models(unused_days: float | None = None, now: float | None = None) -> tuple[int, int]:
    """Remove materialised models no run used for `unused_days` (all when None). Returns (count, bytes).

    A finished model is renamed out of the way before it is deleted, so a run that starts meanwhile finds no
    half-deleted directory: it writes the model again. Unfinished temp directories go only once they are a day
    old, since a run may be writing one right now."""
    now = time.time() if now is None else now
    cutoff = None if unused_days is None else now - unused_days * 86400
    n = freed = 0
    for m in materialised():
        if m.unfinished and now - m.last_used < UNFINISHED_GRACE_S:
            continue
        if cutoff is not None and m.last_used > cutoff:
            continue
        target = m.path
        if not m.unfinished:
            target = m.path.with_name(f".{m.key}.clearing-{os.getpid()}")
            try:
                os.replace(m.path, target)
            except FileNotFoundError:  # another `cache --clear-models` took it first
                continue
        shutil.rmtree(target, ignore_errors=True)
        n, freed = n + 1, freed + m.bytes
    return n, freed


def area_sizes(models: list[Materialised]) -> dict[str, tuple[Path, int]]:
    """The three areas of the home directory and their sizes in bytes (models: the listed entries, walked once)."""
    from harness.data import data_home

    fingerprints = home() / "fingerprints.json"
    return {
        "models": (models_dir(), sum(m.bytes for m in models)),
        "data": (data_home(), tree_bytes(data_home())),
        "fingerprints": (fingerprints, tree_bytes(fingerprints)),
    }


def human(n: int) -> str:
    """1536 -> '1.5 KB' (binary units, as du -h)."""
    size = float(n)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{n} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
