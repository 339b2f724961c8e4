"""Chat-message training data on disk: a jsonl file, one `{"messages": [{"role": ..., "content": ...}, ...]}`
per line, read and validated whole before any model loads (`forgetbench train sft --data`, `data-score`).

Each example ends with the assistant turn that is trained on (and scored by data-score); the turns before it
(system, user, earlier assistant turns) are the prompt. A malformed line is a DataError naming the file and the
line, so the CLI exits 2 with one line. Pure: no torch.

    python -c "from harness.chatdata import read_chats; print(len(read_chats('data.jsonl')))"
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ForgetbenchError

ROLES = ("system", "user", "assistant")


class DataError(ForgetbenchError):
    """A chat data file is missing or malformed; the message names the file and the line."""


@dataclass(frozen=True)
class Chat:
    """One training example: the prompt turns and the assistant response trained on, with where it came from."""

    prompt: tuple[dict[str, str], ...]
    response: str
    where: str  # "file.jsonl:12", or "suite addsub: as-train-00012"

    @property
    def messages(self) -> list[dict[str, str]]:
        return [dict(m) for m in self.prompt]


def _check_line(obj: object, where: str) -> Chat:
    if not isinstance(obj, dict) or "messages" not in obj:
        raise DataError(f'{where}: expected an object with "messages"')
    msgs = obj["messages"]
    if not isinstance(msgs, list) or len(msgs) < 2:
        raise DataError(f'{where}: "messages" must be a list of at least 2 turns (a prompt, then the assistant)')
    for k, m in enumerate(msgs):
        if not isinstance(m, dict) or set(m) - {"role", "content"} or not {"role", "content"} <= set(m):
            raise DataError(f'{where}: messages[{k}] must have exactly "role" and "content"')
        if m["role"] not in ROLES:
            raise DataError(f"{where}: messages[{k}].role is {m['role']!r}; expected one of {', '.join(ROLES)}")
        if not isinstance(m["content"], str):
            raise DataError(f"{where}: messages[{k}].content must be a string")
    if msgs[-1]["role"] != "assistant" or not msgs[-1]["content"].strip():
        raise DataError(f"{where}: the last turn must be a non-empty assistant message (the response trained on)")
    if not any(m["role"] == "user" for m in msgs[:-1]):
        raise DataError(f"{where}: no user turn before the assistant response")
    prompt = tuple({"role": m["role"], "content": m["content"]} for m in msgs[:-1])
    return Chat(prompt, msgs[-1]["content"], where)


def read_chats(path: Path | str) -> list[Chat]:
    """Every example of a chat jsonl file (blank lines skipped); DataError naming file:line for a bad one."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"{path}: cannot read chat data ({e.__class__.__name__}: {e})") from None
    chats = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise DataError(f"{where}: not valid JSON ({e})") from None
        chats.append(_check_line(obj, where))
    if not chats:
        raise DataError(f"{path}: no examples")
    return chats


def file_sha256(path: Path | str) -> str:
    """sha256 of the file's bytes: the data's identity in a checkpoint's lineage."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
