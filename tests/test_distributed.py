"""--ray: the plan, the error without Ray, Ray never imported without --ray; a real two-node local cluster (-m ray).

The cluster tests start `ray start --head` plus a second worker node on this machine (1 CPU each, own temp
dirs), compare with the fake and the hf engine across it, kill a worker mid-task, and stop the cluster by
killing the process groups they started. Run them with: pytest -m ray tests/test_distributed.py
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from rich.console import Console
from typer.testing import CliRunner

from harness.cli import app
from tests.fakes import write_fake

ROOT = Path(__file__).resolve().parents[1]


def test_plan_holds_only_checkpoints_that_lack_records(tmp_path: Path) -> None:
    from harness.checkpoints.registry import Registry
    from harness.distributed import plan
    from harness.evaluate import EvalConfig, evaluate
    from harness.suites import get_suite

    reg = Registry([], (), None)
    a, b = (
        reg.resolve(str(write_fake(tmp_path / f"{n}.fake.json", {"arithmetic": 0.5}, 4, extra={n: n}))) for n in "ab"
    )
    suites, cfg = [get_suite("arithmetic")], EvalConfig(engine="fake", limit=4, runs_dir=tmp_path / "runs")
    assert [c.id for c, _jobs in plan(reg, [a, b], suites, cfg)] == ["a", "b"]
    evaluate(reg, [a], suites, cfg)
    assert [c.id for c, _jobs in plan(reg, [a, b, a], suites, cfg)] == ["b"]
    # the base's noise-floor decoding is a job of its own: owed until it is in the store
    (ckpt, jobs), _b = plan(reg, [a, b], suites, cfg, noise=True)
    assert ckpt.id == "a" and len(jobs) == 1 and jobs[0][1].batch_size == cfg.batch_size // 2
    from harness.probes import noise_floor

    noise_floor(reg, a, suites, cfg, Console(file=io.StringIO()))
    assert [c.id for c, _jobs in plan(reg, [a, b], suites, cfg, noise=True)] == ["b"]


def test_ray_flag_without_ray_is_one_line_exit_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # as if the extra were not installed
    write_fake(tmp_path / "a.fake.json", {"arithmetic": 0.5}, 4)
    res = CliRunner().invoke(
        app, ["compare", "a.fake.json", "--engine", "fake", "--suites", "arithmetic", "--ray", "auto"]
    )
    assert res.exit_code == 2 and "ray extra" in res.output and "Traceback" not in res.output


def test_workers_get_the_wildguard_weights_location(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.distributed import worker_env
    from harness.judges import WILDGUARD_ENV

    monkeypatch.setenv(WILDGUARD_ENV, "/models/wildguard")
    monkeypatch.delenv("FORGETBENCH_DATA", raising=False)
    env = worker_env()
    assert env[WILDGUARD_ENV] == "/models/wildguard" and "FORGETBENCH_DATA" not in env


def test_without_ray_flag_ray_is_never_imported(tmp_path: Path) -> None:
    write_fake(tmp_path / "a.fake.json", {"arithmetic": 0.5}, 4)
    write_fake(tmp_path / "b.fake.json", {"arithmetic": 0.9}, 4, seed=3)
    code = (
        "import sys; from harness.cli import app\n"
        "try: app(['compare', 'a.fake.json', 'b.fake.json', '--engine', 'fake', '--suites', 'arithmetic',"
        " '--limit', '4', '--out', 'out'])\n"
        "except SystemExit as e: assert not e.code, e.code\n"
        "print(sorted(m for m in sys.modules if m == 'ray' or m.startswith(('ray.', 'harness.distributed'))))"
    )
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip().splitlines()[-1] == "[]" and (tmp_path / "out/results.json").exists()


# -- a real local cluster ------------------------------------------------------------------------------
RAY = shutil.which("ray", path=str(Path(sys.executable).parent)) or "ray"


def _free_ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _started(p: subprocess.Popen, log: Path, timeout: float = 180) -> bool:
    """`ray start --block` prints this line once its node is up (cheaper to watch than `ray status`)."""
    deadline = time.time() + timeout
    while time.time() < deadline and p.poll() is None:
        text = log.read_text(errors="replace")
        if "will now block forever" in text:
            # the node's processes and every worker the raylet starts from now on: nice 15, like our tests
            os.setpriority(os.PRIO_PGRP, p.pid, 15)
            return True
        if "timed out during startup" in text:
            return False
        time.sleep(1)
    return False


def _start_node(args: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen:
    ports = _free_ports(6)
    names = ["--dashboard-agent-grpc-port", "--dashboard-agent-listen-port", "--runtime-env-agent-port"]
    names += ["--metrics-export-port", "--node-manager-port", "--object-manager-port"]
    fixed = [x for name, port in zip(names, ports, strict=True) for x in (name, str(port))]
    cmd = [RAY, "start", "--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1", "--disable-usage-stats"]
    cmd += ["--object-store-memory", str(80 * 2**20), *fixed, *args]
    # Its own session: the teardown kills exactly this process group. Ray waits a fixed 30 s for a node to
    # register, which a loaded machine can miss at nice 15: start at normal priority, then renice (below).
    with log.open("ab") as f:
        return subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True, preexec_fn=_normal_priority
        )


def _normal_priority() -> None:
    with contextlib.suppress(PermissionError):  # only root may lower niceness; elsewhere it stays as it was
        os.setpriority(os.PRIO_PROCESS, 0, 0)


def _stop(procs: list[subprocess.Popen]) -> None:
    gone = (ProcessLookupError, subprocess.TimeoutExpired)
    for p in procs:
        with contextlib.suppress(*gone):
            os.killpg(p.pid, signal.SIGTERM)
    deadline = time.time() + 20
    for p in procs:
        with contextlib.suppress(*gone):
            p.wait(timeout=max(1, deadline - time.time()))
        with contextlib.suppress(*gone):
            os.killpg(p.pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A head and one worker node on 127.0.0.1 (Ray's startup waits are fixed; under load a start is retried)."""
    pytest.importorskip("ray")
    tmp = Path(tempfile.mkdtemp(prefix="fb-ray-", dir="/tmp"))  # short: Ray's socket paths have a length limit
    env = os.environ | {"RAY_USAGE_STATS_ENABLED": "0"}
    (port,) = _free_ports(1)
    address = f"127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []
    try:
        for n, args in enumerate(
            [["--head", "--port", str(port), "--include-dashboard", "false"], ["--address", address]], start=1
        ):
            for attempt in range(3):
                log = tmp / f"node{n}-{attempt}.log"
                p = _start_node([*args, "--temp-dir", str(tmp / f"n{n}")], log, env)
                procs.append(p)  # stopped in the finally below whatever happens
                if _started(p, log):
                    break
                _stop([procs.pop()])
            else:
                pytest.fail(f"ray node {n} did not start: {log.read_text()[-2000:]}")
        yield address
    finally:
        _stop(procs[::-1])
        shutil.rmtree(tmp, ignore_errors=True)


def _compare(cwd: Path, ckpts: list[str], runs: str, out: str, extra: list[str], **kw) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "harness.cli", "compare", *ckpts, "--runs-dir", runs, "--out", out, *extra]
    env = os.environ | {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "COLUMNS": "200"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _finish(p: subprocess.Popen, timeout: float = 900) -> str:
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err[-3000:]
    return err


def _results(d: Path) -> dict:
    data = json.loads((d / "results.json").read_text())
    data.pop("config")  # paths and the runs dir differ by construction; every number must not
    return data


def _rows(runs: Path) -> int:
    return sum(pq.read_metadata(p).num_rows for p in runs.rglob("part-*.parquet"))


@pytest.mark.ray
def test_fake_engine_across_the_cluster_equals_one_process(cluster: str, tmp_path: Path) -> None:
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5, "capitals": 0.6}, 8, seed=1)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.2, "capitals": 0.9}, 8, seed=2)
    args = ["--engine", "fake", "--suites", "arithmetic,capitals", "--limit", "8"]
    ckpts = ["base.fake.json", "sft.fake.json"]
    _finish(_compare(tmp_path, ckpts, "one", "out-one", args))
    err = _finish(_compare(tmp_path, ckpts, "cluster", "out-ray", [*args, "--ray", cluster]))
    assert "ray: 2 task(s)" in err and err.count("evaluated on") == 2
    assert _results(tmp_path / "out-ray") == _results(tmp_path / "out-one")
    assert _rows(tmp_path / "cluster") == 2 * 2 * 8 + 2 * 8  # + the base's noise-floor decoding


@pytest.mark.ray
def test_a_worker_killed_mid_task_is_retried_to_the_same_results(cluster: str, tmp_path: Path) -> None:
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 0.5}, 16, seed=1, latency_s=0.4)
    args = ["--engine", "fake", "--suites", "arithmetic", "--limit", "16", "--batch-size", "2"]
    _finish(_compare(tmp_path, ["base.fake.json"], "one", "out-one", args))
    p = _compare(tmp_path, ["base.fake.json"], "cluster", "out-ray", [*args, "--ray", cluster])
    deadline = time.time() + 300
    while time.time() < deadline and len(parts := list((tmp_path / "cluster").rglob("part-*.parquet"))) < 2:
        time.sleep(0.1)
    assert len(parts) >= 2, "the task never started"
    victim = int(parts[0].name.split("-")[2])  # part-<time>-<pid>-...: the worker process writing them
    os.kill(victim, signal.SIGKILL)
    _finish(p)
    after = {int(q.name.split("-")[2]) for q in (tmp_path / "cluster").rglob("part-*.parquet")}
    assert victim in after and len(after) >= 2, "a retry on another worker process finished the task"
    assert _rows(tmp_path / "cluster") == 16 + 16  # + the noise floor; the retry redid only what was missing
    assert _results(tmp_path / "out-ray") == _results(tmp_path / "out-one")


@pytest.mark.ray
def test_hf_engine_on_the_tiny_model_across_the_cluster_equals_one_process(
    cluster: str, tmp_path: Path, tiny_model_dir: Path
) -> None:
    from tests.tiny import build_tiny_model

    other = build_tiny_model(tmp_path / "tiny2", seed=1)
    args = ["--engine", "hf", "--suites", "arithmetic", "--limit", "3", "--max-new-tokens", "6", "--n-boot", "50"]
    ckpts = [str(tiny_model_dir), str(other)]
    ray_run = _compare(tmp_path, ckpts, "cluster", "out-ray", [*args, "--ray", cluster])
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as a Ray worker with 1 CPU (OMP_NUM_THREADS=1): the same float sums
    try:  # the single-process run in this process, which has torch imported already (a loaded CI box)
        res = CliRunner().invoke(
            app, ["compare", *ckpts, "--runs-dir", str(tmp_path / "one"), "--out", str(tmp_path / "out-one"), *args]
        )
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    _finish(ray_run)
    assert _results(tmp_path / "out-ray") == _results(tmp_path / "out-one")
    assert _rows(tmp_path / "cluster") == 2 * 3 + 3
