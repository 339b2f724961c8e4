"""Run a compare's evaluation plan as Ray tasks on a cluster; the records land in one shared store.

The plan is checkpoint x suite x decoding minus what the store already holds, the base's noise-floor run
included (`noise`: the second decoding of probes.noise_plan). Each checkpoint that lacks records becomes
one task (all its suites and decodings together, so its weights load once), run by `evaluate` on a
worker with one engine and the resources it asks for (`gpus_per_task`). Every batch is committed to the
store as it finishes, so a worker killed mid-task loses only its batch in flight: Ray retries the task
(`max_retries`) and the retry evaluates only what is still missing. The driver then compares from the
store alone (the normal cached-only evaluation). Without `--ray` this module is never imported, nor is Ray.

The store must be reachable from every node under the same name: an fsspec URL (s3://, gs://) or a path
on a shared filesystem. Checkpoint paths are made absolute for the same reason.

    forgetbench compare base.fake.json sft.fake.json --engine fake --suites arithmetic --limit 8 --ray local
"""

from __future__ import annotations

import io
import os
import socket
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.checkpoints.registry import Checkpoint, Registry
from harness.checkpoints.weights import fingerprint
from harness.engines import EngineError, engine_ident
from harness.evaluate import EvalConfig, MissingRecordsError, evaluate
from harness.probes import noise_plan
from harness.store import is_url
from harness.suites import Suite

# Our own settings travel to the workers; everything else about a node is the node's business.
# What a worker must see as the driver does: where data and the store live, and where the WildGuard judge's
# weights are (harness.judges.WILDGUARD_ENV), so harmbench/wildjailbreak score on a node as they do locally.
_ENV = ("FORGETBENCH_HOME", "FORGETBENCH_DATA", "FORGETBENCH_WILDGUARD")


def worker_env() -> dict[str, str]:
    """The driver's settings that every Ray worker gets (runtime_env env_vars)."""
    return {k: os.environ[k] for k in _ENV if k in os.environ}


class DistributedError(EngineError):
    """The cluster could not be reached, or its tasks failed (one line). An EngineError: the CLI shows it so."""


Job = tuple[list[Suite], EvalConfig]  # one evaluate() call: these suites under this config


def plan(
    registry: Registry, checkpoints: list[Checkpoint], suites: list[Suite], cfg: EvalConfig, noise: bool = False
) -> list[tuple[Checkpoint, list[Job]]]:
    """The checkpoints (one per fingerprint) whose records the store lacks, each with the jobs it lacks:
    one task each. With `noise`, the base (first checkpoint) also owes its noise-floor decodings."""
    quiet = Console(file=io.StringIO())
    todo, seen = [], set()
    for k, ckpt in enumerate(checkpoints):
        fp = fingerprint(ckpt)
        if fp in seen:  # the same weights under another id: its records are the other's
            continue
        seen.add(fp)
        jobs: list[Job] = [(list(suites), cfg)]
        if noise and k == 0:
            jobs += [(twins, run_cfg) for twins, run_cfg, _change in noise_plan(suites, cfg)]
        missing = []
        for job_suites, job_cfg in jobs:
            try:
                evaluate(registry, [ckpt], job_suites, job_cfg, console=quiet, cached_only=True)
            except MissingRecordsError:
                missing.append((job_suites, job_cfg))
        if missing:
            todo.append((ckpt, missing))
    return todo


def _absolute(ckpt: Checkpoint) -> Checkpoint:
    """Workers start elsewhere: a relative path must name the same file there (shared filesystem)."""
    if ckpt.format == "embedded" or not Path(ckpt.path).exists():
        return ckpt
    return replace(ckpt, path=str(Path(ckpt.path).resolve()))


def _evaluate_task(registry: Registry, ckpt: Checkpoint, jobs: list[Job], ident: str) -> dict:
    """On a worker: evaluate one checkpoint's jobs into the shared store (only what is missing)."""
    here = engine_ident(jobs[0][1].engine, jobs[0][1].dtype)
    if here != ident:  # records would land under a key the driver never reads
        raise DistributedError(f"worker {socket.gethostname()} has engine {here}, the driver plans {ident}")
    t0 = time.perf_counter()
    for suites, cfg in jobs:
        evaluate(registry, [ckpt], suites, cfg, console=Console(file=io.StringIO()))
    return {"checkpoint": ckpt.id, "host": socket.gethostname(), "pid": os.getpid(), "s": time.perf_counter() - t0}


def run_plan(
    registry: Registry,
    checkpoints: list[Checkpoint],
    suites: list[Suite],
    cfg: EvalConfig,
    address: str,
    gpus_per_task: float | None = None,
    max_retries: int = 3,
    console: Console | None = None,
    noise: bool = False,
) -> list[dict[str, Any]]:
    """Evaluate what the store lacks as Ray tasks at `address` (auto | local | ray://host:port | host:port);
    with `noise`, the base's noise-floor run as well.

    Returns one report per task (checkpoint, host, pid, seconds), in the order they finished.
    """
    console = console or Console(stderr=True)
    try:
        import ray
        from ray.exceptions import RayError, RayTaskError
    except ImportError:
        # no brackets in the message: the CLI prints it through rich markup
        raise DistributedError("--ray needs Ray, which is not installed: install forgetbench's ray extra") from None
    import harness
    import suites as suites_pkg

    if not is_url(cfg.runs_dir):
        cfg = replace(cfg, runs_dir=str(Path(cfg.runs_dir).resolve()))
    todo = plan(registry, checkpoints, suites, cfg, noise)
    if not todo:
        console.print("ray: every record is already in the store", highlight=False)
        return []
    registry = Registry([_absolute(c) for c in registry.by_id.values()], registry.default_suites, registry.source)
    ident = engine_ident(cfg.engine, cfg.dtype)
    # The workers run this very code (not whatever forgetbench a node has installed) with our settings.
    runtime_env = {
        "py_modules": [harness, suites_pkg],
        "env_vars": worker_env(),
    }
    try:
        ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise DistributedError(f"--ray {address}: cannot reach the cluster ({str(e).splitlines()[0]})") from None
    try:
        gpus = gpus_per_task if gpus_per_task is not None else (1 if ray.cluster_resources().get("GPU", 0) else 0)
        task = ray.remote(_evaluate_task).options(
            num_cpus=1, num_gpus=gpus, max_retries=max_retries, retry_exceptions=False
        )
        reg_ref = ray.put(registry)
        pending = {task.remote(reg_ref, _absolute(c), jobs, ident): c for c, jobs in todo}
        console.print(f"ray: {len(pending)} task(s), {gpus} GPU(s) each, at {address}", highlight=False)
        reports = []
        while pending:
            (ref,), _ = ray.wait(list(pending), num_returns=1)
            ckpt = pending.pop(ref)
            try:
                rep = ray.get(ref)
            except RayTaskError as e:  # the task raised: show its own one-line error (RegistryError, ...)
                cause = getattr(e, "cause", None)
                raise cause if isinstance(cause, Exception) else DistributedError(str(e).splitlines()[0]) from None
            except RayError as e:  # the worker or node died more than max_retries times
                raise DistributedError(f"checkpoint {ckpt.id}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
            reports.append(rep)
            done = len(todo) - len(pending)
            console.print(
                f"ray: {rep['checkpoint']} evaluated on {rep['host']} in {rep['s']:.1f} s ({done}/{len(todo)})",
                highlight=False,
            )
        return reports
    finally:
        ray.shutdown()
