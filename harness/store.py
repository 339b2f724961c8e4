"""Append-only, content-addressed record store (parquet), safe against kills.

Layout under the runs directory (default reports/runs):

    records/<fingerprint>/<suite>@<version>/<decoding>__<engine>/part-<time>-<pid>-<n>.parquet
    checkpoints/<fingerprint>.json          # what we knew about the checkpoint when it was evaluated

Each evaluated batch becomes one part file, written to a temp name and renamed: a killed run loses
at most the batch in flight and never leaves a half-written part. Reads merge all parts; for the
same (item, prompt hash) the newest part wins.

    python -c "from harness.store import Store; print(Store('reports/runs').fingerprints())"
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.types import SCHEMA_VERSION, Record

_SCHEMA = pa.schema(
    [
        ("fingerprint", pa.string()),
        ("suite", pa.string()),
        ("suite_version", pa.string()),
        ("item_id", pa.string()),
        ("prompt_hash", pa.string()),
        ("decoding", pa.string()),
        ("engine", pa.string()),
        ("completion", pa.string()),
        ("finish_reason", pa.string()),
        ("n_tokens", pa.int64()),
        ("schema", pa.int64()),
    ]
)
_NAMES = [f.name for f in fields(Record)]


class StoreError(Exception):
    """A stored file is unreadable or from an incompatible schema (names the file)."""


def _safe(part: str) -> str:
    return part.replace("/", "_").replace(os.sep, "_")


class Store:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self._seq = 0

    def key_dir(self, fingerprint: str, suite: str, version: str, decoding: str, engine: str) -> Path:
        return self.root / "records" / fingerprint / f"{_safe(suite)}@{_safe(version)}" / f"{decoding}__{_safe(engine)}"

    def load(self, fingerprint: str, suite: str, version: str, decoding: str, engine: str) -> dict[str, Record]:
        """Records by item id (newest wins)."""
        d = self.key_dir(fingerprint, suite, version, decoding, engine)
        out: dict[str, Record] = {}
        if not d.exists():
            return out
        for part in sorted(d.glob("part-*.parquet")):
            try:
                table = pq.read_table(part)
            except (OSError, pa.ArrowInvalid) as e:
                raise StoreError(f"{part}: unreadable record file ({e})") from None
            rows = table.to_pylist()
            for row in rows:
                if row.get("schema") != SCHEMA_VERSION:
                    raise StoreError(f"{part}: schema {row.get('schema')} != {SCHEMA_VERSION}; re-run or migrate")
                out[row["item_id"]] = Record(**{k: row[k] for k in _NAMES})
        return out

    def append(self, records: list[Record]) -> Path | None:
        """Write one part file per (fingerprint, suite, decoding, engine) group, atomically."""
        if not records:
            return None
        groups: dict[tuple[str, ...], list[Record]] = {}
        for r in records:
            groups.setdefault((r.fingerprint, r.suite, r.suite_version, r.decoding, r.engine), []).append(r)
        last = None
        for key, recs in groups.items():
            d = self.key_dir(*key)
            d.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = f"part-{time.time_ns()}-{os.getpid()}-{self._seq:05d}.parquet"
            tmp = d / f".{name}.tmp"
            table = pa.Table.from_pylist([asdict(r) for r in recs], schema=_SCHEMA)
            pq.write_table(table, tmp)
            os.replace(tmp, d / name)  # the rename is the commit point
            last = d / name
        return last

    def note_checkpoint(self, fingerprint: str, info: dict[str, Any]) -> None:
        """Remember registry facts (id, method, base, trained_on...) next to the records, for leaderboards."""
        path = self.root / "checkpoints" / f"{fingerprint}.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(json.dumps(info, indent=1, sort_keys=True, default=str))
        os.replace(tmp, path)

    def checkpoint_info(self, fingerprint: str) -> dict[str, Any]:
        path = self.root / "checkpoints" / f"{fingerprint}.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def fingerprints(self) -> list[str]:
        d = self.root / "records"
        return sorted(p.name for p in d.iterdir()) if d.exists() else []
