"""The checkpoint registry: `checkpoints.yaml` (data only) plus paths given on the command line.

Schema (every field but id/path optional):

    default_suites: [countdown, arithmetic, capitals]
    checkpoints:
      - id: smollm2-135m                 # unique, [A-Za-z0-9._-]
        path: embedded:smollm2-135m-instruct   # HF dir (TRL checkpoint-N, sharded) | hub id org/name[@rev] |
                                         # PEFT adapter dir | .pt | .safetensors | .gguf | .fake.json | embedded:NAME
        method: base                     # base, sft, self-sft, iter-sft, grpo, reinforce, grpo-nokl, ...
        base: null                       # parent id (lineage); required for bare state dicts / .safetensors;
                                         # an adapter without one uses its base_model_name_or_path
        trained_on: []                   # target suites (name or name:option); every other selected suite is non-target
        logs: null                       # lm-eval/Inspect sample logs (dir or file) for `compare --from-logs`;
                                         # with logs, path may be left out and trained_on names log suites

Every entry and file is validated when the registry is read (hub ids: when named), before any model loads:
duplicate YAML keys, unknown suites in trained_on, broken checkpoint files (harness/checkpoints/layouts.py) are
one-line errors. `with_lineage` applies `compare --trained-on/--method` to candidates given as paths.
        hparams: {lr: 1.0e-4, epochs: 2, seed: 0, step: 100}
        chat_template: native            # native = the checkpoint's own template
        system_prompt: null              # null = no system turn added by us
        group: null                      # replicate group name; default: same base, method, trained_on and
                                         # hparams but seed (harness/groups.py)

    forgetbench checkpoints              # list and validate
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from harness.checkpoints.hub import is_hub_spec, local_path, snapshot
from harness.checkpoints.layouts import check_file, detect_local
from harness.checkpoints.weights import EMBEDDED, read_pt_metadata
from harness.fsio import atomic_write, did_you_mean, load_yaml
from harness.types import Checkpoint, RegistryError  # noqa: F401 (re-exported: the registry's nouns)

METHODS = ("base", "sft", "self-sft", "iter-sft", "grpo", "reinforce", "grpo-nokl", "sft-on-rl", "other")
FORMATS = ("hf", "hub", "peft", "pt", "safetensors", "gguf", "fake", "embedded")
DEFAULT_SUITES = ("countdown", "arithmetic", "capitals", "elements")
_ID = re.compile(r"^[A-Za-z0-9._-]+$")
_FIELDS = {"id", "path", "method", "base", "trained_on", "hparams", "chat_template", "system_prompt", "notes", "group"}
_FIELDS |= {"data_score"}  # how off-policy the training data was for the base (harness/datascore.py)
_FIELDS |= {"logs"}  # lm-eval / Inspect sample logs standing in for evaluation (harness/logs)


def detect_format(path: str) -> str:
    """Format from the path, its header bytes and file names (no model is loaded), or a one-line RegistryError.

    A hub id `org/name[@rev]` that is not a local path is fetched (or, offline, found in the hub cache)."""
    if path.startswith("embedded:"):
        if path.split(":", 1)[1] not in EMBEDDED:
            raise RegistryError(f"unknown embedded model {path!r}; known: {', '.join(EMBEDDED)}")
        return "embedded"
    p = Path(path)
    if path.endswith(".fake.json"):
        check_file(p, "fake")
        return "fake"
    for suffix, fmt in ((".pt", "pt"), (".safetensors", "safetensors"), (".gguf", "gguf")):
        if p.suffix == suffix:
            check_file(p, fmt)
            return fmt
    if p.is_dir():
        return detect_local(p)
    if is_hub_spec(path):
        fmt = detect_local(snapshot(path).path)
        return "hub" if fmt == "hf" else fmt
    if not p.exists():
        raise RegistryError(f"{path}: no such file or directory")
    raise RegistryError(f"{path}: unknown checkpoint format (expected an HF dir, .pt, .safetensors, .gguf)")


def known_suites() -> set[str]:
    """Suite names a `trained_on` may use (the suites/ folder); imported here only when an entry has one."""
    from harness.suites import all_suites, unavailable_suites

    return set(all_suites()) | set(unavailable_suites())


def check_trained_on(names: tuple[str, ...] | list[str], where: str, known: set[str] | None = None) -> None:
    """Every name must be a suite (an option suffix `name:opt` is allowed): a typo would turn a target
    into a non-target and silently change gain and drop. `where` names the file/entry/field or the flag."""
    known = known_suites() if known is None else known
    for name in names:
        if name.split(":", 1)[0] not in known:
            hint = did_you_mean(name.split(":", 1)[0], known)
            raise RegistryError(f"{where}: unknown suite {name!r}{hint}; known: {', '.join(sorted(known))}")


def with_lineage(
    registry: Registry,
    ckpts: list[Checkpoint],
    specs: list[str],
    trained_on: str | None,
    method: str | None,
    group: str | None = None,
) -> list[Checkpoint]:
    """`compare BASE PATH... --trained-on S[,S] --method M --group G`: lineage (and replicate group) for every
    candidate given as a path (registry entries keep their own; the base, first, is never a candidate)."""
    if group is not None and not _ID.match(group):
        raise RegistryError(f"--group: {group!r} must be letters, digits, '.', '_' or '-'")
    names = None
    if trained_on is not None:
        names = tuple(s.strip() for s in trained_on.split(",") if s.strip())
        if not names:
            raise RegistryError("--trained-on: give suite names, e.g. --trained-on countdown")
        check_trained_on(names, "--trained-on")
    if method is not None and method not in METHODS:
        raise RegistryError(f"--method: {method!r} is not one of {', '.join(METHODS)}")
    out = list(ckpts[:1])
    for ckpt, spec in zip(ckpts[1:], specs[1:], strict=True):
        if spec not in registry.by_id:
            ckpt = replace(ckpt, trained_on=ckpt.trained_on if names is None else names, method=method or ckpt.method)
            ckpt = replace(ckpt, group=group or ckpt.group)
        out.append(ckpt)
    return out


class Registry:
    """Checkpoints by id, in file order; resolves CLI arguments that are ids or paths."""

    def __init__(self, checkpoints: list[Checkpoint], default_suites: tuple[str, ...], source: Path | None):
        self.source = source
        self.default_suites = default_suites
        self.by_id = {c.id: c for c in checkpoints}

    @classmethod
    def load(cls, path: Path | str = "checkpoints.yaml") -> Registry:
        """Read and validate; a missing file is an empty registry (paths still work)."""
        path = Path(path)
        if not path.exists():
            return cls([], DEFAULT_SUITES, None)
        if path.is_dir():
            raise RegistryError(f"{path}: is a directory, not a registry file")
        doc = load_yaml(path, RegistryError)
        if doc is None:
            raise RegistryError(f"{path}: empty registry file (expected a mapping with a 'checkpoints' list)")
        if not isinstance(doc, dict):
            raise RegistryError(f"{path}: top level must be a mapping with a 'checkpoints' list")
        unknown = set(doc) - {"checkpoints", "default_suites"}
        if unknown:
            raise RegistryError(f"{path}: unknown top-level key(s): {', '.join(sorted(map(repr, unknown)))}")
        entries = doc.get("checkpoints") or []
        if not isinstance(entries, list):
            raise RegistryError(f"{path}: 'checkpoints' must be a list")
        suites = doc.get("default_suites") or list(DEFAULT_SUITES)
        if not isinstance(suites, list) or not all(isinstance(s, str) for s in suites):
            raise RegistryError(f"{path}: 'default_suites' must be a list of suite names")
        if "default_suites" in doc:
            check_trained_on(suites, f"{path}: field 'default_suites'")
        ckpts: list[Checkpoint] = []
        for i, entry in enumerate(entries):
            ckpts.append(_parse_entry(entry, i, path, root=path.parent))
        _check_lineage(ckpts, path)
        if any(c.trained_on for c in ckpts):
            known = known_suites()
            for c in ckpts:
                if c.format == "logs":  # names suites of its logs (lmeval:<task>): checked when the logs are read
                    continue
                check_trained_on(c.trained_on, f"{path}: checkpoint {c.id!r}: field 'trained_on'", known)
        return cls([_adapter_base(c) for c in ckpts], tuple(suites), path)

    def resolve(self, spec: str) -> Checkpoint:
        """A registry id, or a path; a self-describing .pt contributes its own lineage metadata."""
        if spec in self.by_id:
            ckpt = self.by_id[spec]
            if ckpt.format == "logs":  # no weights to evaluate: its numbers come from its logs
                raise RegistryError(f"checkpoint {spec!r} has only logs ({ckpt.logs}): compare it with --from-logs")
            if ckpt.format == "hub":  # full model or adapter: known once the snapshot is there
                ckpt = _adapter_base(replace(ckpt, format=detect_format(ckpt.path)))
            return ckpt
        fmt = detect_format(spec)
        ckpt = Checkpoint(
            id=_id_from_path(spec), path=spec, format=fmt, method="base" if fmt == "embedded" else "other"
        )
        ckpt = _adapter_base(ckpt)
        if fmt == "pt":
            meta = read_pt_metadata(Path(spec))
            _check_pt_metadata(meta, spec)
            ckpt = replace(
                ckpt,
                method=meta.get("method", ckpt.method),
                base=meta.get("base"),
                trained_on=tuple(meta.get("trained_on", ())),
                hparams=dict(meta.get("hparams", {})),
                data_score=meta.get("data_score") if isinstance(meta.get("data_score"), dict) else None,
            )
        return ckpt

    def parent(self, ckpt: Checkpoint) -> Checkpoint | None:
        if ckpt.base is None:
            return None
        return self.resolve(ckpt.base)

    def lineage(self, ckpt: Checkpoint) -> tuple[Checkpoint, ...]:
        """Parent, grandparent, ...: what materialising a bare state dict or an adapter needs.

        Stops at a base this registry cannot resolve (a self-describing .pt naming a base registered
        elsewhere needs none); materialise says so when the missing base was needed after all."""
        chain: list[Checkpoint] = []
        cur, seen = ckpt, {ckpt.id}
        while cur.base is not None and cur.base not in seen:
            try:
                cur = self.resolve(cur.base)
            except RegistryError:
                break
            seen.add(cur.id)
            chain.append(cur)
        return tuple(chain)


def _check_pt_metadata(meta: dict[str, Any], spec: str) -> None:
    """A .pt's metadata is data from the file: its trained_on must name suites that exist (a typo would turn
    the real target into a non-target), its method one we know, its hparams a mapping."""
    where = f"{spec}: metadata"
    trained_on = meta.get("trained_on", [])
    if not isinstance(trained_on, list | tuple) or not all(isinstance(s, str) for s in trained_on):
        raise RegistryError(f"{where}: 'trained_on' must be a list of suite names, got {trained_on!r:.80}")
    check_trained_on(list(trained_on), f"{where}: 'trained_on'")
    method = meta.get("method", "other")
    if method not in METHODS:
        raise RegistryError(f"{where}: 'method' is {method!r:.60}; expected one of {', '.join(METHODS)}")
    for key, kind in (("hparams", dict), ("base", str)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            raise RegistryError(f"{where}: {key!r} must be a {'mapping' if kind is dict else 'string'}")


def _adapter_base(ckpt: Checkpoint) -> Checkpoint:
    """A PEFT adapter without `base:` takes the base its adapter_config.json names (a hub id or a path)."""
    if ckpt.format != "peft" or ckpt.base is not None:
        return ckpt
    cfg_path = local_path(ckpt.path) / "adapter_config.json"
    try:
        base = json.loads(cfg_path.read_text()).get("base_model_name_or_path")
    except (OSError, ValueError, AttributeError):
        raise RegistryError(f"{cfg_path}: not a readable adapter config") from None
    if not isinstance(base, str) or not base:
        raise RegistryError(f"{cfg_path}: no base_model_name_or_path; give the adapter a base: in the registry")
    return replace(ckpt, base=base)


def _id_from_path(path: str) -> str:
    name = path.split(":", 1)[1] if path.startswith("embedded:") else Path(path.rstrip("/")).name
    for suffix in (".fake.json", ".pt", ".safetensors", ".gguf"):
        name = name.removesuffix(suffix)
    return re.sub(r"[^A-Za-z0-9._-]", "_", name) or "checkpoint"


def _parse_entry(entry: Any, i: int, path: Path, root: Path) -> Checkpoint:
    where = f"{path}: checkpoints[{i}]"
    if not isinstance(entry, dict):
        raise RegistryError(f"{where}: must be a mapping")
    cid = entry.get("id")
    if not isinstance(cid, str) or not _ID.match(cid) or set(cid) == {"."}:
        raise RegistryError(f"{where}: field 'id' must be a string of letters, digits, '.', '_' or '-'")
    where = f"{path}: checkpoint {cid!r}"
    unknown = set(entry) - _FIELDS
    if unknown:
        raise RegistryError(f"{where}: unknown field(s) {', '.join(sorted(map(str, unknown)))}")
    logs = entry.get("logs")
    if logs is not None and (not isinstance(logs, str) or not logs):
        raise RegistryError(f"{where}: field 'logs' must be a path to lm-eval or Inspect logs")
    if logs is not None and not Path(logs).is_absolute():
        logs = str(root / logs)
    raw = entry.get("path")
    if logs is not None and raw is None:  # a checkpoint known only by its logs (harness/logs): nothing to load
        return _logs_entry(entry, cid, logs, where)
    if not isinstance(raw, str) or not raw:
        raise RegistryError(f"{where}: field 'path' is required")
    hub_id = not raw.startswith("embedded:") and not (root / raw).exists() and is_hub_spec(raw)
    if not raw.startswith("embedded:") and not Path(raw).is_absolute() and root != Path(".") and not hub_id:
        raw = str(root / raw)
    try:
        fmt = "hub" if hub_id else detect_format(raw)  # a hub id is fetched when named, not when the file is read
    except RegistryError as e:
        raise RegistryError(f"{where}: field 'path': {e}") from None
    method = entry.get("method", "other")
    if method not in METHODS:
        raise RegistryError(f"{where}: field 'method' is {method!r}; expected one of {', '.join(METHODS)}")
    trained_on = entry.get("trained_on") or []
    if isinstance(trained_on, str):
        trained_on = [trained_on]
    if not isinstance(trained_on, list) or not all(isinstance(s, str) for s in trained_on):
        raise RegistryError(f"{where}: field 'trained_on' must be a list of suite names")
    hparams = entry.get("hparams") or {}
    if not isinstance(hparams, dict):
        raise RegistryError(f"{where}: field 'hparams' must be a mapping")
    for key in ("lr",):
        if key in hparams and not isinstance(hparams[key], int | float):
            raise RegistryError(f"{where}: field 'hparams.{key}' must be a number, got {hparams[key]!r}")
    for key in ("epochs", "seed", "step"):
        if key in hparams and not isinstance(hparams[key], int):
            raise RegistryError(f"{where}: field 'hparams.{key}' must be an integer, got {hparams[key]!r}")
    template = entry.get("chat_template", "native")
    if template != "native":
        raise RegistryError(f"{where}: field 'chat_template' must be 'native' (the checkpoint's own template)")
    system_prompt = entry.get("system_prompt")
    if system_prompt is not None and not isinstance(system_prompt, str):
        raise RegistryError(f"{where}: field 'system_prompt' must be a string or null")
    data_score = entry.get("data_score")
    if data_score is not None and (
        not isinstance(data_score, dict)
        or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in data_score.values())
    ):
        raise RegistryError(f"{where}: field 'data_score' must be a mapping of numbers (mean_nll, frac_above, ...)")
    base = entry.get("base")
    if base is not None and not isinstance(base, str):
        raise RegistryError(f"{where}: field 'base' must be a checkpoint id")
    group = entry.get("group") or ""
    if not isinstance(group, str) or (group and not _ID.match(group)):
        raise RegistryError(f"{where}: field 'group' must be a name of letters, digits, '.', '_' or '-'")
    if fmt in ("safetensors",) and base is None:
        raise RegistryError(f"{where}: field 'base' is required for a bare .safetensors state dict")
    return Checkpoint(
        id=cid,
        path=raw,
        format=fmt,
        method=method,
        base=base,
        trained_on=tuple(trained_on),
        hparams=hparams,
        chat_template=template,
        system_prompt=system_prompt,
        notes=str(entry.get("notes", "")),
        group=group,
        data_score=dict(data_score) if data_score else None,
        logs=logs,
    )


def _logs_entry(entry: dict[str, Any], cid: str, logs: str, where: str) -> Checkpoint:
    """An entry with `logs:` and no `path:`; its trained_on names suites of the logs, checked when read."""
    method = entry.get("method", "other")
    if method not in METHODS:
        raise RegistryError(f"{where}: field 'method' is {method!r}; expected one of {', '.join(METHODS)}")
    trained_on = entry.get("trained_on") or []
    trained_on = [trained_on] if isinstance(trained_on, str) else trained_on
    if not isinstance(trained_on, list) or not all(isinstance(s, str) for s in trained_on):
        raise RegistryError(f"{where}: field 'trained_on' must be a list of suite names")
    base = entry.get("base")
    if base is not None and not isinstance(base, str):
        raise RegistryError(f"{where}: field 'base' must be a checkpoint id")
    return Checkpoint(id=cid, path=logs, format="logs", method=method, base=base, trained_on=tuple(trained_on),
                      notes=str(entry.get("notes", "")), logs=logs)  # fmt: skip


def _check_lineage(ckpts: list[Checkpoint], path: Path) -> None:
    ids = [c.id for c in ckpts]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise RegistryError(f"{path}: duplicate checkpoint id(s): {', '.join(dupes)}")
    known = set(ids)
    for c in ckpts:
        if c.base is not None and c.base not in known:
            raise RegistryError(f"{path}: checkpoint {c.id!r}: field 'base': unknown checkpoint {c.base!r}")
    by_id = {c.id: c for c in ckpts}
    for c in ckpts:  # lineage must be a forest: walking up from any entry ends
        seen, cur = set(), c
        while cur.base is not None:
            if cur.id in seen:
                raise RegistryError(f"{path}: checkpoint {c.id!r}: field 'base': lineage has a cycle")
            seen.add(cur.id)
            cur = by_id[cur.base]


def append_entry(path: Path, ckpt: Checkpoint) -> None:
    """Append a validated entry to checkpoints.yaml (the trainer's hand-off), keeping the rest intact."""
    reg = Registry.load(path)
    if ckpt.id in reg.by_id:
        raise RegistryError(f"{path}: checkpoint id {ckpt.id!r} already exists")
    doc = load_yaml(path, RegistryError) if path.exists() else None
    doc = doc or {"checkpoints": []}
    doc.setdefault("checkpoints", []).append(ckpt.to_dict())
    text = yaml.safe_dump(doc, sort_keys=False)
    check = atomic_write(path.with_name(f".{path.name}.{os.getpid()}.check"), text)  # same dir: same relative paths
    try:
        Registry.load(check)  # never write a registry that does not validate
    finally:
        check.unlink(missing_ok=True)
    atomic_write(path, text)
