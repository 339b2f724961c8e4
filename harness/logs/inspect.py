"""Read Inspect `.eval` logs without importing inspect_ai: a zip of JSON (header.json, samples/<id>_epoch_<n>.json,
reductions.json); and `--log-format json` logs, the same parts in one document. Each log is one task: suite
`inspect:<task>`, items = the dataset's sample ids, score = the headline scorer's value reduced over epochs by
Inspect's own reducer (reductions.json; C/I/P/N and booleans read as Inspect's value_to_float does), prompt
hash = the sample's input and target; with several epochs, each epoch's own scores too (the noise floor).

Entries are zstd-compressed by current Inspect (zip method 93; read with `zstandard`) and deflated by older ones.

    python -c "from harness.logs import read_logs; print(read_logs('tests/data/logs/inspect/base'))"
"""

from __future__ import annotations

import io
import json
import struct
import zipfile
from pathlib import Path
from typing import Any

from harness.logs.common import LogsError, LogTask
from harness.types import stable_hash

ZSTD = 93  # zip compression method of zstandard
_VALUES = {"C": 1.0, "I": 0.0, "P": 0.5, "N": 0.0, "yes": 1.0, "no": 0.0, "true": 1.0, "false": 0.0}


def _member(z: zipfile.ZipFile, path: Path, name: str) -> Any:
    try:
        info = z.getinfo(name)
    except KeyError:
        raise LogsError(f"{path}: not an Inspect log ({name} missing from the zip)") from None
    if info.compress_type != ZSTD:
        raw = z.read(name)
    else:  # stdlib zipfile reads zstd only from Python 3.14: decompress the member's bytes ourselves
        try:
            import zstandard
        except ImportError:
            raise LogsError(f"{path}: zstd-compressed Inspect log; reading it needs `pip install zstandard`") from None
        with open(path, "rb") as fh:
            fh.seek(info.header_offset)
            head = fh.read(30)
            name_len, extra_len = struct.unpack("<HH", head[26:30])
            fh.seek(info.header_offset + 30 + name_len + extra_len)
            data = fh.read(info.compress_size)
        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
        raw = reader.read()
    return json.loads(raw)


def to_float(value: Any, where: str) -> float:
    """Inspect's value_to_float: numbers, booleans, C/I/P/N and yes/no/true/false."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        key = value.strip()
        if key in _VALUES or key.lower() in _VALUES:
            return _VALUES.get(key, _VALUES.get(key.lower(), 0.0))
        try:
            return float(key)
        except ValueError:
            pass
    raise LogsError(f"{where}: score value {value!r} is not a number (a dict of scores needs one scorer chosen)")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts or chat messages
        return "\n".join(_text(c.get("text", c.get("content", ""))) for c in content if isinstance(c, dict))
    return ""


def read_eval(path: Path | str) -> LogTask:
    """One `.eval` log as a LogTask; a corrupt or unfinished log is a one-line LogsError naming the file."""
    path = Path(path)
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise LogsError(f"{path}: not a readable Inspect .eval log ({e})") from None
    with z:
        try:
            header = _member(z, path, "header.json")
            reductions = _member(z, path, "reductions.json")
            samples = [_member(z, path, n) for n in z.namelist() if n.startswith("samples/") and n.endswith(".json")]
            return _task(path, header, reductions, samples)
        except (ValueError, zipfile.BadZipFile, EOFError) as e:  # json, zstd and zip errors alike
            raise LogsError(f"{path}: corrupt Inspect log ({type(e).__name__}: {str(e)[:80]})") from None
        except (KeyError, TypeError, AttributeError, IndexError) as e:
            raise LogsError(f"{path}: not in Inspect's log format (missing or odd {e})") from None


def read_json_log(path: Path, doc: dict[str, Any]) -> LogTask:
    """An Inspect log written with `--log-format json`: the same parts in one document."""
    try:
        return _task(path, doc, doc.get("reductions") or [], doc.get("samples") or [])
    except (KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        raise LogsError(f"{path}: not in Inspect's log format (missing or odd {e})") from None


def is_json_log(doc: Any) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("eval"), dict) and "plan" in doc


def _task(path: Path, header: dict, reductions: list, samples: list[dict]) -> LogTask:
    if header.get("status") != "success":
        raise LogsError(f"{path}: Inspect log status is {header.get('status')!r}, not 'success'")
    ev, plan = header["eval"], header.get("plan") or {}
    headline = (header.get("results") or {}).get("headline") or {}
    scorers = [r["scorer"] for r in reductions]
    scorer = headline.get("scorer") or (scorers[0] if scorers else None)
    if scorer not in scorers:
        raise LogsError(f"{path}: no per-sample scores for scorer {scorer!r} (reductions.json has {scorers})")
    reduction = next(r for r in reductions if r["scorer"] == scorer)
    values = {str(s["sample_id"]): s["value"] for s in reduction["samples"]}
    ids = [str(i) for i in ev["dataset"].get("sample_ids") or values]
    missing = [i for i in ids if i not in values]
    if missing:
        raise LogsError(f"{path}: {len(missing)} sample(s) have no {scorer} score (errored?), e.g. {missing[0]!r}")
    names: dict[str, dict[int, dict]] = {}  # sample id -> epoch -> the sample (by its own fields, not file names)
    for sample in samples:
        names.setdefault(str(sample["id"]), {})[int(sample.get("epoch") or 1)] = sample
    epochs = int((ev.get("config") or {}).get("epochs") or 1)
    per_epoch: list[list[float]] = [[] for _ in range(epochs if epochs > 1 else 0)]
    hashes, completions, prompts, refs = [], [], [], []
    for i in ids:
        if i not in names:
            raise LogsError(f"{path}: sample {i!r} is listed in the header but was not logged")
        s = names[i][min(names[i])]
        for k, scores in enumerate(per_epoch):  # each epoch's own score: repeats give the noise floor
            if k + 1 not in names[i]:
                raise LogsError(f"{path}: sample {i!r} has no epoch {k + 1} of {epochs}")
            value = (names[i][k + 1].get("scores") or {}).get(scorer, {}).get("value")
            scores.append(to_float(value, f"{path}: sample {i!r} epoch {k + 1}"))
        target = s.get("target")
        ref = " | ".join(map(str, target)) if isinstance(target, list) else _text(target)  # several accepted
        hashes.append(stable_hash([s.get("input"), s.get("target")], 16))
        completions.append(str((s.get("output") or {}).get("completion", "")))
        prompts.append(_text(s.get("input")))
        refs.append(ref)
    config = ev.get("config") or {}
    tool = f"inspect-ai@{(ev.get('packages') or {}).get('inspect_ai', '?')}"
    return LogTask(
        suite=f"inspect:{ev['task']}",
        tool=tool,
        source=str(path),
        metric=scorer,
        item_ids=tuple(ids),
        scores=tuple(to_float(values[i], f"{path}: sample {i!r}") for i in ids),
        prompt_hashes=tuple(hashes),
        completions=tuple(completions),
        prompts=tuple(prompts),
        references=tuple(refs),
        version={
            "task_version": ev.get("task_version"),
            "dataset": {k: v for k, v in (ev.get("dataset") or {}).items() if k not in ("samples", "sample_ids")},
            "task_args": ev.get("task_args") or {},
            "scorers": ev.get("scorers"),
        },
        prompt={"solver": plan.get("steps"), "epochs": config.get("epochs"), "reducer": config.get("epochs_reducer")},
        generation={k: v for k, v in ((ev.get("model_generate_config") or {}) | (plan.get("config") or {})).items()},
        model={"model": ev.get("model"), "model_args": ev.get("model_args") or {}},
        repeats=tuple(tuple(e) for e in per_epoch),
    )
