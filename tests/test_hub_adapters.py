"""Hub ids through a hand-made hub cache (offline), and PEFT adapters merged into their base.

The cache is the layout huggingface_hub itself reads: models--org--name/snapshots/<sha>/..., refs/<branch>."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("huggingface_hub")

import torch  # noqa: E402

from harness.checkpoints.layouts import WeightsError  # noqa: E402
from harness.checkpoints.registry import Registry  # noqa: E402
from harness.checkpoints.weights import fingerprint, materialise  # noqa: E402

SHA1, SHA2 = "1" * 40, "2" * 40


def _put(cache: Path, repo: str, src: Path, sha: str, ref: str = "main") -> Path:
    """Copy `src` into the cache as commit `sha` of `repo` and point refs/<ref> at it."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snap = root / "snapshots" / sha
    shutil.copytree(src, snap)
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / ref).write_text(sha)
    return snap


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_hub_id_resolves_offline_and_a_moved_ref_is_a_new_fingerprint(hub: Path, tiny_model_dir: Path) -> None:
    snap = _put(hub, "org/tiny", tiny_model_dir, SHA1)
    reg = Registry([], (), None)
    ckpt = reg.resolve("org/tiny")
    assert (ckpt.format, ckpt.id) == ("hub", "tiny")
    assert materialise(ckpt) == snap
    first = fingerprint(ckpt)
    assert fingerprint(reg.resolve(f"org/tiny@{SHA1}")) == first  # a commit pins the same files
    # The same files under another commit: main moved, so the checkpoint is a new one.
    _put(hub, "org/tiny", tiny_model_dir, SHA2)
    assert fingerprint(reg.resolve("org/tiny")) != first
    assert fingerprint(reg.resolve(f"org/tiny@{SHA1}")) == first
    assert fingerprint(reg.resolve("org/tiny@main")) == fingerprint(reg.resolve(f"org/tiny@{SHA2}"))


def test_hub_id_in_the_registry_is_fetched_only_when_named(hub: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    yaml_path = tmp_path / "checkpoints.yaml"
    yaml_path.write_text(
        "checkpoints:\n  - id: t\n    path: org/tiny@v1\n    method: base\n  - id: gone\n    path: org/gone\n"
    )
    reg = Registry.load(yaml_path)  # org/gone is not in the cache: reading the registry does not fetch it
    _put(hub, "org/tiny", tiny_model_dir, SHA1, ref="v1")
    assert reg.resolve("t").format == "hub" and reg.resolve("t").path == "org/tiny@v1"
    with pytest.raises(WeightsError) as e:
        reg.resolve("gone")
    assert "org/gone" in str(e.value) and "HF_HUB_OFFLINE" in str(e.value) and "\n" not in str(e.value)


def _adapter(base_dir: Path, out: Path, base_name: str) -> tuple[Path, torch.Tensor]:
    """A LoRA adapter on the tiny model with random B matrices (fresh LoRA is a no-op), and peft's logits."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    peft_model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj", "down_proj"]))
    with torch.no_grad():
        for name, p in peft_model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.5)
    peft_model.save_pretrained(out)
    cfg = (out / "adapter_config.json").read_text()
    (out / "adapter_config.json").write_text(cfg.replace(str(base_dir), base_name))
    peft_model.eval()
    with torch.no_grad():
        return out, peft_model(_IDS).logits


_IDS = torch.tensor([[1, 5, 9, 23, 40, 7, 2]])


def _logits(model_dir: Path) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    with torch.no_grad():
        return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()(_IDS).logits


def test_local_adapter_merges_to_peft_outputs(tiny_model_dir: Path, tmp_path: Path) -> None:
    adapter, expected = _adapter(tiny_model_dir, tmp_path / "lora", str(tiny_model_dir))
    reg = Registry([], (), None)
    ckpt = reg.resolve(str(adapter))
    assert ckpt.format == "peft" and ckpt.base == str(tiny_model_dir)  # base_model_name_or_path
    lineage = reg.lineage(ckpt)
    merged = materialise(ckpt, lineage)
    assert torch.allclose(_logits(merged), expected, atol=1e-5)
    assert not torch.allclose(_logits(tiny_model_dir), expected, atol=1e-3)  # the adapter changes outputs
    assert (merged / "tokenizer.json").exists() and merged.name == f"{fingerprint(ckpt)}-on-{fingerprint(lineage[0])}"
    assert materialise(ckpt, lineage) == merged  # cached by the pair
    with pytest.raises(WeightsError, match="needs its base"):
        materialise(ckpt)


def test_hub_adapter_on_a_hub_base_and_registry_base(hub: Path, tiny_model_dir: Path, tmp_path: Path) -> None:
    _put(hub, "org/tiny", tiny_model_dir, SHA1)
    adapter, expected = _adapter(tiny_model_dir, tmp_path / "lora", "org/tiny")
    _put(hub, "org/tiny-lora", adapter, SHA2)
    reg = Registry([], (), None)
    ckpt = reg.resolve("org/tiny-lora")
    assert (ckpt.format, ckpt.base) == ("peft", "org/tiny")
    assert torch.allclose(_logits(materialise(ckpt, reg.lineage(ckpt))), expected, atol=1e-5)
    # `base:` in the registry wins over the adapter's own base_model_name_or_path
    yaml_path = tmp_path / "checkpoints.yaml"
    yaml_path.write_text(
        f"checkpoints:\n  - id: b\n    path: {tiny_model_dir}\n  - id: a\n    path: {adapter}\n    base: b\n"
    )
    reg = Registry.load(yaml_path)
    assert [c.id for c in reg.lineage(reg.resolve("a"))] == ["b"]
