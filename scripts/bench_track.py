"""`scripts/bench.py track` (see bench.py's docstring): K checkpoints of one run through one `forgetbench track`
against K `forgetbench compare` processes, the engine start and each in-place switch as % of that checkpoint's
evaluation, and a fully cached re-track of 10 checkpoints. Printed, never asserted.

    python scripts/bench.py track --tiny --k 2 --per-suite 2 --track-tokens 6    # a smoke run
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_suites import DEMO_SUITES, ROOT, SHORT_SUITES  # bench.py puts the repository root on sys.path


def _noisy_run(src: Path, run: Path, k: int) -> list[Path]:
    """K checkpoints of one run: the base's weights plus small noise, as TRL writes them (checkpoint-N/)."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(src, dtype=torch.float32)
    out = []
    for i in range(1, k + 1):
        d = run / f"checkpoint-{100 * i}"
        shutil.copytree(src, d, ignore=shutil.ignore_patterns("*.safetensors", "*.bin"))
        torch.manual_seed(i)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 1e-3)
        model.save_pretrained(d)
        out.append(d)
    return out


def bench_track(a: argparse.Namespace, src: Path | None = None) -> list[dict]:
    """track of K checkpoints on one engine vs K compare processes; engine start and switch share; cached re-track."""
    from harness.checkpoints.registry import Registry
    from harness.evaluate import EvalConfig
    from harness.runs import discover
    from harness.suites import parse_suites
    from harness.track import Tracker

    work = Path(tempfile.mkdtemp(prefix="fb-bench-track-"))
    exe, env = [sys.executable, "-m", "harness.cli"], os.environ | {"PYTHONWARNINGS": "ignore"}
    if src is None:  # --tiny
        from tests.tiny import build_tiny_model

        src = build_tiny_model(work / "base")
    suites = ",".join(SHORT_SUITES)
    run = work / "run"
    _noisy_run(src, run, a.k)
    common = ["--suites", suites, "--limit", str(a.per_suite), "--max-new-tokens", str(a.track_tokens)]
    common += ["--engine", "hf", "--registry", str(work / "none.yaml"), "--n-boot", "200"]
    rows = []

    def timed(cmd: list[str]) -> float:
        t = time.perf_counter()
        subprocess.run(
            [*exe, *cmd], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        return time.perf_counter() - t

    track_s = timed(["track", str(run), "--base", str(src), *common, "--runs-dir", str(work / "s1"), "--out",
                     str(work / "t1")])  # fmt: skip
    ckpts = sorted(run.iterdir(), key=lambda d: int(d.name.split("-")[1]))
    compare_s = sum(
        timed(
            [
                "compare",
                str(src),
                str(d),
                *common,
                "--no-noise-floor",
                "--runs-dir",
                str(work / "s2"),
                "--out",
                str(work / f"c{d.name}"),
            ]
        )  # fmt: skip
        for d in ckpts
    )
    rows.append({"track": f"{a.k} checkpoints x {len(SHORT_SUITES)} suites x {a.per_suite} items, hf, one process",
                 "track_s": round(track_s, 1), "compare_processes_s": round(compare_s, 1),
                 "compare/track": round(compare_s / track_s, 2)})  # fmt: skip

    # in process: the engine starts once (the base), every checkpoint is switched in place; time each switch
    reg = Registry.load(work / "none.yaml")
    base = reg.resolve(str(src))
    cfg = EvalConfig(engine="hf", limit=a.per_suite, max_new_tokens=a.track_tokens, runs_dir=work / "s3")
    tracker = Tracker(reg, base, str(src), parse_suites(suites), cfg, console=_quiet())
    engine = tracker._engine()
    loads: list[float] = []
    real_load = engine.load

    def load(d):  # the engine's own load, timed: a fresh start for the base, an in-place switch after it
        t = time.perf_counter()
        real_load(d)
        loads.append(time.perf_counter() - t)

    engine.load = load
    tracker.start()
    rows.append({"engine_start_s": round(loads[0], 2), "starts": engine.starts})
    for rc in discover(str(run)).checkpoints:
        t = time.perf_counter()
        tracker.add(rc)
        total = time.perf_counter() - t
        switch = loads[-1]
        rows.append({"step": rc.step, "switch_s": round(switch, 3), "eval_s": round(total - switch, 2),
                     "switch_pct_of_eval": round(100 * switch / max(total - switch, 1e-9), 2),
                     "starts": engine.starts, "switches": engine.switches})  # fmt: skip
    tracker.close()
    rows.append(bench_cached_track(work))
    shutil.rmtree(work, ignore_errors=True)  # models and stores of every run; a failed bench keeps them to read
    return rows


def _quiet():
    from rich.console import Console

    return Console(stderr=True, quiet=True)


def bench_cached_track(work: Path, k: int = 10) -> dict:
    """Median wall time of 3 fully cached `forgetbench track` runs of a 10-checkpoint fake run (demo suites)."""
    from harness.suites import get_suite
    from tests.fakes import write_fake

    scored = [n for n in DEMO_SUITES.split(",") if get_suite(n).has_reference]
    base = write_fake(work / "fbase.fake.json", dict.fromkeys(scored, 0.5), 16, seed=0)
    run = work / "frun"
    run.mkdir()
    for i in range(1, k + 1):
        write_fake(run / f"step-{100 * i}.fake.json", dict.fromkeys(scored, 0.5 + 0.04 * i), 16, seed=i)
    cmd = [sys.executable, "-m", "harness.cli", "track", str(run), "--base", str(base), "--engine", "fake"]
    cmd += ["--suites", DEMO_SUITES, "--limit", "16", "--trained-on", "countdown", "--runs-dir", str(work / "fs")]
    cmd += ["--out", str(work / "ft"), "--max-drop", "2"]
    env = os.environ | {"PYTHONWARNINGS": "ignore"}
    subprocess.run(cmd, check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    times = []
    for _ in range(3):
        t = time.perf_counter()
        subprocess.run([*cmd, "--cached-only"], check=True, env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)  # fmt: skip
        times.append(time.perf_counter() - t)
    return {
        "cached_retrack": f"{k} checkpoints x 10 suites x 16 items",
        "cached_median_s": round(statistics.median(times), 2),
    }
