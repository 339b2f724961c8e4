"""Append-only, content-addressed record store (parquet) on a local path or any fsspec URL, safe against kills.

Layout under the runs directory (default reports/runs; or s3://bucket/prefix, gs://..., memory://..., file://...):

    records/<fingerprint>/<suite>@<version>/<decoding>__<engine>/part-<time>-<pid>-<n>-<rand>.parquet
    checkpoints/<fingerprint>.json          # what we knew about the checkpoint when it was evaluated
    claims/<fingerprint>/<suite>@<version>/<decoding>__<engine>...  # who is evaluating a group now

Each evaluated batch becomes one part file under a unique name that appears whole or not at all: on a
filesystem it is written to a temp name and renamed; on an object store (no rename) it is one put. A
killed run loses at most the batch in flight. Reads merge all parts; for the same item the newest part wins.
A part whose columns are missing or mistyped is a StoreError naming the file.

Concurrent runs on one store evaluate each group once: `claim` holds the groups a run is about to
evaluate (an fcntl lock on a local path, released by the kernel when the holder dies; claim files with a
heartbeat on a URL, see harness/claims.py) and the caller re-reads the store once it holds them.

    python -c "from harness.store import Store; print(Store('reports/runs').fingerprints())"
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from harness.errors import ForgetbenchError
from harness.fsio import UnsafePathError, atomic_write, check_no_links, read_nofollow, safe_name
from harness.types import SCHEMA_VERSION, Record, RecordKey, Score

_SCHEMA = pa.schema(
    [
        ("fingerprint", pa.string()),
        ("suite", pa.string()),
        ("data_version", pa.string()),
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
# Object stores commit a put atomically and have no rename: a part there is written in one put. Every
# other fsspec filesystem (file://, sftp, hdfs...) gets temp name + mv, which is atomic where a rename is.
_ONE_PUT = {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2", "oci", "memory"}
# Parts written before the data version had one name carry it as "suite_version": read, never written.
_RENAMED = {"suite_version": "data_version"}


class StoreError(ForgetbenchError):
    """A stored file is unreadable or from an incompatible schema, or the store cannot be reached (names it)."""


def _safe(part: str) -> str:
    return part.replace("/", "_").replace(os.sep, "_")


def _check_columns(table: pa.Table, part: object) -> pa.Table:
    """Every column the Record needs, of the right kind, without nulls: else the file is named, not a KeyError."""
    table = table.rename_columns([_RENAMED.get(n, n) for n in table.column_names])
    for f in _SCHEMA:
        found = table.schema.get_all_field_indices(f.name)
        if len(found) != 1:
            raise StoreError(f"{part}: record file {'lacks' if not found else 'repeats'} column {f.name!r}")
        kind = table.schema.field(found[0]).type
        ok = pa.types.is_integer(kind) if pa.types.is_integer(f.type) else kind in (pa.string(), pa.large_string())
        if not ok:
            raise StoreError(f"{part}: column {f.name!r} is {kind}, expected {f.type}")
        if table.column(found[0]).null_count:
            raise StoreError(f"{part}: column {f.name!r} has {table.column(found[0]).null_count} empty value(s)")
    return table


def is_url(root: Path | str) -> bool:
    return isinstance(root, str) and "://" in root


_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://.")


def check_url(root: str) -> None:
    """A store URL needs a scheme and a location (`://x` or `s3://` alone would land in a local folder)."""
    if not _URL.match(root):
        raise StoreError(f"--runs-dir {root!r}: not a URL (expected scheme://location, e.g. s3://bucket/runs)")


class Store:
    """Records on a local path (os calls, fcntl claims) or an fsspec URL (one-put parts, claim files)."""

    def __init__(self, root: Path | str, settle_s: float = 1.0, stale_s: float = 60.0) -> None:
        self.url = str(root)
        self._seq = 0
        self._fs: Any = None
        if is_url(root):
            check_url(str(root))
            try:
                from fsspec.core import url_to_fs

                self._fs, path = url_to_fs(str(root))
            except (ImportError, ValueError, OSError) as e:
                raise StoreError(f"record store {root}: cannot open ({type(e).__name__}: {e})") from None
            self.root: Path | str = path.rstrip("/")
            protocol = self._fs.protocol if isinstance(self._fs.protocol, str) else self._fs.protocol[0]
            self._one_put = protocol in _ONE_PUT
            # file:// is this machine's disk: its parts and claim files get the local no-follow writes and reads
            self._disk = protocol in ("file", "local")
            from harness.claims import ClaimFiles

            self._claims = ClaimFiles(self._fs, self._write, settle_s=settle_s, stale_s=stale_s)
        else:
            self.root = Path(root)
            self._disk = True

    # -- paths ----------------------------------------------------------------------------------------
    def _join(self, *parts: str) -> Path | str:
        return self.root.joinpath(*parts) if isinstance(self.root, Path) else "/".join([self.root, *parts])

    def _rel(self, key: RecordKey) -> tuple[str, str, str]:
        rel = key.fingerprint, f"{_safe(key.suite)}@{_safe(key.data_version)}", f"{key.decoding}__{_safe(key.engine)}"
        try:  # names from records and listings are data: none may climb out of the store
            for part in rel:
                safe_name(part, "record store key")
        except UnsafePathError as e:
            raise StoreError(str(e)) from None
        return rel

    def key_dir(self, key: RecordKey) -> Path | str:
        return self._join("records", *self._rel(key))

    def _name(self, path: Path | str) -> str:
        """A path as the user wrote the store: with its protocol (memory://, s3://) for messages."""
        return self._fs.unstrip_protocol(str(path)) if self._fs is not None else str(path)

    # -- low-level file access: local path or fsspec ----------------------------------------------------
    def _list(self, d: Path | str, pattern: str) -> list[Path | str]:
        try:
            if self._fs is None:
                return sorted(Path(d).glob(pattern)) if Path(d).is_dir() else []
            return sorted(self._fs.glob(f"{d}/{pattern}"))
        except OSError as e:
            raise StoreError(f"{self._name(d)}: cannot list the record store ({e})") from None

    def _read(self, path: Path | str) -> bytes | None:
        try:
            return read_nofollow(Path(path)) if self._disk else self._fs.cat_file(path)
        except FileNotFoundError:
            return None
        except UnsafePathError as e:
            raise StoreError(f"{e} (record store)") from None

    def _write(self, path: Path | str, data: bytes) -> None:
        """Commit `data` at `path` whole or not at all, under a per-writer temp name (no collisions)."""
        try:
            if self._disk:  # no link planted below the store's root is followed
                atomic_write(Path(path), data, within=Path(self.root))
            elif self._one_put:
                self._fs.pipe_file(path, data)  # an object appears whole or not at all
            else:
                head, name = str(path).rsplit("/", 1)
                self._fs.makedirs(head, exist_ok=True)
                tmp = f"{head}/.{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
                self._fs.pipe_file(tmp, data)
                self._fs.mv(tmp, str(path))
        except UnsafePathError as e:
            raise StoreError(f"{e} (record store)") from None
        except OSError as e:
            raise StoreError(f"{self._name(path)}: cannot write to the record store ({e})") from None

    # -- records --------------------------------------------------------------------------------------
    def load(self, key: RecordKey) -> dict[str, Record]:
        """The group's records by item id (newest wins)."""
        out: dict[str, Record] = {}
        for part in self._list(self.key_dir(key), "part-*.parquet"):
            try:
                data = self._read(part)
                if data is None:  # removed between list and read (a user cleaning up): nothing to merge
                    continue
                # Single-threaded: the file is small and already in memory, and Arrow's decode pool has been
                # seen aborting at interpreter exit ("terminate called without an active exception",
                # apache/arrow#34314) in a CLI run that had finished its work.
                table = pq.read_table(pa.BufferReader(data), use_threads=False, pre_buffer=False)
            except (OSError, pa.ArrowInvalid) as e:
                raise StoreError(f"{self._name(part)}: unreadable record file ({str(e).splitlines()[0]})") from None
            table = _check_columns(table, self._name(part))
            for row in table.to_pylist():
                if row["schema"] != SCHEMA_VERSION:
                    raise StoreError(
                        f"{self._name(part)}: schema {row['schema']} != {SCHEMA_VERSION}; re-run or migrate"
                    )
                out[row["item_id"]] = Record(**{k: row[k] for k in _NAMES})
        return out

    def append(self, records: list[Record]) -> Path | str | None:
        """Write one part file per (fingerprint, suite, decoding, engine) group, atomically."""
        if not records:
            return None
        groups: dict[RecordKey, list[Record]] = {}
        for r in records:
            groups.setdefault(RecordKey.of_record(r), []).append(r)
        last = None
        for key, recs in groups.items():
            self._seq += 1
            # time first: names sort by age (newest wins); pid + random part: unique across machines
            name = f"part-{time.time_ns()}-{os.getpid()}-{self._seq:05d}-{uuid.uuid4().hex[:6]}.parquet"
            sink = pa.BufferOutputStream()
            pq.write_table(pa.Table.from_pylist([asdict(r) for r in recs], schema=_SCHEMA), sink)
            d = self.key_dir(key)
            last = d / name if isinstance(d, Path) else f"{d}/{name}"
            self._write(last, sink.getvalue().to_pybytes())
        return last

    # -- scores: a cache beside the records, keyed by the scorer's version ------------------------------
    # ".answers": entries carry the parsed answer (harness/breakdown.py). The older `scores@<v>.json` files
    # hold no answers; they are never read (an absent answer would read as "no answer found").
    def _scores_path(self, key: RecordKey, scorer_version: str) -> Path | str:
        d = self.key_dir(key)
        name = f"scores@{_safe(scorer_version)}.answers.json"
        return d / name if isinstance(d, Path) else f"{d}/{name}"

    def load_scores(self, key: RecordKey, scorer_version: str) -> dict[str, tuple[str, Score]]:
        """item id -> (hash of the completion scored, its Score) under this scorer version; {} if none or
        unreadable (a cache: whatever is missing or garbled is scored again, never trusted)."""
        data = self._read(self._scores_path(key, scorer_version))
        try:
            raw = json.loads(data) if data else {}
            return {
                k: (
                    str(v[0]),
                    Score(
                        float(v[1]),
                        None if v[2] is None else str(v[2]),
                        str(v[3]),
                        tuple((str(c), float(x)) for c, x in v[4]),
                    ),
                )
                for k, v in raw.items()
            }
        except (ValueError, TypeError, IndexError, AttributeError):
            return {}

    def save_scores(self, key: RecordKey, scorer_version: str, scores: dict[str, tuple[str, Score]]) -> None:
        """Rewrite the score cache whole (atomic; a concurrent writer's entries may be lost: they are rescored)."""
        body = json.dumps(
            {
                k: [h, v.value, v.answer, v.explanation, [list(p) for p in v.parts]]
                for k, (h, v) in sorted(scores.items())
            },
            separators=(",", ":"),
        )
        self._write(self._scores_path(key, scorer_version), body.encode())

    # -- claims: one evaluator per group at a time ------------------------------------------------------
    @contextlib.contextmanager
    def claim(self, keys: Iterable[RecordKey], on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold every group in `keys` until the block ends; re-read the store inside it.

        Waits while another process holds one of them (on_wait gets one line saying who). A holder that
        dies releases its claims: at once on a local path, after stale_s without a heartbeat on a URL.
        """
        rels = sorted({self._rel(k) for k in keys})
        if self._fs is not None:
            with self._claims.hold(["/".join([str(self.root), "claims", *r]) for r in rels], on_wait):
                yield
            return
        with contextlib.ExitStack() as held:
            for r in rels:  # sorted: two claimants of overlapping groups never deadlock
                held.enter_context(_flock(self.root, self.root.joinpath("claims", *r[:2], f"{r[2]}.lock"), on_wait))
            yield

    # -- checkpoint facts -------------------------------------------------------------------------------
    def note_checkpoint(self, fingerprint: str, info: dict[str, Any]) -> None:
        """Remember registry facts (id, method, base, trained_on...) next to the records, for leaderboards."""
        data = json.dumps(info, indent=1, sort_keys=True, default=str).encode()
        self._write(self._join("checkpoints", f"{fingerprint}.json"), data)

    def checkpoint_info(self, fingerprint: str) -> dict[str, Any]:
        data = self._read(self._join("checkpoints", f"{fingerprint}.json"))
        return json.loads(data) if data else {}

    def fingerprints(self) -> list[str]:
        d = self._join("records")
        if self._fs is None:
            return sorted(p.name for p in Path(d).iterdir()) if Path(d).exists() else []
        try:
            return sorted(p.rstrip("/").rsplit("/", 1)[-1] for p in self._fs.ls(d, detail=False))
        except FileNotFoundError:
            return []


def _owner() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


@contextlib.contextmanager
def _flock(root: Path, path: Path, on_wait: Callable[[str], None] | None) -> Iterator[None]:
    """An exclusive fcntl lock on `path`; the kernel drops it when the holder exits, even on kill -9.

    A link planted at the lock or above it (below the store's root) is refused, never truncated through."""
    try:
        check_no_links(path, root)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except UnsafePathError as e:
        raise StoreError(f"{e} (record store claim)") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise StoreError(f"{path}: claim lock is a symbolic link forgetbench did not create; refused") from None
        raise StoreError(f"{path}: cannot create a claim in the record store ({e})") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait:
                holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                on_wait(f"waiting for {path.parent.name}/{path.stem}: being evaluated by {holder}")
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, _owner().encode(), 0)  # for the waiting message only; the lock is the flock
        yield
    finally:
        os.close(fd)
