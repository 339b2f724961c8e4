"""Benchmarks (printed, never asserted): useful tokens/s per engine on two workloads, and cached compare time.

    .venv/bin/python scripts/bench.py                  # engine table + cached compare, embedded SmolLM2-135M
    .venv/bin/python scripts/bench.py engines --quick  # a smaller smoke run of the table (minutes, not tens)
    .venv/bin/python scripts/bench.py compare          # wall time of a fully cached compare (median of 3)
    .venv/bin/python scripts/bench.py rollout          # a GRPO step's rollouts vs the engine on the same prompts
    .venv/bin/python scripts/bench.py choices          # choice ranking (log-probs) of three choice suites
    .venv/bin/python scripts/bench.py track            # track K checkpoints on one engine vs K compares
    python scripts/bench.py gpu                        # GPU box (torch + transformers only): bf16 vs bandwidth floor
    .venv/bin/python scripts/bench.py logs             # compare --from-logs of two 1,000-item lm-eval logs (< 3 s)

Workloads (greedy, the embedded model, "useful" tokens = Completion.n_tokens, nothing after a row's end):
  short: 16 prompts from each default suite (64), at most 64 new tokens, 64 rows at once;
  mixed: 16 prompts from each of the demo's nine generation suites (144), at most 256 new tokens (each
         suite's own stops), 32 rows at once.
Rows: `hf` (continuous batching, shared prompt prefixes prefilled once), `hf-noprefix` (the same without
prefix sharing), `hf-static` (model.generate on padded batches, the old path), `vllm` when .venv-vllm exists
(run in that environment), and lm-eval's hf backend when lm_eval is installed (its token count is its output
re-tokenized). One table with mixed/short and x-lm-eval ratios, the share of the compute cap on the short
workload, and whether each hf row's texts equal hf-static's (greedy outputs must not change).

Compute cap: this machine's float32 matrix-product rate, measured at the start of the run (2048^3 products),
over the model's matrix FLOPs per generated token (2 x the weights of its linear layers and lm_head).

`choices`: 32 items each of arc_challenge, winogrande and hellaswag, every option's summed log-probability
(the evaluator's choice path): rows/s of the hf engine (shared prefixes, scored positions only), of its
static path (one full forward per row) and of lm-eval's loglikelihood on the same (context, continuation)
pairs, and whether the picked options agree.

`compare`: `forgetbench compare` of 3 checkpoints x the demo's 10 suites x 16 items with every record stored.
With --registry/--runs-dir of a demo run it times those records (--cached-only); by default it makes three
fake checkpoints and a store with the fake engine first (the cached path is the same code: suite imports,
data loading, bootstrap, report writer).

`track`: K checkpoints of one run (the base's weights plus noise, saved as checkpoint-N/ HF dirs) through one
`forgetbench track` against K separate `forgetbench compare BASE CKPT` processes on the same suites (hf engine,
CPU, a fresh store per mode; compare without its noise-floor probe): wall time of each, and, in process, the
engine start once and each checkpoint's in-place switch as % of that checkpoint's evaluation. Then a fully
cached re-track of 10 checkpoints (fake checkpoints, the demo's 10 suites x 16 items; the cached path is the
same code), median of 3. `--tiny` uses the tests' tiny random model (a smoke run, not a measurement).

`gpu`: the hf engine on random SmolLM2-135M- and Llama-1B-shaped models built from a config (no hub), bf16,
tokens/s at several batch sizes against the weight-bandwidth floor: a decode step must read every weight
once, so tokens/s <= batch x measured bandwidth / weight bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: harness, tests
from bench_suites import DEMO_SUITES, MIXED_SUITES, ROOT, SHORT_SUITES  # noqa: E402 (this folder is on sys.path)

SHAPES = {  # Llama-family shapes for the GPU mode (random weights; only the arithmetic matters)
    "smollm2-135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
                         num_key_value_heads=3, vocab_size=49152, tie_word_embeddings=True),
    "llama-1b": dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16, num_attention_heads=32,
                     num_key_value_heads=8, vocab_size=128256, tie_word_embeddings=True),
    "tiny": dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                 num_key_value_heads=2, vocab_size=512, tie_word_embeddings=True),  # smoke test of this mode
}  # fmt: skip


def workload(name: str, per_suite: int) -> tuple[list[list[dict]], list, int]:
    """(messages, one Decoding per prompt, rows at once) of the short or mixed workload."""
    from dataclasses import replace

    from harness.suites import SuiteError, get_suite, load_items
    from harness.types import Decoding

    suites, max_new, rows = (SHORT_SUITES, 64, 64) if name == "short" else (MIXED_SUITES, 256, 32)
    msgs, decs = [], []
    for s in suites:
        try:  # a machine without a suite's data benches on the others
            items = load_items(get_suite(s), per_suite)
        except SuiteError as e:
            print(f"skipping {s}: {e}", file=sys.stderr)
            continue
        suite = get_suite(s)
        dec = Decoding(max_new_tokens=max_new) if name == "short" else replace(suite.decoding, max_new_tokens=max_new)
        msgs += [suite.prompt(it) for it in items]
        decs += [dec] * len(items)
    return msgs, decs, rows


def model_dir(spec: str) -> Path:
    from harness.checkpoints.registry import Registry
    from harness.checkpoints.weights import materialise

    reg = Registry.load(ROOT / "checkpoints.yaml")
    ckpt = reg.resolve(spec)
    return materialise(ckpt, reg.lineage(ckpt))


def _by_decoding(prompts: list[str], decs: list) -> dict:
    groups: dict = {}
    for p, d in zip(prompts, decs, strict=True):
        groups.setdefault(d, []).append(p)
    return groups


def engine_row(engine: str, model: str, name: str, per_suite: int) -> dict:
    """One engine on one workload: useful tokens, seconds, tokens/s (one engine call per decoding)."""
    from harness.engines import make_engine
    from harness.types import Decoding

    msgs, decs, rows = workload(name, per_suite)
    kwargs: dict = {"batch_size": rows}
    if engine == "hf-static":
        engine, kwargs["batching"] = "hf", "static"
    if engine == "hf-noprefix":
        engine, kwargs["share_prefixes"] = "hf", False
    e = make_engine(engine, **kwargs)
    t = time.perf_counter()
    e.load(src := model_dir(model))
    extra = {"start_s": round(time.perf_counter() - t, 1)}
    if engine == "vllm":  # another checkpoint of the same architecture: switched in place, not restarted
        other = Path(tempfile.mkdtemp(prefix="fb-bench-switch-")) / "copy"
        shutil.copytree(src, other)
        t = time.perf_counter()
        e.load(other)
        extra |= {"switch_s": round(time.perf_counter() - t, 1), "restarted": e.starts > 1}
    prompts = [e.render(m) for m in msgs]
    e.generate(prompts[:2], Decoding(max_new_tokens=4))  # warm-up (kernels, allocator)
    t = time.perf_counter()
    outs = [c for dec, ps in _by_decoding(prompts, decs).items() for c in e.generate(ps, dec)]
    dt = time.perf_counter() - t
    tokens = sum(c.n_tokens for c in outs)
    extra["texts"] = hashlib.sha256(json.dumps([c.text for c in outs]).encode()).hexdigest()[:12]
    if engine == "hf":
        extra["flops_per_token"] = _flops_per_token(e.model)
    e.close()
    if engine == "vllm":
        shutil.rmtree(other.parent, ignore_errors=True)
    row = {"engine": e.ident, "workload": name, "prompts": len(prompts), "tokens": tokens, "seconds": round(dt, 1)}
    return row | extra


def _flops_per_token(model) -> int:
    """Matrix FLOPs of one generated token: 2 x the weights of every linear layer and the lm_head."""
    import torch

    n = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
    return 2 * n


def matmul_gflops(n: int = 2048, reps: int = 8) -> float:
    """This machine's float32 matrix-product rate (best of `reps` n x n x n products)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best / 1e9


def lmeval_row(model: str, name: str, per_suite: int) -> dict:
    """lm-eval's HFLM.generate_until on the same rendered prompts, stops and lengths (greedy)."""
    import lm_eval
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    msgs, decs, rows = workload(name, per_suite)
    lm = HFLM(pretrained=str(model_dir(model)), batch_size=rows, dtype="float32", device="cpu")
    tok = lm.tokenizer
    prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True) for m in msgs]
    reqs = [
        Instance(
            "generate_until", {}, (p, {"until": list(d.stop), "max_gen_toks": d.max_new_tokens, "do_sample": False}), i
        )
        for i, (p, d) in enumerate(zip(prompts, decs, strict=True))
    ]
    t = time.perf_counter()
    outs = lm.generate_until(reqs, disable_tqdm=True)
    dt = time.perf_counter() - t
    tokens = sum(len(tok(o, add_special_tokens=False)["input_ids"]) for o in outs)
    return {"engine": f"lm-eval-hf@{lm_eval.__version__}", "workload": name, "prompts": len(prompts),
            "tokens": tokens, "seconds": round(dt, 1)}  # fmt: skip


def _row_subprocess(python: Path, engine: str, a: argparse.Namespace, name: str) -> dict | str:
    cmd = [str(python), __file__, "row", "--engine", engine, "--model", a.model, "--workload", name]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # that venv has its own packages
    res = subprocess.run(cmd + ["--per-suite", str(a.per_suite)], capture_output=True, text=True, cwd=ROOT, env=env)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]  # vLLM logs to stdout too
    return json.loads(lines[-1]) if res.returncode == 0 and lines else f"failed: {res.stderr.strip()[-300:]}"


def bench_engines(a: argparse.Namespace) -> None:
    engines = [e for e in ["hf", "hf-noprefix", "hf-static"] if not a.engines or e in a.engines]
    vllm_py = ROOT / ".venv-vllm" / "bin" / "python"
    if vllm_py.exists() and (not a.engines or "vllm" in a.engines):
        engines.append("vllm")
    try:
        import lm_eval  # noqa: F401

        if not a.engines or "lm-eval" in a.engines:
            engines.append("lm-eval")
    except ImportError:
        print("lm-eval: not installed (pip install -e '.[lmeval]'): no lm-eval row", file=sys.stderr)
    table: dict[str, dict[str, dict]] = {}
    gflops = matmul_gflops()
    print(json.dumps({"float32_matmul_GFLOPs": round(gflops, 1)}), flush=True)
    for engine in engines:
        for name in ("short", "mixed"):
            if engine == "vllm":
                row = _row_subprocess(vllm_py, "vllm", a, name)
            else:
                try:
                    row = (
                        lmeval_row(a.model, name, a.per_suite)
                        if engine == "lm-eval"
                        else engine_row(engine, a.model, name, a.per_suite)
                    )
                except Exception as e:  # noqa: BLE001 - one broken backend must not hide the others' rows
                    row = f"failed: {type(e).__name__}: {e}"
            if isinstance(row, str):
                print(f"{engine} {name}: {row}", file=sys.stderr)
                continue
            row["tok_s"] = round(row["tokens"] / max(row["seconds"], 1e-9), 1)
            print(json.dumps(row), flush=True)
            table.setdefault(engine, {})[name] = row
    _print_table(table, gflops)


def _print_table(table: dict[str, dict[str, dict]], gflops: float) -> None:
    ref, static = table.get("lm-eval", {}), table.get("hf-static", {})
    flops = next((r["flops_per_token"] for rows in table.values() for r in rows.values() if "flops_per_token" in r), 0)
    cap = gflops * 1e9 / flops if flops else 0.0
    if cap:
        print(f"\ncompute cap: {gflops:.0f} GFLOP/s / {flops / 1e9:.3f} GFLOP per token = {cap:.0f} tok/s")
    head = f"{'engine':<28} {'short tok/s':>11} {'mixed tok/s':>11} {'mixed/short':>11} {'x lm-eval':>14}"
    print(f"\n{head} {'% cap':>6} {'= static':>9}")
    for engine, rows in table.items():
        s, m = rows.get("short", {}).get("tok_s"), rows.get("mixed", {}).get("tok_s")
        ratio = f"{m / s:.2f}" if s and m else "-"
        vs = "/".join(
            f"{rows[w]['tok_s'] / ref[w]['tok_s']:.2f}" if w in rows and w in ref else "-" for w in ("short", "mixed")
        )
        first = next(iter(rows.values()))
        switch = f"  start {first['start_s']} s, switch {first['switch_s']} s" if "switch_s" in first else ""
        of_cap = f"{100 * s / cap:.0f}%" if s and cap else "-"
        same = "-"
        if engine.startswith("hf") and static and engine != "hf-static":
            same = "yes" if all(rows[w]["texts"] == static[w]["texts"] for w in rows if w in static) else "NO"
        name = first["engine"] + ("" if engine in ("hf", "vllm", "lm-eval") else f" ({engine[3:]})")
        print(f"{name:<28} {s or '-':>11} {m or '-':>11} {ratio:>11} {vs:>14} {of_cap:>6} {same:>9}{switch}")


def bench_compare(a: argparse.Namespace) -> dict:
    """Median wall time of 3 fully cached `forgetbench compare` runs (plus the first, filling run if fake)."""
    exe = [sys.executable, "-m", "harness.cli"]  # this tree's harness (cwd=ROOT), as the forgetbench command
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    work = Path(tempfile.mkdtemp(prefix="fb-bench-"))
    if a.registry:
        ckpts, common = a.checkpoints or ["smollm2-135m", "demo-sft", "demo-grpo"], ["--registry", a.registry]
        common += ["--runs-dir", a.runs_dir or "reports/runs", "--max-new-tokens", "256", "--cached-only"]
        first = None
    else:
        from harness.suites import get_suite
        from tests.fakes import write_fake

        # Suites without gold responses (ifeval, safety) get the fake's default answer.
        scored = [n for n in DEMO_SUITES.split(",") if get_suite(n).has_reference]
        ckpts = [
            str(write_fake(work / f"m{k}.fake.json", dict.fromkeys(scored, 0.3 * k), 16, seed=k)) for k in range(3)
        ]
        common = ["--engine", "fake", "--runs-dir", str(work / "runs")]
    common += ["--suites", DEMO_SUITES, "--limit", "16", "--out", str(work / "out")]

    def run() -> float:
        t = time.perf_counter()
        subprocess.run([*exe, "compare", *ckpts, *common], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL)
        return time.perf_counter() - t

    if not a.registry:
        first = round(run(), 2)
    times = [run() for _ in range(3)]
    shutil.rmtree(work, ignore_errors=True)
    return {"compare": f"{len(ckpts)} checkpoints x 10 suites x 16 items", "store": "given" if a.registry else "fake",
            "first_s": first, "cached_median_s": round(statistics.median(times), 2)}  # fmt: skip


def bench_logs(a: argparse.Namespace) -> dict:
    """`compare --from-logs` on two lm-eval logs of --items docs each (the real format, harness/logs/synth.py from
    the committed fixture): median wall time of 3 runs, and whether the process imported torch (it must not)."""
    import random

    from harness.logs.synth import write_lmeval

    work = Path(tempfile.mkdtemp(prefix="fb-bench-logs-"))
    rng = random.Random(0)
    base = [float(rng.random() < 0.6) for _ in range(a.items)]
    cand = [1.0 - s if rng.random() < 0.05 else s for s in base]  # 5% of items flipped
    write_lmeval(work / "base", base)
    write_lmeval(work / "cand", cand, model="cand")
    args = ["compare", "--from-logs", f"base={work / 'base'}", f"cand={work / 'cand'}", "--out", str(work / "out")]
    env = os.environ | {"PYTHONWARNINGS": "ignore"}

    def run() -> float:
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "harness.cli", *args], check=True, env=env, cwd=ROOT,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        return time.perf_counter() - t

    times = [run() for _ in range(3)]
    seen = subprocess.run([sys.executable, "-c", TORCH_PROBE, *args], env=env, cwd=ROOT, capture_output=True, text=True)
    shutil.rmtree(work, ignore_errors=True)
    return {"logs": f"compare --from-logs, 2 lm-eval logs x {a.items} items",
            "median_s": round(statistics.median(times), 2),
            "torch_imported": seen.stdout.strip().splitlines()[-1:] != ["torch not imported"]}  # fmt: skip


TORCH_PROBE = """
import sys
from harness.cli import app
try:
    app(sys.argv[1:])
except SystemExit as e:
    assert not e.code, e.code
print("torch imported" if "torch" in sys.modules else "torch not imported")
"""


def bench_gpu(a: argparse.Namespace) -> None:
    """Random-weight models on the GPU, bf16: tokens/s against batch x bandwidth / weight bytes."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from harness.engines import make_engine
    from harness.engines.hf_decode import supports
    from harness.types import Decoding
    from tests.tiny import build_tiny_model

    device = a.device or "cuda"
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    tok = AutoTokenizer.from_pretrained(build_tiny_model(Path(tempfile.mkdtemp()) / "tok"))  # template + ids < 400
    x = torch.empty(1 << (28 if cuda else 24), dtype=torch.bfloat16, device=device)  # copy bandwidth = read + write
    y = torch.empty_like(x)
    y.copy_(x)
    sync()
    t = time.perf_counter()
    for _ in range(10):
        y.copy_(x)
    sync()
    bw = 2 * x.numel() * x.element_size() * 10 / (time.perf_counter() - t)
    del x, y
    name = torch.cuda.get_device_name(device) if cuda else device
    print(json.dumps({"device": name, "copy_bandwidth_GBs": round(bw / 1e9)}), flush=True)
    words = "The capital of France is Paris. What is 17 + 25? Reason step by step.".split()
    for shape in a.shapes:
        dims = SHAPES[shape]
        cfg = LlamaConfig(**dims, max_position_embeddings=4096, bos_token_id=tok.bos_token_id,
                          eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)  # fmt: skip
        torch.manual_seed(0)
        with torch.device(device):
            model = LlamaForCausalLM(cfg).to(torch.bfloat16).eval()
        weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
        engine = make_engine("hf", device=device, dtype="bfloat16")
        engine.use_model(model, tok)
        why_not = supports(model)
        path = "continuous" if why_not is None else f"static ({why_not})"
        for batch in a.batches:
            engine.batch_size = batch
            prompts = [
                engine.render([{"role": "user", "content": " ".join(words[: 4 + i % 10])}]) for i in range(batch)
            ]
            dec = Decoding(max_new_tokens=a.max_new_tokens)  # random weights: rows rarely end early
            engine.generate(prompts[:2], Decoding(max_new_tokens=4))
            sync()
            t = time.perf_counter()
            tokens = sum(c.n_tokens for c in engine.generate(prompts, dec))
            sync()
            dt = time.perf_counter() - t
            floor = batch * bw / weight_bytes  # tokens/s if a step cost only one read of the weights
            row = {"model": shape, "path": path, "weights_GB": round(weight_bytes / 1e9, 2), "batch": batch}
            row |= {"tokens": tokens, "seconds": round(dt, 2), "tok_s": round(tokens / dt), "floor_tok_s": round(floor)}
            print(json.dumps(row | {"of_floor": round(tokens / dt / floor, 2)}), flush=True)
        del model, engine
        if cuda:
            torch.cuda.empty_cache()


CHOICE_SUITES = ("arc_challenge", "winogrande", "hellaswag")


def bench_choices(a: argparse.Namespace) -> None:
    """Choice ranking: the same (prompt, option) rows through each scorer, rows/s and agreement of the picks."""
    from harness.engines import make_engine
    from harness.suites import SuiteError, get_suite, load_items

    src = model_dir(a.model)
    engines = {b: make_engine("hf", batch_size=32, batching=b) for b in ("continuous", "static")}
    for e in engines.values():
        e.load(src)
    try:
        from lm_eval.api.instance import Instance
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=str(src), batch_size=32, dtype="float32", device="cpu")
    except ImportError:
        lm = None
        print("lm-eval: not installed: no lm-eval column", file=sys.stderr)
    for name in CHOICE_SUITES:
        suite = get_suite(name)
        try:
            items = load_items(suite, a.per_suite * 2)
        except SuiteError as e:
            print(f"skipping {name}: {e}", file=sys.stderr)
            continue
        e = engines["continuous"]
        pairs = [(e.render(suite.prompt(it)), o) for it in items for o in suite.choices(it)]
        sizes = [len(suite.choices(it)) for it in items]
        row, picks = {"suite": name, "items": len(items), "rows": len(pairs)}, {}
        scorers = {
            b: (lambda ps, eng=eng: eng.logprobs([p for p, _ in ps], [c for _, c in ps])) for b, eng in engines.items()
        }
        if lm is not None:
            scorers["lm-eval"] = lambda ps: [
                lp for lp, _ in lm.loglikelihood([Instance("loglikelihood", {}, p, i) for i, p in enumerate(ps)], True)
            ]
        for label, score in scorers.items():
            score(pairs[:2])  # warm-up
            t = time.perf_counter()
            lps = score(pairs)
            row[f"{label}_rows_s"] = round(len(pairs) / (time.perf_counter() - t), 1)
            k, picks[label] = 0, []
            for n in sizes:
                picks[label].append(max(range(n), key=lambda j, k=k: lps[k + j]))
                k += n
        row["x_static"] = round(row["continuous_rows_s"] / row["static_rows_s"], 2)
        if lm is not None:
            row["x_lm_eval"] = round(row["continuous_rows_s"] / row["lm-eval_rows_s"], 2)
        row["same_picks"] = {k: v == picks["static"] for k, v in picks.items() if k != "static"}
        print(json.dumps(row), flush=True)


def bench_rollout(a: argparse.Namespace) -> dict:
    """A GRPO step's rollouts (the demo's: 8 addsub prompts x 8 samples, temperature 0.7, 32 new tokens) through
    the trainer's Sampler on the in-memory policy, against the hf engine generating the same 64 prompts."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from harness.engines import make_engine
    from harness.suites import get_suite, load_items
    from harness.train.rollout import Sampler
    from harness.types import Decoding

    src = model_dir(a.model)
    suite, k, dec = get_suite("addsub"), 8, Decoding(max_new_tokens=32, temperature=0.7, seed=0)
    items = load_items(suite, 8, split="train")
    policy = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    sampler = Sampler("hf", policy, AutoTokenizer.from_pretrained(src), src, None, "cpu", batch_size=64)
    prompts = [sampler.render(suite.prompt(it)) for it in items]
    sampler.sample(suite, items[:1], prompts[:1], 2, Decoding(max_new_tokens=4), 0)  # warm-up
    t = time.perf_counter()
    rows = sampler.sample(suite, items, prompts, k, dec, 1)
    roll_dt, roll_tok = time.perf_counter() - t, sum(out.n_tokens for _, out, _ in rows)
    engine = make_engine("hf", batch_size=64)
    engine.load(src)
    flat = [p for p in prompts for _ in range(k)]
    t = time.perf_counter()
    eng_tok = sum(c.n_tokens for c in engine.generate(flat, dec))
    eng_dt = time.perf_counter() - t
    engine.close()
    roll, eng = roll_tok / roll_dt, eng_tok / eng_dt
    return {"rollout": f"{len(items)} prompts x {k} samples, 32 tokens, T0.7", "rollout_tok_s": round(roll, 1),
            "engine_tok_s": round(eng, 1), "rollout/engine": round(roll / eng, 2)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    modes = ["all", "engines", "choices", "compare", "rollout", "gpu", "row", "track", "logs"]
    ap.add_argument("what", nargs="?", default="all", choices=modes)
    ap.add_argument("--model", default="smollm2-135m", help="registry id or path (engines)")
    ap.add_argument("--per-suite", type=int, default=16, help="prompts per suite in each workload")
    ap.add_argument("--quick", action="store_true", help="4 prompts per suite (a smoke run of the table)")
    ap.add_argument("--engine", default="hf", help="row: the one engine to run")
    ap.add_argument("--engines", nargs="*", default=None, help="engines: only these rows (hf hf-static vllm lm-eval)")
    ap.add_argument("--workload", default="short", choices=["short", "mixed"], help="row: the workload")
    ap.add_argument("--registry", default=None, help="compare: a registry whose checkpoints' records are stored")
    ap.add_argument("--runs-dir", default=None, help="compare: the store of those records")
    ap.add_argument("--checkpoints", nargs="*", default=None, help="compare: ids (default the demo's three)")
    ap.add_argument("--items", type=int, default=1000, help="logs: items per synthetic lm-eval log")
    ap.add_argument("--device", default=None, help="gpu: torch device (default cuda)")
    ap.add_argument("--batches", type=int, nargs="*", default=[1, 32, 128], help="gpu: batch sizes")
    ap.add_argument("--shapes", nargs="*", default=["smollm2-135m", "llama-1b"], choices=sorted(SHAPES), help="gpu")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="gpu: tokens per row")
    ap.add_argument("--k", type=int, default=5, help="track: checkpoints in the run")
    ap.add_argument("--track-tokens", type=int, default=64, help="track: max new tokens per item")
    ap.add_argument("--tiny", action="store_true", help="track: the tests' tiny random model (a smoke run)")
    a = ap.parse_args()
    if a.quick:
        a.per_suite = 4
    if a.what == "row":  # one engine/workload as JSON (how the vllm row runs inside .venv-vllm)
        row = engine_row(a.engine, a.model, a.workload, a.per_suite)
        print(json.dumps(row), flush=True)
        return
    if a.what == "gpu":
        bench_gpu(a)
        return
    if a.what == "track":  # not part of "all": it writes K copies of the model
        from bench_track import bench_track  # scripts/bench_track.py (this file's own folder is on sys.path)

        for row in bench_track(a, model_dir(a.model) if not a.tiny else None):
            print(json.dumps(row), flush=True)
        return
    if a.what in ("all", "engines"):
        bench_engines(a)
    if a.what in ("all", "choices"):
        bench_choices(a)
    if a.what in ("all", "rollout"):
        print(json.dumps(bench_rollout(a)), flush=True)
    if a.what in ("all", "compare"):
        print(json.dumps(bench_compare(a)), flush=True)
    if a.what in ("all", "logs"):
        print(json.dumps(bench_logs(a)), flush=True)


if __name__ == "__main__":
    main()
