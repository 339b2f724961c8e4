"""Files from untrusted places: one atomic write, names that stay names, YAML without aliases.

Every file forgetbench writes in place goes through `atomic_write`: a temp file created next to the target
(O_EXCL | O_NOFOLLOW: a planted link at the temp name is never followed), then one rename. A target that is
a symbolic link forgetbench did not create is refused, not replaced or written through, and with `within`
every directory between that root and the file must be a real directory inside it.

Names that come from a checkpoint, a registry, a store or a results file are data, never locations:
`safe_name` refuses separators, `..`, absolute paths and NUL; `inside` resolves a path and checks that it
stays under its root. `load_yaml` refuses aliases (a billion-laughs file would otherwise expand to GBs) and
keys given twice.

    python -m pytest tests/test_hostile.py -q
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from harness.errors import ForgetbenchError


class UnsafePathError(ForgetbenchError):
    """A name or path from a file would land outside its place, or a link we did not create is in the way."""


def safe_name(name: object, what: str) -> str:
    """`name` as one plain file name (no separators, no `..`, not absolute); UnsafePathError naming `what`."""
    if (
        not isinstance(name, str)
        or not name
        or name in (".", "..")
        or "/" in name
        or "\\" in name
        or "\0" in name
        or os.path.isabs(name)
    ):
        raise UnsafePathError(f"{what}: {name!r} is not a plain file name (no separators, '..' or absolute paths)")
    return name


def inside(root: Path, *names: str, what: str = "path") -> Path:
    """root/names..., each a safe name, resolved and checked to stay under root (links included)."""
    for n in names:
        safe_name(n, what)
    path = root.joinpath(*names)
    real_root = root.resolve()
    if not path.resolve().is_relative_to(real_root):
        raise UnsafePathError(f"{what}: {path} resolves outside {root}")
    return path


def check_no_links(path: Path, within: Path) -> None:
    """No component from `within` (exclusive: the user chose it) down to `path` is a symbolic link."""
    try:
        rel = path.absolute().relative_to(within.absolute())
    except ValueError:
        raise UnsafePathError(f"{path}: not under {within}") from None
    cur = within.absolute()
    for part in rel.parts:
        safe_name(part, str(path))
        cur = cur / part
        if cur.is_symlink():
            raise UnsafePathError(f"{cur}: is a symbolic link forgetbench did not create; refusing to follow it")


@contextlib.contextmanager
def atomic_open(path: Path, within: Path | None = None) -> Iterator[BinaryIO]:
    """A binary file handle whose contents land at `path` whole when the block ends, or not at all when it
    raises. The temp file is created O_EXCL | O_NOFOLLOW next to the target; a target that is a symbolic
    link is refused (UnsafePathError), and so is any link below `within` when given. OSError (a full disk,
    no permission) propagates for the caller to name its flag or file."""
    path = Path(path)
    if within is not None:
        check_no_links(path, within)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise UnsafePathError(f"{path}: is a symbolic link forgetbench did not create; refusing to replace it")
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
        os.replace(tmp, path)  # the rename is the commit point
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path, data: bytes | str, within: Path | None = None) -> Path:
    """Write `data` at `path` whole or not at all, never through a link we did not create (see atomic_open)."""
    with atomic_open(path, within) as fh:
        fh.write(data.encode() if isinstance(data, str) else data)
    return Path(path)


def read_nofollow(path: Path) -> bytes:
    """The bytes of `path`, refusing a symbolic link (O_NOFOLLOW); FileNotFoundError when absent."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as e:
        if e.errno == errno.ELOOP:  # the last component is a link
            raise UnsafePathError(f"{path}: is a symbolic link forgetbench did not create; not read") from None
        raise
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def did_you_mean(name: str, known: Iterable[str]) -> str:
    """' (did you mean X?)' for a near miss among `known`, else ''."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _StrictLoader(yaml.SafeLoader):
    """safe_load without aliases (billion laughs) and without a key given twice in one mapping."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*name) are not allowed (line {mark.line + 1})", mark
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                twice = key in seen
            except TypeError:  # a list or mapping as a key
                raise yaml.constructor.ConstructorError(
                    None, None, f"a key must be a string (line {key_node.start_mark.line + 1})", key_node.start_mark
                ) from None
            if twice:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} given twice (line {key_node.start_mark.line + 1})", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, error: type[ForgetbenchError]) -> Any:
    """Parse a YAML file (aliases and repeated keys refused); `error` names the file in one line."""
    try:
        text = Path(path).read_bytes().decode("utf-8")
    except IsADirectoryError:
        raise error(f"{path}: is a directory, not a YAML file") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start})") from None
    except OSError as e:
        raise error(f"{path}: cannot read ({e.strerror or e})") from None
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader subclass)
    except (yaml.constructor.ConstructorError, yaml.composer.ComposerError) as e:
        raise error(f"{path}: {e.problem}") from None
    except yaml.YAMLError as e:
        raise error(f"{path}: not valid YAML: {str(e).splitlines()[0]}") from None
