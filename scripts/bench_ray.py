"""Measure what Ray adds per task: N fake checkpoints evaluated in-process vs as Ray tasks at ADDRESS.

Each checkpoint is one task (one suite, a few items, no engine latency), so the difference is the
scheduling, worker start, code shipping and store round-trip overhead of one task.

    python scripts/bench_ray.py --address local --checkpoints 8
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rich.console import Console  # noqa: E402

from harness.checkpoints.registry import Registry  # noqa: E402
from harness.distributed import run_plan  # noqa: E402
from harness.evaluate import EvalConfig, evaluate  # noqa: E402
from harness.suites import get_suite  # noqa: E402
from tests.fakes import write_fake  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--address", default="local")
    ap.add_argument("--checkpoints", type=int, default=8)
    ap.add_argument("--items", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-ray-"))
    suites = [get_suite("arithmetic")]
    reg = Registry([], (), None)
    ckpts = [
        reg.resolve(
            str(write_fake(tmp / f"c{i}.fake.json", {"arithmetic": 0.5}, args.items, seed=i, extra={"#": str(i)}))
        )
        for i in range(args.checkpoints)
    ]
    quiet = Console(file=io.StringIO())
    t0 = time.perf_counter()
    evaluate(reg, ckpts, suites, EvalConfig(engine="fake", limit=args.items, runs_dir=tmp / "local"), console=quiet)
    local_s = time.perf_counter() - t0
    cfg = EvalConfig(engine="fake", limit=args.items, runs_dir=tmp / "ray")
    t0 = time.perf_counter()
    reports = run_plan(reg, ckpts, suites, cfg, args.address, console=quiet)
    ray_s = time.perf_counter() - t0
    in_task = sum(r["s"] for r in reports)
    n = len(reports)
    print(f"checkpoints={n} items={args.items} in-process={local_s:.2f}s ray={ray_s:.2f}s (incl. connect)")
    print(f"overhead/task={(ray_s - local_s) / n:.2f}s tasks/s={n / ray_s:.2f} mean in-task={in_task / n:.2f}s")


if __name__ == "__main__":
    main()
