"""The hf engine switches checkpoints in place: a checkpoint of the resident architecture is copied into the
resident model (no model constructed), gives the same completions as a fresh load, and another architecture
reloads with the reason recorded; a PEFT adapter is merged into the resident base."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.types import Checkpoint, Decoding

pytest.importorskip("torch")

DEC = Decoding(max_new_tokens=8)
MSGS = [[{"role": "user", "content": "What is 17 + 25?"}], [{"role": "user", "content": "The capital of France"}]]


def _run(engine) -> list[str]:
    return [c.text for c in engine.generate([engine.render(m) for m in MSGS], DEC)]


def _reweight(src: Path, out: Path, seed: int) -> Path:
    """Same architecture and tokenizer as `src`, other random weights (a later step of a run)."""
    import torch
    from transformers import AutoModelForCausalLM

    shutil.copytree(src, out)
    model = AutoModelForCausalLM.from_pretrained(src)
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    model.save_pretrained(out)
    return out


@pytest.fixture
def constructions(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Every model the hf engine constructs (from_pretrained), counted from outside the engine."""
    import harness.engines.hf as hf

    calls: list[Path] = []
    real = hf.AutoModelForCausalLM.from_pretrained

    def counted(path, *a, **k):
        calls.append(Path(path))
        return real(path, *a, **k)

    monkeypatch.setattr(hf.AutoModelForCausalLM, "from_pretrained", counted)
    return calls


def test_swap_equals_a_fresh_load_and_constructs_once(
    tiny_model_dir: Path, tmp_path: Path, constructions: list[Path]
) -> None:
    from harness.engines.hf import HFEngine

    steps = [_reweight(tiny_model_dir, tmp_path / f"checkpoint-{k}", seed=k) for k in (1, 2)]
    constructions.clear()  # count the engine's only
    engine = HFEngine(batch_size=4)
    engine.load(tiny_model_dir)
    base_out = _run(engine)
    swapped = []
    for d in steps:
        engine.load(d)
        assert "swapped" in engine.last_load
        swapped.append(_run(engine))
    engine.load(tiny_model_dir)  # back to the base: the base's own completions again
    assert _run(engine) == base_out
    assert (engine.starts, engine.switches) == (1, 3)
    assert len(constructions) == 1
    for d, got in zip(steps, swapped, strict=True):
        fresh = HFEngine(batch_size=4)
        fresh.load(d)
        assert _run(fresh) == got
    assert swapped[0] != base_out or swapped[1] != base_out  # the weights really changed what is generated


def test_another_architecture_reloads_and_says_why(
    tiny_model_dir: Path, tmp_path: Path, constructions: list[Path]
) -> None:
    from harness.engines.hf import HFEngine
    from tests.tiny import build_tiny_model

    wide = build_tiny_model(tmp_path / "wide", hidden=32)
    engine = HFEngine(batch_size=4)
    engine.load(tiny_model_dir)
    engine.load(wide)
    assert engine.starts == 2 and engine.switches == 0
    assert "architecture differs" in engine.last_load and "hidden 32" in engine.last_load
    fresh = HFEngine(batch_size=4)
    fresh.load(wide)
    assert _run(engine) == _run(fresh)


def _adapter(base: Path, out: Path, seed: int) -> Path:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(base),
        LoraConfig(r=4, target_modules=["q_proj", "v_proj", "up_proj"], init_lora_weights=False),
    )
    model.save_pretrained(out)
    return out


def test_peft_adapters_merge_into_the_resident_base(
    tiny_model_dir: Path, tmp_path: Path, constructions: list[Path]
) -> None:
    pytest.importorskip("peft")
    from harness.checkpoints.registry import Registry
    from harness.checkpoints.weights import materialise
    from harness.engines.hf import HFEngine

    reg = Registry([Checkpoint(id="base", path=str(tiny_model_dir), format="hf", method="base")], (), None)
    base = reg.by_id["base"]
    engine = HFEngine(batch_size=4)
    engine.load_checkpoint(base)
    base_out = _run(engine)
    for k in (1, 2):
        spec = str(_adapter(tiny_model_dir, tmp_path / f"checkpoint-{k}", seed=k))
        ckpt = reg.resolve(spec)
        assert ckpt.format == "peft"
        engine.load_checkpoint(ckpt, (base,))
        assert "merged the adapter" in engine.last_load
        got = _run(engine)
        reference = HFEngine(batch_size=4)  # what compare served before: base + adapter merged on disk
        reference.load(materialise(ckpt, (base,)))
        assert _run(reference) == got, f"adapter {k}"
        assert got != base_out
    engine.load_checkpoint(base)
    assert _run(engine) == base_out  # the base's weights were restored, not left merged
    assert engine.starts == 1


def test_track_swaps_within_a_run_and_logs_a_reload(tiny_model_dir: Path, tmp_path: Path) -> None:
    """`forgetbench track` on the hf engine: one model constructed for the base and run A (swapped in), a run of
    another architecture reloads and the log says so."""
    from typer.testing import CliRunner

    from harness.cli import app
    from tests.tiny import build_tiny_model

    _reweight(tiny_model_dir, tmp_path / "a" / "checkpoint-1", seed=1)
    _reweight(tiny_model_dir, tmp_path / "a" / "checkpoint-2", seed=2)
    build_tiny_model(tmp_path / "b" / "checkpoint-1", hidden=32)
    res = CliRunner().invoke(
        app,
        ["track", str(tmp_path / "a"), str(tmp_path / "b"), "--base", str(tiny_model_dir), "--suites", "capitals"]
        + ["--limit", "2", "--max-new-tokens", "4", "--engine", "hf", "--runs-dir", str(tmp_path / "store")]
        + ["--registry", str(tmp_path / "none.yaml"), "--out", str(tmp_path / "o"), "--n-boot", "100"],
    )
    assert res.exit_code == 0, res.output
    log = " ".join(res.output.split())
    assert log.count("swapped weights in place") == 2
    assert "b/checkpoint-1 step 1: RELOADED the engine" in log and "architecture differs" in log
