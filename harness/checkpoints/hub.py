"""Hugging Face hub ids as checkpoints: `org/name` or `org/name@revision` (branch, tag or commit).

Resolved through huggingface_hub, so its cache (HF_HUB_CACHE / HF_HOME), its offline mode (HF_HUB_OFFLINE=1:
the cache only, refs read from `refs/<branch>`) and HF_TOKEN (gated models) apply. The environment is read
at each call, not at import. A hub checkpoint's fingerprint is its resolved commit plus the hash of its
files, so a branch that moves is a new checkpoint.

    HF_HUB_OFFLINE=1 python -c "from harness.checkpoints import hub; print(hub.snapshot('HuggingFaceTB/SmolLM2-135M'))"
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.checkpoints.layouts import WeightsError

_SPEC = re.compile(r"^(?P<repo>[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*)(?:@(?P<rev>[A-Za-z0-9._/-]+))?$")
# What a model needs; other weight copies (onnx, flax, tf, gguf, the original consolidated .pth) are skipped.
_ALLOW = ["*.json", "*.safetensors", "*.bin", "*.txt", "*.model", "*.jinja", "*.tiktoken", "tokenizer*"]
_SUFFIXES = (".pt", ".safetensors", ".gguf", ".fake.json", ".json", ".bin")


@dataclass(frozen=True)
class Snapshot:
    repo: str
    revision: str  # as asked ("main" when none)
    commit: str  # the 40-hex commit it resolved to
    path: Path  # the snapshot folder in the hub cache


def is_hub_spec(spec: str) -> bool:
    """`org/name[@rev]` that is not an existing local path (a local folder of that name wins). A missing
    path under an existing local folder (`reports/typo`) is a typo, not a hub id: no network wait for it."""
    if Path(spec).exists() or spec.endswith(_SUFFIXES) or spec.startswith(("/", "./", "../", "~")):
        return False
    if Path(spec.split("/", 1)[0]).is_dir():
        return False
    return _SPEC.match(spec) is not None


def _offline() -> bool:
    return any(
        os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE") for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def snapshot(spec: str) -> Snapshot:
    """Download (or, offline, find in the cache) the repo at its revision; WeightsError in one line otherwise."""
    m = _SPEC.match(spec)
    if m is None:
        raise WeightsError(f"{spec}: not a hub id (expected org/name or org/name@revision)")
    repo, rev = m["repo"], m["rev"] or "main"
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise WeightsError(f"{spec}: hub ids need huggingface_hub (pip install 'forgetbench[hub]')") from None
    offline = _offline()
    try:
        path = snapshot_download(
            repo,
            revision=rev,
            cache_dir=os.environ.get("HF_HUB_CACHE") or None,
            token=os.environ.get("HF_TOKEN") or None,
            local_files_only=offline,
            allow_patterns=_ALLOW,
        )
    except Exception as e:  # huggingface_hub raises a dozen types (HTTP, offline, gated, missing revision)
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        where = " (HF_HUB_OFFLINE is set: only the local hub cache is searched)" if offline else ""
        raise WeightsError(
            f"{spec}: no such file or directory, and not found as a hub id{where}: {type(e).__name__}: {first}"
        ) from None
    path = Path(path)
    return Snapshot(repo=repo, revision=rev, commit=path.name, path=path)


def local_path(spec: str) -> Path:
    """Where the files of a local path or hub id are (hub ids: the snapshot folder in the cache)."""
    return snapshot(spec).path if is_hub_spec(spec) else Path(spec)
