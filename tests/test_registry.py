"""Registry validation, format detection, the .pt format, and refusal of pickles that would run code."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from harness.checkpoints.registry import Checkpoint, Registry, RegistryError, append_entry, detect_format


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "checkpoints.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("checkpoints:\n  - path: x.fake.json\n", "field 'id'"),
        ("checkpoints:\n  - id: a\n", "checkpoint 'a': field 'path' is required"),
        ("checkpoints:\n  - id: a\n    path: nope.gguf\n    method: magic\n", "field 'method'"),
        (
            "checkpoints:\n  - id: a\n    path: a.fake.json\n    base: ghost\n",
            "field 'base': unknown checkpoint 'ghost'",
        ),
        (
            "checkpoints:\n  - id: a\n    path: a.fake.json\n  - id: a\n    path: a.fake.json\n",
            "duplicate checkpoint id",
        ),
        ("checkpoints:\n  - id: a\n    path: a.fake.json\n    hparams: {lr: fast}\n", "field 'hparams.lr'"),
        ("checkpoints:\n  - id: a\n    path: a.fake.json\n    colour: red\n", "unknown field(s) colour"),
        ("checkpoints:\n  - id: a\n    path: w.safetensors\n", "field 'base' is required"),
        (
            "checkpoints:\n  - id: a\n    path: a.fake.json\n    base: b\n"
            "  - id: b\n    path: a.fake.json\n    base: a\n",
            "cycle",
        ),
        ("checkpoints: [\n", "not valid YAML"),
        ("checkpoints:\n  - id: a\n    path: /no/such/dir\n", "field 'path'"),
        ("checkpoints:\n  - id: a\n    path: a.fake.json\n    path: b.fake.json\n", "key 'path' given twice (line 4)"),
        ("checkpoints:\n  - id: a\n    path: a.fake.json\n    method: sft\n    method: grpo\n", "'method' given twice"),
        ("checkpoints:\n  - id: ..\n    path: a.fake.json\n", "field 'id'"),
        ("checkpoints:\n  - id: .\n    path: a.fake.json\n", "field 'id'"),
        ("", "empty registry file"),
        ("# only a comment\n", "empty registry file"),
        (
            "checkpoints:\n  - id: a\n    path: a.fake.json\n    trained_on: [countdwon]\n",
            "checkpoint 'a': field 'trained_on': unknown suite 'countdwon'",
        ),
        (
            "checkpoints:\n  - id: a\n    path: a.fake.json\n    trained_on: nope:lenient\n",
            "unknown suite 'nope:lenient'",
        ),
    ],
)
def test_registry_errors_name_entry_and_field(tmp_path: Path, body: str, needle: str) -> None:
    with pytest.raises(RegistryError) as e:
        Registry.load(_write(tmp_path, body))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_valid_registry_and_lineage(tmp_path: Path) -> None:
    reg = Registry.load(
        _write(
            tmp_path,
            (
                "default_suites: [arithmetic]\ncheckpoints:\n"
                "  - id: base\n    path: embedded:smollm2-135m-instruct\n    method: base\n"
                "  - id: sft\n    path: sft.fake.json\n    base: base\n    method: sft\n    trained_on: countdown\n"
                "    hparams: {lr: 1.0e-4, epochs: 2, seed: 0}\n"
            ),
        )
    )
    sft = reg.resolve("sft")
    assert sft.trained_on == ("countdown",) and sft.hparams["lr"] == 1e-4 and sft.format == "fake"
    assert reg.parent(sft).id == "base" and reg.default_suites == ("arithmetic",)
    assert sft.path == str(tmp_path / "sft.fake.json")  # relative to the registry file


def test_trained_on_may_carry_a_suite_option(tmp_path: Path) -> None:
    body = "checkpoints:\n  - id: a\n    path: a.fake.json\n    trained_on: [countdown:paper, mmlu]\n"
    assert Registry.load(_write(tmp_path, body)).resolve("a").trained_on == ("countdown:paper", "mmlu")


def test_detect_format(tmp_path: Path) -> None:
    (tmp_path / "hf").mkdir()
    (tmp_path / "hf" / "config.json").write_text("{}")
    (tmp_path / "hf" / "model.safetensors").write_bytes(b"\x02" + b"\0" * 7 + b"{}")
    assert detect_format(str(tmp_path / "hf")) == "hf"
    assert detect_format("a.pt") == "pt" and detect_format("a.gguf") == "gguf"
    assert detect_format("a.fake.json") == "fake" and detect_format("embedded:smollm2-135m-instruct") == "embedded"
    with pytest.raises(RegistryError, match="unknown embedded"):
        detect_format("embedded:gpt-9")
    (tmp_path / "x.txt").write_text("x")
    with pytest.raises(RegistryError, match="unknown checkpoint format"):
        detect_format(str(tmp_path / "x.txt"))


def test_append_entry_validates(tmp_path: Path) -> None:
    path = _write(tmp_path, "checkpoints:\n  - id: base\n    path: embedded:smollm2-135m-instruct\n")
    append_entry(
        path,
        Checkpoint(
            id="sft",
            path="embedded:smollm2-135m-instruct",
            format="embedded",
            method="sft",
            base="base",
            trained_on=("countdown",),
            hparams={"lr": 1e-5, "step": 10},
        ),
    )
    assert Registry.load(path).resolve("sft").hparams["step"] == 10
    with pytest.raises(RegistryError, match="already exists"):
        append_entry(path, Checkpoint(id="sft", path="x.fake.json", format="fake"))
    before = path.read_text()
    with pytest.raises(RegistryError):
        append_entry(path, Checkpoint(id="bad", path="x.fake.json", format="fake", base="ghost"))
    assert path.read_text() == before  # nothing half-written


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # runs os.system at unpickling time, if anything ever unpickles it
        import os

        return (os.system, (f"touch {self.marker}",))


def test_pt_with_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}, "x": _Payload(str(marker))}, evil)
    reg = Registry([], ("arithmetic",), None)
    with pytest.raises(RegistryError, match="refused"):
        reg.resolve(str(evil))
    from harness.checkpoints.weights import materialise

    with pytest.raises(RegistryError, match="refused"):
        materialise(Checkpoint(id="evil", path=str(evil), format="pt", base="x"))
    assert not marker.exists()
    # plain pickle (not torch's zip format) is refused too
    raw = tmp_path / "raw.pt"
    raw.write_bytes(pickle.dumps(_Payload(str(marker))))
    with pytest.raises(RegistryError):
        reg.resolve(str(raw))
    assert not marker.exists()


def test_self_describing_pt_round_trip(tiny_model_dir: Path, tmp_path: Path) -> None:
    """A .pt written by save_pt needs nothing else: it materialises into an HF dir with the same weights."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.checkpoints.weights import fingerprint, materialise, save_pt

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    pt = save_pt(
        tmp_path / "m.pt",
        model,
        tok,
        {"method": "sft", "base": "tiny", "trained_on": ["countdown"], "hparams": {"lr": 1e-4}},
    )
    reg = Registry([], ("arithmetic",), None)
    ckpt = reg.resolve(str(pt))
    assert (ckpt.method, ckpt.base, ckpt.trained_on, ckpt.hparams["lr"]) == (
        "sft",
        "tiny",
        ("countdown",),
        1e-4,
    )
    out = materialise(ckpt, reg.lineage(ckpt))
    again = AutoModelForCausalLM.from_pretrained(out)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k
    assert AutoTokenizer.from_pretrained(out).chat_template == tok.chat_template
    assert fingerprint(ckpt) == fingerprint(ckpt)  # memoised path gives the same answer
    assert materialise(ckpt, reg.lineage(ckpt)) == out  # cached


def test_bare_state_dict_needs_base(tiny_model_dir: Path, tmp_path: Path) -> None:
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM

    from harness.checkpoints.weights import materialise

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    state = {k: v.clone() for k, v in model.state_dict().items() if k != "lm_head.weight"}
    save_file(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "bare.pt")
    yaml_path = _write(
        tmp_path,
        (
            f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n"
            f"  - id: st\n    path: {tmp_path / 'w.safetensors'}\n    base: tiny\n"
            f"  - id: bare\n    path: {tmp_path / 'bare.pt'}\n    base: tiny\n"
        ),
    )
    reg = Registry.load(yaml_path)
    for cid in ("st", "bare"):
        out = materialise(reg.resolve(cid), reg.lineage(reg.resolve(cid)))
        assert (out / "config.json").exists() and (out / "tokenizer.json").exists()
    with pytest.raises(RegistryError, match="needs 'base'"):
        materialise(Registry([], (), None).resolve(str(tmp_path / "bare.pt")))
