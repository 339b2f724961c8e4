"""What a local checkpoint path holds, read from file names and a few header bytes (no torch, no model).

Every file is checked before any model is loaded, so a broken one gets a one-line error naming it:
empty or non-torch `.pt`, empty / truncated / huge-header `.safetensors`, empty or bad-magic `.gguf`, a
`.fake.json` that is not a JSON object. Directories are told apart by what trainers write into them:

    hf    config.json + weights (model.safetensors, shards + model.safetensors.index.json, pytorch_model.bin);
          TRL's checkpoint-N/ is one of these (its trainer_state.json, optimizer.pt ... are ignored)
    peft  adapter_config.json + adapter_model.safetensors (a PEFT / TRL `peft_config` adapter)
    refused, with the merge command of the tool that wrote it: verl FSDP `actor/` shards, DeepSpeed ZeRO
          (global_stepN/, zero_to_fp32.py, `latest`), torch.distributed.checkpoint (.metadata + *.distcp)

    touch /tmp/empty.pt && forgetbench compare embedded:smollm2-135m-instruct /tmp/empty.pt   # one line, exit 2
"""

from __future__ import annotations

import io
import json
import pickletools
import re
import struct
import zipfile
from pathlib import Path

from harness.types import RegistryError

MAX_SAFETENSORS_HEADER = 100_000_000  # the safetensors library's own limit
# Written next to the weights by trainers: never part of what the model computes, so never fingerprinted.
TRAINER_STATE = re.compile(
    r"^(trainer_state\.json|training_args\.bin|optimizer\.(pt|bin)|scheduler\.pt|scaler\.pt|rng_state.*\.pth)$"
)
_WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_VERL_SHARD = re.compile(r"^model_world_size_(\d+)_rank_\d+\.pt$")


class WeightsError(RegistryError):
    """A checkpoint file or directory that cannot be used as it is; one line naming it (CLI exit 2)."""


def check_file(path: Path, fmt: str) -> None:
    """Header checks for one checkpoint file of format `fmt`; raises WeightsError naming the file."""
    if not path.is_file():
        return  # missing files are reported where they are needed (fingerprint), with the entry's id
    size = path.stat().st_size
    if size == 0:
        raise WeightsError(f"{path}: empty file (0 bytes), not a {fmt} checkpoint")
    with path.open("rb") as fh:
        head = fh.read(24)
    if fmt == "pt":
        if head.startswith(b"PK\x03\x04"):
            if not zipfile.is_zipfile(path):
                raise WeightsError(f"{path}: truncated .pt file (its zip directory is missing)")
        elif not head.startswith(b"\x80"):
            raise WeightsError(f"{path}: not a torch .pt file (neither torch's zip format nor a pickle)")
    elif fmt == "safetensors":
        _check_safetensors(path, size, head)
    elif fmt == "gguf":
        if head[:4] != b"GGUF":
            raise WeightsError(f"{path}: not a GGUF file (magic {head[:4]!r}, expected b'GGUF')")
        if size < 24 or struct.unpack("<I", head[4:8])[0] not in (1, 2, 3):
            raise WeightsError(f"{path}: truncated or unsupported GGUF header")
    elif fmt == "fake":
        try:
            spec = json.loads(path.read_text())
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise WeightsError(f"{path}: not valid JSON: {e}") from None
        if not isinstance(spec, dict):
            raise WeightsError(f"{path}: a fake checkpoint must be a JSON object, got {type(spec).__name__}")


# What a weights-only torch pickle may import (torch's own rebuild functions and storages); anything else
# (os.system, builtins.eval, ...) is code a weights file must not carry. torch.load(weights_only=True) refuses
# it too; this check runs first, without torch, so the refusal is one line naming the file.
_SAFE_GLOBALS = {("collections", "OrderedDict"), ("builtins", "set"), ("builtins", "frozenset")}


def _pickle_globals(data: bytes) -> list[str]:
    """module.name of every global a pickle stream imports (STACK_GLOBAL from the strings pushed before it)."""
    found, strings, memo = [], [], {}
    for op, arg, _ in pickletools.genops(io.BytesIO(data)):
        if op.name in ("GLOBAL", "INST"):
            found.append(".".join(str(arg).split(" ", 1)))
        elif isinstance(arg, str) and ("UNICODE" in op.name or "STRING" in op.name):
            strings.append(str(arg))
        elif op.name == "MEMOIZE" and strings:
            memo[len(memo)] = strings[-1]
        elif op.name in ("BINGET", "LONG_BINGET", "GET") and arg in memo:
            strings.append(memo[arg])
        elif op.name == "STACK_GLOBAL":
            found.append(".".join(strings[-2:]) if len(strings) >= 2 else "<unknown>")
    return found


def check_pickle(path: Path) -> None:
    """A pytorch_model.bin / adapter_model.bin whose pickle imports anything but torch's tensor rebuilders is
    refused (WeightsError naming the file and the import), before any loader sees it."""
    if not path.is_file():
        return
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                streams = [zf.read(n) for n in zf.namelist() if n.endswith("data.pkl")]
        else:
            streams = [path.read_bytes()]
    except (OSError, zipfile.BadZipFile, KeyError) as e:
        raise WeightsError(f"{path}: unreadable weights file ({e})") from None
    for data in streams:
        try:
            names = _pickle_globals(data)
        except (ValueError, EOFError):
            raise WeightsError(f"{path}: not a torch weights file (its pickle does not parse)") from None
        for name in names:
            module, _, attr = name.rpartition(".")
            if not (module == "torch" or module.startswith("torch.") or (module, attr) in _SAFE_GLOBALS):
                raise WeightsError(
                    f"{path}: refused: its pickle imports {name[:80]!r}; a weights file must hold tensors only"
                )


def _check_safetensors(path: Path, size: int, head: bytes) -> None:
    if size < 8:
        raise WeightsError(f"{path}: truncated .safetensors file ({size} bytes, no header)")
    n = struct.unpack("<Q", head[:8])[0]
    if n > MAX_SAFETENSORS_HEADER:
        raise WeightsError(f"{path}: .safetensors header claims {n} bytes (limit {MAX_SAFETENSORS_HEADER}): corrupt")
    if 8 + n > size:
        raise WeightsError(f"{path}: truncated .safetensors file (header of {n} bytes, file of {size})")
    with path.open("rb") as fh:
        fh.seek(8)
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise WeightsError(f"{path}: .safetensors header is not JSON: corrupt file") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{path}: .safetensors header is not a JSON object: corrupt file")
    data = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        end = info.get("data_offsets", [0, 0])[1] if isinstance(info, dict) else None
        if not isinstance(end, int):
            raise WeightsError(f"{path}: .safetensors entry {name!r} has no data offsets: corrupt file")
        if end > data:
            raise WeightsError(f"{path}: truncated .safetensors file (tensor {name!r} ends past the end of the file)")


def detect_local(path: Path) -> str:
    """The format of an existing local directory ("hf" or "peft"), or a WeightsError saying how to convert it."""
    names = {p.name for p in path.iterdir()}
    if "adapter_config.json" in names:
        if not names & {"adapter_model.safetensors", "adapter_model.bin"}:
            raise WeightsError(f"{path}: PEFT adapter without adapter_model.safetensors")
        for st in sorted(path.glob("adapter_model.safetensors")):
            check_file(st, "safetensors")
        for pkl in sorted(path.glob("adapter_model.bin")):
            check_pickle(pkl)
        return "peft"
    if "config.json" in names and names & set(_WEIGHTS):
        for st in sorted(path.glob("*.safetensors")):
            check_file(st, "safetensors")
        for pkl in sorted(path.glob("pytorch_model*.bin")):
            check_pickle(pkl)
        return "hf"
    refusal = _refusal(path, names)
    if refusal:
        raise WeightsError(f"{path}: {refusal}")
    if "config.json" in names:
        raise WeightsError(f"{path}: HF directory without weights (no model.safetensors, shards index or .bin)")
    raise WeightsError(f"{path}: unknown checkpoint layout (expected an HF dir, a PEFT adapter, .pt, .safetensors)")


def _refusal(path: Path, names: set[str]) -> str | None:
    """Sharded training-state layouts: say which tool wrote it and the exact command that merges it."""
    if "actor" in names and (path / "actor").is_dir():  # verl's global_step_N/ holds actor/ (and critic/)
        inner = _refusal(path / "actor", {p.name for p in (path / "actor").iterdir()})
        if inner:
            return inner
    if any(_VERL_SHARD.match(n) for n in names):
        return (
            "verl FSDP actor shards, not a model; merge them first: python -m verl.model_merger merge "
            f"--backend fsdp --local_dir {path} --target_dir {path}/huggingface, then compare {path}/huggingface"
        )
    steps = sorted(n for n in names if re.match(r"^global_step\d+$", n) and (path / n).is_dir())
    if "zero_to_fp32.py" in names or "latest" in names or steps:
        return (
            "DeepSpeed ZeRO checkpoint, not a model; merge it first: "
            f"python {path}/zero_to_fp32.py {path} {path}-fp32 --safe_serialization, "
            f"then give {path}-fp32/model.safetensors a base: in the registry"
        )
    if ".metadata" in names and any(n.endswith(".distcp") for n in names):
        if path.name.startswith("pytorch_model_fsdp"):
            return (
                f"accelerate FSDP sharded state dict, not a model; merge it first: accelerate merge-weights {path} "
                f"{path}-merged, then give {path}-merged/model.safetensors a base: in the registry"
            )
        return (
            "torch.distributed.checkpoint shards, not a model; merge them first: python -m "
            f"torch.distributed.checkpoint.format_utils dcp_to_torch {path} {path}.pt, then give {path}.pt a base:"
        )
    return None
