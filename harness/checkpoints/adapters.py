"""PEFT adapters (LoRA and the other PEFT tuners): merged into their base for engines that load full weights.

An adapter dir holds adapter_config.json + adapter_model.safetensors (what PEFT's save_pretrained and TRL
with `peft_config` write). Its base is the registry's `base:` or the config's base_model_name_or_path; the
merged model is cached by (adapter, base) fingerprints in harness.checkpoints.weights.materialise.

    python -c "from harness.checkpoints.adapters import merge_adapter; help(merge_adapter)"
"""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.checkpoints.layouts import WeightsError

# An adapter trained with added tokens carries its own tokenizer; otherwise the base's is the model's.
_TOKENIZER = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja")


def merge_adapter(adapter_dir: Path, base_dir: Path, out: Path) -> Path:
    """Write base + adapter, merged (W + BA scaled), as a plain HF dir into `out` (float32)."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    try:
        from peft import PeftModel
    except ImportError:
        raise WeightsError(f"{adapter_dir}: PEFT adapters need peft (pip install 'forgetbench[train]')") from None
    transformers.utils.logging.disable_progress_bar()
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    try:
        model = PeftModel.from_pretrained(base, adapter_dir)
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise WeightsError(f"{adapter_dir}: adapter does not fit its base {base_dir}: {first}") from None
    merged = model.merge_and_unload()
    merged.save_pretrained(out)
    tok_dir = adapter_dir if any((adapter_dir / n).exists() for n in _TOKENIZER[:2]) else base_dir
    for name in _TOKENIZER + ("vocab.json", "merges.txt"):
        if (tok_dir / name).exists():
            shutil.copyfile(tok_dir / name, out / name)
    return out
