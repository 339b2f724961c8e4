"""Broken checkpoint files and trainer output dirs: one-line errors before any model is loaded (no torch
needed for any of these), and trainer layouts that do load, load as HF dirs."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from harness.checkpoints.layouts import WeightsError, detect_local
from harness.checkpoints.registry import Registry, RegistryError


def _st(header: dict, data: bytes = b"") -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + data


_TENSOR = {"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}
BAD_FILES = [
    ("empty.pt", b"", "empty file"),
    ("garbage.pt", b"hello world, not torch", "not a torch .pt file"),
    ("cut.pt", b"PK\x03\x04" + b"\0" * 40, "truncated .pt"),
    ("empty.safetensors", b"", "empty file"),
    ("short.safetensors", b"\x05\0\0", "no header"),
    ("huge.safetensors", struct.pack("<Q", 2**40) + b"{}", "header claims 1099511627776 bytes"),
    ("cuthead.safetensors", struct.pack("<Q", 500) + b'{"w": ', "truncated .safetensors"),
    ("notjson.safetensors", struct.pack("<Q", 4) + b"\xff\xfe{{", "header is not JSON"),
    ("cutdata.safetensors", _st(_TENSOR, b"\0" * 4), "tensor 'w' ends past the end"),
    ("empty.gguf", b"", "empty file"),
    ("garbage.gguf", b"this is not a gguf file at all", "not a GGUF file"),
    ("badmagic.gguf", b"GGML" + b"\0" * 40, "magic b'GGML'"),
    ("cut.gguf", b"GGUF\x03\0\0\0", "truncated or unsupported GGUF"),
    ("list.fake.json", b"[1, 2]", "must be a JSON object, got list"),
    ("bad.fake.json", b"{nope", "not valid JSON"),
]


@pytest.mark.parametrize(("name", "content", "needle"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_checkpoint_file_is_one_line(tmp_path: Path, name: str, content: bytes, needle: str) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(RegistryError) as e:  # as a path on the command line
        Registry([], (), None).resolve(str(path))
    assert needle in str(e.value) and name in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "checkpoints.yaml").write_text(f"checkpoints:\n  - id: c\n    path: {name}\n    base: c0\n")
    with pytest.raises(RegistryError) as e:  # as a registry entry: names the entry and the field
        Registry.load(tmp_path / "checkpoints.yaml")
    assert "checkpoint 'c': field 'path'" in str(e.value) and needle in str(e.value)


def test_good_files_pass_the_header_checks(tmp_path: Path) -> None:
    (tmp_path / "ok.safetensors").write_bytes(_st(_TENSOR, b"\0" * 8))
    (tmp_path / "ok.fake.json").write_text('{"default": "x"}')
    (tmp_path / "ok.gguf").write_bytes(b"GGUF" + struct.pack("<I", 3) + b"\0" * 16)
    reg = Registry([], (), None)
    assert [reg.resolve(str(tmp_path / n)).format for n in ("ok.safetensors", "ok.fake.json", "ok.gguf")] == [
        "safetensors",
        "fake",
        "gguf",
    ]


def test_cli_exits_2_on_a_broken_file_before_any_evaluation(tmp_path: Path) -> None:
    (tmp_path / "base.fake.json").write_text("{}")
    (tmp_path / "zero.pt").write_bytes(b"")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "harness.cli", "compare", str(tmp_path / "base.fake.json"), str(tmp_path / "zero.pt")]
    cmd += ["--engine", "fake", "--suites", "arithmetic", "--limit", "2", "--out", str(out)]
    cmd += ["--runs-dir", str(tmp_path / "runs"), "--registry", str(tmp_path / "none.yaml")]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(__file__).parents[1])
    assert proc.returncode == 2, proc.stderr
    assert "zero.pt: empty file" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not (tmp_path / "runs").exists()


# -- trainer output dirs ------------------------------------------------------------------------------

_MERGE = {
    "verl": "python -m verl.model_merger merge --backend fsdp --local_dir {d}/actor --target_dir {d}/actor/huggingface",
    "verl-actor": "python -m verl.model_merger merge --backend fsdp --local_dir {d} --target_dir {d}/huggingface",
    "deepspeed": "python {d}/zero_to_fp32.py {d} {d}-fp32 --safe_serialization",
    "dcp": "python -m torch.distributed.checkpoint.format_utils dcp_to_torch {d} {d}.pt",
    "accelerate-fsdp": "accelerate merge-weights {d} {d}-merged",
}
LAYOUTS = {
    "verl": [
        "actor/model_world_size_2_rank_0.pt",
        "actor/model_world_size_2_rank_1.pt",
        "actor/huggingface/config.json",
    ],
    "verl-actor": ["model_world_size_1_rank_0.pt", "optim_world_size_1_rank_0.pt", "fsdp_config.json"],
    "deepspeed": ["latest", "zero_to_fp32.py", "global_step20/mp_rank_00_model_states.pt", "config.json"],
    "dcp": [".metadata", "__0_0.distcp", "__1_0.distcp"],
    "accelerate-fsdp": [".metadata", "__0_0.distcp"],
}


@pytest.mark.parametrize("kind", sorted(LAYOUTS))
def test_sharded_training_dirs_are_refused_with_the_merge_command(tmp_path: Path, kind: str) -> None:
    d = tmp_path / ("pytorch_model_fsdp_0" if kind == "accelerate-fsdp" else kind)
    for rel in LAYOUTS[kind]:
        (d / rel).parent.mkdir(parents=True, exist_ok=True)
        (d / rel).write_bytes(b"x")
    with pytest.raises(WeightsError) as e:
        Registry([], (), None).resolve(str(d))
    msg = str(e.value)
    assert _MERGE[kind].format(d=d) in msg and "\n" not in msg


def _hf_dir(d: Path, weights: dict[str, bytes]) -> Path:
    d.mkdir(parents=True)
    (d / "config.json").write_text('{"model_type": "llama"}')
    for name, blob in weights.items():
        (d / name).write_bytes(blob)
    return d


def test_trl_checkpoint_and_sharded_dirs_load_as_hf(tmp_path: Path) -> None:
    from harness.checkpoints.weights import fingerprint

    w = _st(_TENSOR, b"\0" * 8)
    trl = _hf_dir(tmp_path / "run" / "checkpoint-500", {"model.safetensors": w})
    (trl / "trainer_state.json").write_text('{"global_step": 500}')
    (trl / "optimizer.pt").write_bytes(b"adam moments")
    (trl / "rng_state.pth").write_bytes(b"rng")
    (trl / "training_args.bin").write_bytes(b"args")
    index = json.dumps({"weight_map": {"w": "model-00001-of-00002.safetensors"}})
    sharded = _hf_dir(
        tmp_path / "sharded",
        {"model-00001-of-00002.safetensors": w, "model-00002-of-00002.safetensors": w},
    )
    (sharded / "model.safetensors.index.json").write_text(index)
    reg = Registry([], (), None)
    assert reg.resolve(str(trl)).format == "hf" and reg.resolve(str(sharded)).format == "hf"
    # The fingerprint covers weights, not optimizer state: a resumed run's new optimizer.pt is the same model.
    before = fingerprint(reg.resolve(str(trl)))
    (trl / "optimizer.pt").write_bytes(b"other moments")
    (trl / "trainer_state.json").write_text('{"global_step": 501}')
    assert fingerprint(reg.resolve(str(trl))) == before
    (trl / "model.safetensors").write_bytes(_st(_TENSOR, b"\1" * 8))
    assert fingerprint(reg.resolve(str(trl))) != before


@pytest.mark.parametrize(
    ("files", "needle"),
    [
        ({"config.json": b"{}"}, "HF directory without weights"),
        ({"config.json": b"{}", "model.safetensors": b""}, "empty file"),
        ({"adapter_config.json": b"{}"}, "PEFT adapter without adapter_model.safetensors"),
        ({"notes.txt": b"hi"}, "unknown checkpoint layout"),
    ],
)
def test_incomplete_dirs_are_refused(tmp_path: Path, files: dict[str, bytes], needle: str) -> None:
    d = tmp_path / "m"
    d.mkdir()
    for name, blob in files.items():
        (d / name).write_bytes(blob)
    with pytest.raises(WeightsError, match=needle):
        detect_local(d)


@pytest.mark.parametrize(
    ("spec", "hub"),
    [
        ("HuggingFaceTB/SmolLM2-135M-Instruct", True),
        ("org/name@v1.0", True),
        (f"org/name@{'a' * 40}", True),
        ("org/name.pt", False),
        ("./org/name", False),
        ("/abs/name", False),
        ("a/b/c", False),
        ("justaname", False),
        ("existing/typo", False),  # under an existing local folder: a typo, never a network wait
    ],
)
def test_hub_ids_are_told_from_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, spec: str, hub: bool) -> None:
    from harness.checkpoints.hub import is_hub_spec

    monkeypatch.chdir(tmp_path)
    (tmp_path / "existing").mkdir()
    assert is_hub_spec(spec) is hub
