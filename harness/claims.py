"""Claim files: a mutual-exclusion claim on record groups in a store without locks (s3://, gs://, file://...).

Object stores have neither fcntl nor an atomic create-if-absent that fsspec exposes, so a claimant writes
one small JSON file into each group's claims folder (all under one name: claim-<time>-<token>.json, so
every group orders claimants the same way), waits `settle_s` for concurrent writes to land, and lists.
It takes the claim when, in every group, it is the oldest live claimant and nobody else is marked held;
it then marks itself held, waits `settle_s` again and backs off if an older claimant also marked itself
held. A background thread rewrites the files every stale_s/4 (the heartbeat); a claim whose heartbeat is
older than `stale_s`, or whose owner process is gone on this host, is stale and removed by the next
claimant. Exclusion holds when a put is visible to other clients within `settle_s` (S3 and GCS are
strongly consistent); if it ever failed, two runs would evaluate the same items twice, which costs model
time only: parts have unique names and reads keep the newest record per item.

    python -m pytest tests/test_store.py -q -k claim
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


class ClaimFiles:
    """Claims on folders of an fsspec filesystem; `write(path, bytes)` must commit a file whole."""

    def __init__(
        self, fs: Any, write: Callable[[str, bytes], None], settle_s: float = 1.0, stale_s: float = 60.0
    ) -> None:
        self.fs, self._write = fs, write
        self.settle_s, self.stale_s = settle_s, stale_s
        self.host, self.pid = socket.gethostname(), os.getpid()
        self._mine: dict[str, bool] = {}  # claim file -> marked held; what the heartbeat rewrites
        self._lock = threading.Lock()
        self._beat: threading.Thread | None = None

    @contextlib.contextmanager
    def hold(self, folders: list[str], on_wait: Callable[[str], None] | None = None) -> Iterator[None]:
        """Hold every folder's claim until the block ends (all or none: no deadlock between claimants)."""
        name = f"claim-{time.time_ns():020d}-{uuid.uuid4().hex[:12]}.json"
        mine = {d: f"{d}/{name}" for d in folders}
        with self._lock:
            self._mine.update(dict.fromkeys(mine.values(), False))
        self._start_heartbeat()
        try:
            for p in mine.values():
                self._put(p)
            told = False
            while not self._try(mine):
                if on_wait and not told:
                    on_wait(f"waiting for {len(folders)} record group(s) claimed by {self._holder(mine)}")
                    told = True
                time.sleep(self.settle_s)
            yield
        finally:
            with self._lock:
                for p in mine.values():
                    self._mine.pop(p, None)
            for p in mine.values():
                with contextlib.suppress(OSError):
                    self.fs.rm_file(p)

    # -- the protocol -------------------------------------------------------------------------------
    def _try(self, mine: dict[str, str]) -> bool:
        time.sleep(self.settle_s)  # let claims written at the same moment land before we look
        for d, p in mine.items():
            live = self._live(d)
            if p not in live:  # someone took us for stale (a long pause): claim again, keep our place
                self._put(p)
                return False
            if min(live) != p or any(i.get("held") for n, i in live.items() if n != p):
                return False
        self._mark(mine, True)
        time.sleep(self.settle_s)  # a claimant that looked at the same time may have marked itself too
        for d, p in mine.items():
            live = self._live(d)
            if p not in live or any(i.get("held") and n < p for n, i in live.items() if n != p):
                self._mark(mine, False)
                return False
        return True

    def _live(self, folder: str) -> dict[str, dict[str, Any]]:
        out = {}
        try:
            paths = self.fs.glob(f"{folder}/claim-*.json")
        except FileNotFoundError:
            paths = []
        for p in paths:
            try:
                info = json.loads(self.fs.cat_file(p))
            except (FileNotFoundError, ValueError):
                continue  # released while we listed
            if self._stale(info):
                with contextlib.suppress(OSError):
                    self.fs.rm_file(p)
                continue
            out[p] = info
        return out

    def _stale(self, info: dict[str, Any]) -> bool:
        if time.time() - float(info.get("heartbeat", 0)) > self.stale_s:
            return True
        pid = info.get("pid")
        return info.get("host") == self.host and pid != self.pid and isinstance(pid, int) and not _alive(pid)

    def _holder(self, mine: dict[str, str]) -> str:
        for d, p in mine.items():
            for n, i in sorted(self._live(d).items()):
                if n != p:
                    return f"pid {i.get('pid')} on {i.get('host')}"
        return "another process"

    # -- writing our claim files (under the lock: nothing is rewritten after release) ------------------
    def _put(self, path: str) -> None:
        with self._lock:
            if path in self._mine:
                body = {"host": self.host, "pid": self.pid, "heartbeat": time.time(), "held": self._mine[path]}
                self._write(path, json.dumps(body).encode())

    def _mark(self, mine: dict[str, str], held: bool) -> None:
        for p in mine.values():
            with self._lock:
                if p in self._mine:
                    self._mine[p] = held
            self._put(p)

    def _start_heartbeat(self) -> None:
        with self._lock:
            if self._beat is not None:
                return
            self._beat = threading.Thread(target=self._heartbeat, name="forgetbench-claims", daemon=True)
            self._beat.start()

    def _heartbeat(self) -> None:
        while True:
            time.sleep(self.stale_s / 4)
            with self._lock:
                paths = list(self._mine)
            for p in paths:
                with contextlib.suppress(Exception):  # an unreachable store now: the next beat retries
                    self._put(p)
