"""Write the outputs of one run as a unit: a fresh per-process directory beside `--out`, swapped into place.

`commit(out, write)` calls `write(stage)` on an empty directory `.<out>.<pid>-<token>.new` next to `out`,
then exchanges it with `out` in one rename (Linux renameat2 RENAME_EXCHANGE; elsewhere out -> .old, stage
-> out). A failed write or a kill -9 at any point leaves `out` holding the previous output, or (only in the
two-rename fallback, killed between the renames) nothing; never a mix of two runs. Two processes writing
one `--out` each commit a whole unit; the last one wins. Stage dirs of dead processes are removed by the
next commit. Readers skip hidden dirs (the leaderboard does).

An existing `--out` is only replaced when it holds nothing but files forgetbench writes (OUTPUT_NAMES):
`--out reports` must never swap away a record store. A symlinked `--out` is refused in one line (the swap
would replace the link itself and leave its target stale); `commit(check=...)` lets the leaderboard use the
same unit swap with its own rule for what it may replace.

    python -m pytest tests/test_outputs.py -q
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from harness.errors import ForgetbenchError

OUTPUT_NAMES = frozenset(
    {"config.json", "results.json", "results.parquet", "report.html", "gate.md", "junit.xml", "gate.json", "track.html"}
)
_STAGE = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]+\.(?:new|old)$")
_OLD_BUILD = re.compile(r"^\.(?P<name>.+)\.building-(?P<pid>\d+)$")


class InputError(ForgetbenchError):
    """A flag or path is unusable; the message names it (exit 2, nothing written)."""


def check_out(out: Path) -> None:
    """--out can take this run's outputs: a new path, or a directory of forgetbench outputs we may replace."""
    check_not_link(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {out}: exists and is not a directory")
    if out.is_dir():
        foreign = sorted(
            p.name
            for p in out.iterdir()
            if p.name not in OUTPUT_NAMES and not (p.name.startswith(".") and p.name.endswith(".tmp"))
        )
        if foreign:
            raise InputError(
                f"--out {out}: holds files forgetbench did not write ({', '.join(foreign[:3])}); "
                "give a new or empty directory"
            )
        if not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"--out {out}: not writable")
    parent = out.absolute().parent
    probe = parent
    while not probe.exists() and probe.parent != probe:
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"--out {out}: {probe} is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"--out {out}: {probe} is not writable")


def check_not_link(out: Path) -> None:
    """A symlinked --out is refused: swapping a fresh directory in would replace the link, not its target,
    and writing through it would let a link choose where outputs land. Give the real directory instead."""
    if out.is_symlink():
        raise InputError(f"--out {out}: is a symbolic link (to {os.readlink(out)}); give the directory itself")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sweep(out: Path) -> None:
    """Remove stage dirs left beside `out` by killed processes (their pid is gone), and the build dirs
    `.<out>.building-<pid>` older leaderboards left."""
    for p in out.parent.glob(f".{out.name}.*"):
        m = _STAGE.match(p.name) or _OLD_BUILD.match(p.name)
        if m and m["name"] == out.name and int(m["pid"]) != os.getpid() and not _alive(int(m["pid"])):
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p, ignore_errors=True)


def _sibling(out: Path, kind: str) -> Path:
    return out.parent / f".{out.name}.{os.getpid()}-{secrets.token_hex(4)}.{kind}"


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two directories (Linux renameat2); False when the platform or filesystem cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _swap_in(stage: Path, out: Path, olds: list[Path], exchange: bool = True) -> None:
    """Put `stage` at `out`; `olds` collects the directories now holding previous outputs (to delete)."""
    for _ in range(1000):  # another process may move `out` between our steps: retry until one step lands
        if out.is_dir():
            try:
                if exchange and _exchange(stage, out):
                    olds.append(stage)
                    return
            except FileNotFoundError:
                continue
            old = _sibling(out, "old")
            try:
                os.rename(out, old)
            except FileNotFoundError:
                continue
            olds.append(old)
        try:
            os.rename(stage, out)  # replaces nothing, or an empty dir another process just made
            return
        except OSError as e:
            if e.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
    raise OSError(errno.EBUSY, "could not move the output into place (other writers kept replacing it)", str(out))


def commit(
    out: Path, write: Callable[[Path], None], exchange: bool = True, check: Callable[[Path], None] = check_out
) -> Path:
    """Run `write(stage)` into a fresh directory, then swap it in as `out`; on any failure `out` is untouched.
    `check(out)` refuses an `out` that must not be replaced (default: anything but forgetbench's outputs)."""
    check(out)
    out.absolute().parent.mkdir(parents=True, exist_ok=True)
    _sweep(out)
    stage = _sibling(out, "new")
    stage.mkdir()
    olds: list[Path] = []
    try:
        write(stage)
        _swap_in(stage, out, olds, exchange)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    finally:
        for old in olds:
            shutil.rmtree(old, ignore_errors=True)
    return out
