"""Call a pure function in a long-lived child process with a wall-clock deadline, from any thread.

`signal.alarm` only interrupts the main thread, and a thread cannot be stopped: a scorer that can run away
(math-verify on a nested `\\sin` answer ran > 120 s in a worker thread) is run here instead. The child is
`python -m harness.deadline MODULE:FUNCTION`, speaking one JSON line per call over pipes. The deadline is the
child's CPU time (Linux /proc; wall clock elsewhere), capped at WALL_FACTOR x in wall time: a loaded machine
must not fail answers an idle one accepts. Past it the child is killed (and restarted by the next call) and
`call` returns TIMEOUT. No fork (unsafe once threads exist), no
re-import of the caller's __main__ (multiprocessing's spawn would), works inside daemonic processes.
Where no child can be started, the call runs in a daemon thread that is abandoned at the deadline: the caller
still gets TIMEOUT in time.

    python -m pytest tests/test_mathcheck.py -q -k deadline
"""

from __future__ import annotations

import atexit
import importlib
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

TIMEOUT = object()  # what `call` returns when the deadline passed
WALL_FACTOR = 6.0  # wall-clock cap of a call, in multiples of its CPU deadline
STARTUP_S = 120.0  # a cold start imports sympy and math-verify; not counted in any call's deadline
_log = logging.getLogger(__name__)
_ROOT = str(Path(__file__).resolve().parents[1])  # the child imports this very copy of harness


def _target(spec: str) -> Any:
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


class Worker:
    """One child process per target, shared by every thread of this process (calls are serialised)."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._broken = False  # a child could not be started: use threads
        atexit.register(self.close)

    def _start(self) -> subprocess.Popen[str] | None:
        env = os.environ | {"PYTHONPATH": os.pathsep.join([_ROOT, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        try:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness.deadline", self.target],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        except OSError as e:
            _log.warning("deadline worker for %s cannot start (%s): using threads", self.target, e)
            return None
        if self._readline(proc, STARTUP_S) != "ready":
            proc.kill()
            proc.wait()
            _log.warning("deadline worker for %s did not start: using threads", self.target)
            return None
        return proc

    @staticmethod
    def _readline(proc: subprocess.Popen[str], timeout: float) -> str | None:
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            return None
        line = proc.stdout.readline()
        return line.strip() if line else None

    def _wait(self, proc: subprocess.Popen[str], deadline_s: float) -> str | None:
        """The reply, or None once the child used deadline_s CPU seconds or WALL_FACTOR x that in wall time.

        CPU time makes the bound independent of machine load (a loaded CI box must not fail correct answers);
        the wall cap still ends a call whose child is stuck without using CPU.
        """
        start = time.monotonic()
        cpu0 = _cpu_seconds(proc.pid)
        while True:
            left = deadline_s * WALL_FACTOR - (time.monotonic() - start)
            if left <= 0:
                return None
            line = self._readline(proc, min(0.1, left)) if cpu0 is not None else self._readline(proc, deadline_s)
            if line is not None or proc.poll() is not None:
                return line
            cpu = _cpu_seconds(proc.pid)
            if cpu is None or cpu0 is None or cpu - cpu0 > deadline_s:
                return None

    def call(self, args: list[Any], deadline_s: float) -> Any:
        """target(*args) in the child, or TIMEOUT past deadline_s CPU seconds (the child is then killed)."""
        with self._lock:
            if not self._broken and (self._proc is None or self._proc.poll() is not None):
                self._proc = self._start()
                self._broken = self._proc is None
            if self._broken or self._proc is None:
                return _in_thread(self.target, args, deadline_s)
            proc = self._proc
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(args) + "\n")
                proc.stdin.flush()
            except (BrokenPipeError, OSError):
                self._proc = None
                return TIMEOUT
            line = self._wait(proc, deadline_s)
            if line is None:  # over the deadline (or the child died): kill it, the next call restarts it
                proc.kill()
                proc.wait()
                self._proc = None
                return TIMEOUT
            reply = json.loads(line)
            if "error" in reply:
                raise RuntimeError(f"{self.target}: {reply['error']}")
            return reply["result"]

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()


def _cpu_seconds(pid: int) -> float | None:
    """user + system CPU time of a process (Linux /proc); None where that cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _in_thread(target: str, args: list[Any], deadline_s: float) -> Any:
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(_target(target)(*args)), daemon=True)
    thread.start()
    thread.join(deadline_s)
    return box[0] if box else TIMEOUT


def serve(target: str) -> None:
    """The child: import the target once, then answer one JSON line per request until stdin closes."""
    fn = _target(target)
    warm = getattr(importlib.import_module(target.split(":")[0]), "warm_up", None)
    if warm:  # the module's own heavy imports happen before "ready": never inside a call's deadline
        warm()
    print("ready", flush=True)
    for line in sys.stdin:
        try:
            reply = {"result": fn(*json.loads(line))}
        except Exception as e:  # a scorer bug is reported to the caller, the child keeps serving
            reply = {"error": f"{type(e).__name__}: {e}"}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    serve(sys.argv[1])
