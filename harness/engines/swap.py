"""What lets an engine switch checkpoints in place: the architecture key of a config.json (equal keys = every
weight shape and name fits the resident model), a tokenizer-files hash, and reading an HF directory's weights
(safetensors shards or pytorch_model.bin, weights only) without constructing a model.

Shared by the hf engine (load_state_dict into the resident model) and the vllm engine (reload_weights).

    python -c "from harness.engines.swap import architecture; print(architecture({'hidden_size': 64}))"
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

# config.json keys that name or describe a checkpoint without changing what is built from it
NOT_ARCHITECTURE = {"_name_or_path", "transformers_version", "torch_dtype", "dtype", "use_cache", "name_or_path"}
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "vocab.json", "merges.txt",
                   "tokenizer.model", "chat_template.jinja", "added_tokens.json")  # fmt: skip


def architecture(config: dict[str, Any]) -> str:
    """config.json up to names and versions, as canonical JSON."""
    return json.dumps({k: v for k, v in config.items() if k not in NOT_ARCHITECTURE}, sort_keys=True, default=str)


def architecture_name(config: dict[str, Any]) -> str:
    """A short human name for logs: `LlamaForCausalLM (hidden 64, 2 layers)`."""
    arch = ",".join(config.get("architectures") or [config.get("model_type", "?")])
    return f"{arch} (hidden {config.get('hidden_size', '?')}, {config.get('num_hidden_layers', '?')} layers)"


def tokenizer_hash(model_dir: Path) -> str:
    h = hashlib.sha256()
    for name in TOKENIZER_FILES:
        f = model_dir / name
        h.update(name.encode() + b"\0" + (f.read_bytes() if f.is_file() else b"-") + b"\0")
    return h.hexdigest()


def read_config(model_dir: Path) -> dict[str, Any]:
    return json.loads((Path(model_dir) / "config.json").read_text())


def read_weights(model_dir: Path) -> dict[str, Any]:
    """Every tensor of an HF directory by its checkpoint name, on CPU: safetensors files (sharded or not),
    else pytorch_model*.bin loaded with weights_only=True (never runs code). Empty when there are none."""
    import torch
    from safetensors.torch import load_file

    model_dir = Path(model_dir)
    shards = sorted(model_dir.glob("model*.safetensors"))
    if shards:
        return {k: v for f in shards for k, v in load_file(f).items()}
    state: dict[str, Any] = {}
    for f in sorted(model_dir.glob("pytorch_model*.bin")):
        state |= torch.load(f, map_location="cpu", weights_only=True)
    return state
