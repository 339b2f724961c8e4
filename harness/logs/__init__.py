"""Bring your own logs: lm-eval `--log_samples` output and Inspect `.eval` logs read as SuiteResults, so `compare`,
`gate`, `report` and `leaderboard` give the paired comparison without loading a model (no torch, no inference).

A checkpoint is `NAME=PATH` (PATH: a directory of logs, a results_*.json or an .eval file), a registry id whose
entry has `logs: PATH`, or a bare PATH (named after it). Each task becomes a suite `lmeval:<task>` or
`inspect:<task>`; the base's tasks are the suites, every candidate must have logged each of them on the same
items with the same task version, prompt and generation settings (else one LogsError line saying which).
Items missing from a candidate's log are refused, never dropped: the comparison is on the base's item set.

    forgetbench compare --from-logs base=tests/data/logs/lmeval/base cand=tests/data/logs/lmeval/cand
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness.logs.common import LogsError, LogTask, check_pair
from harness.logs.inspect import is_json_log, read_eval, read_json_log
from harness.logs.lmeval import read_results, results_files
from harness.types import Checkpoint, SuiteResult

__all__ = ["LogsError", "LogTask", "Logged", "check_pair", "load", "read_logs"]


def read_logs(path: Path | str) -> dict[str, LogTask]:
    """Every task logged under `path` (lm-eval and Inspect alike), by suite name."""
    path = Path(path)
    if not path.exists():
        raise LogsError(f"{path}: no such file or directory")
    evals = [path] if path.suffix == ".eval" else sorted(path.rglob("*.eval")) if path.is_dir() else []
    out: dict[str, LogTask] = {}
    json_logs = _inspect_json(path)
    if path.suffix != ".eval" and (path.is_dir() or path.suffix == ".json") and not (path.is_file() and json_logs):
        out |= read_results(path) if results_files(path) else {}
    for f in [*evals, *json_logs]:
        task = read_eval(f) if f.suffix == ".eval" else read_json_log(f, json_logs[f])
        if task.suite in out:
            raise LogsError(f"{path}: {task.suite} is logged twice ({out[task.suite].source} and {f}); give one file")
        out[task.suite] = task
    if not out:
        raise LogsError(f"{path}: no lm-eval results_*.json (with samples) or Inspect .eval/.json logs found")
    return out


def _inspect_json(path: Path) -> dict[Path, dict]:
    """Inspect logs in JSON format under `path` (any .json that is not lm-eval's and has Inspect's header)."""
    files = [path] if path.suffix == ".json" else sorted(path.rglob("*.json")) if path.is_dir() else []
    out = {}
    for f in files:
        if f.name.startswith(("results_", "samples_")):
            continue
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError, UnicodeDecodeError):
            continue  # not a log of either tool (or lm-eval's, named otherwise): read_results says what is wrong
        if is_json_log(doc):
            out[f] = doc
    return out


@dataclass
class Logged:
    """What `load` read: checkpoints (base first), their results by suite, and the items' prompt texts."""

    checkpoints: list[Checkpoint]
    results: dict[str, dict[str, SuiteResult]]
    prompts: dict[str, dict[str, tuple[str, str]]]
    sources: dict[str, str]  # checkpoint id -> the logs path
    noise: dict[str, tuple[SuiteResult, SuiteResult, str]] = field(default_factory=dict)  # base's repeats 1, 2


def _spec(spec: str, registry: object | None) -> tuple[str, str, Checkpoint | None]:
    by_id = getattr(registry, "by_id", {})
    if spec in by_id:
        entry = by_id[spec]
        if not entry.logs:
            raise LogsError(f"--from-logs {spec}: registry entry has no 'logs:' field")
        return entry.id, entry.logs, entry
    name, sep, path = spec.partition("=")
    if sep and name and re.fullmatch(r"[A-Za-z0-9._-]+", name):
        return name, path, None
    return re.sub(r"[^A-Za-z0-9._-]", "_", Path(spec.rstrip("/")).name) or "logs", spec, None


def load(
    specs: Sequence[str],
    registry: object | None = None,
    trained_on: str | None = None,
    method: str | None = None,
    suites: str | None = None,
) -> Logged:
    """Read every checkpoint's logs and check each candidate against the base, suite by suite.

    `trained_on`/`method` apply to candidates not from the registry (like compare's flags for paths);
    `trained_on` names must be suites the base's logs have. `suites` (comma-separated) keeps only those."""
    if len(specs) < 2:
        raise LogsError("--from-logs: give the base and at least one candidate, e.g. base=PATH cand=PATH")
    ckpts: list[Checkpoint] = []
    tasks: dict[str, dict[str, LogTask]] = {}
    by_id = getattr(registry, "by_id", {})
    for i, spec in enumerate(specs):
        cid, path, entry = _spec(spec, registry)
        if cid in tasks:
            cid = f"{cid}-{i}"
        tasks[cid] = read_logs(path)
        if entry is None:
            entry = Checkpoint(id=cid, path=path, format="logs", method="base" if i == 0 else "other", logs=path)
        ckpts.append(entry)
    base = ckpts[0].id
    wanted = list(tasks[base])
    if suites is not None:
        wanted = [s.strip() for s in suites.split(",") if s.strip()]
        for s in wanted:
            if s not in tasks[base]:
                raise LogsError(f"--suites: {s!r} is not in the base's logs; they have {', '.join(tasks[base])}")
    names = tuple(s.strip() for s in (trained_on or "").split(",") if s.strip())
    for s in names:
        if s not in tasks[base]:
            raise LogsError(f"--trained-on: {s!r} is not a suite of the logs; they have {', '.join(tasks[base])}")
    for k, c in enumerate(ckpts[1:], 1):
        if c.id not in by_id:  # given on the command line: the flags give its lineage
            ckpts[k] = c = replace(c, trained_on=names or c.trained_on, method=method or c.method, base=base)
        for s in c.trained_on:  # a registry entry's trained_on names log suites: a typo would move gain to drop
            if s not in tasks[base]:
                raise LogsError(
                    f"{c.id}: trained_on {s!r} is not a suite of the logs; they have {', '.join(tasks[base])}"
                )
    for c in ckpts[1:]:
        for s in wanted:
            if s not in tasks[c.id]:
                raise LogsError(f"{s}: in the base's logs ({ckpts[0].logs}) but not in {c.id}'s ({c.logs})")
            check_pair(tasks[base][s], tasks[c.id][s], base, c.id)
    results = {c.id: {s: tasks[c.id][s].result(c.id) for s in wanted} for c in ckpts}
    prompts = {
        s: dict(zip(t.item_ids, zip(t.prompts, t.references, strict=True), strict=True))
        for s in wanted
        if (t := tasks[base][s]).prompts
    }
    noise = {
        s: (t.repeat(base, 0), t.repeat(base, 1), "epoch 1 -> 2 (same model, resampled)")
        for s in wanted
        if len((t := tasks[base][s]).repeats) >= 2
    }
    return Logged(ckpts, results, prompts, {c.id: str(c.logs) for c in ckpts}, noise)
