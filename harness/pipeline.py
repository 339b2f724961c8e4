"""One comparison pipeline for `compare`, `report` and `gate` (`run`): check the inputs, resolve, evaluate
(or cached-only), build the Comparison, and write every output of the run as one unit. The gate adds its
checks and its decision through `run`'s hooks and decides from the Comparison alone.

Nothing is evaluated before every flag, the output dir and the record store have been checked (InputError:
one line naming the flag). The outputs are written into a fresh per-process directory beside `--out` and
swapped into place in one step (`outputs.commit`): a failed or killed run leaves the previous output or none,
never a mix.

    forgetbench compare base.fake.json sft.fake.json --engine fake --suites arithmetic --limit 8 --out /tmp/x
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from harness.fsio import did_you_mean
from harness.outputs import InputError, check_out, commit
from harness.types import stable_hash

if TYPE_CHECKING:
    from harness.checkpoints.registry import Checkpoint, Registry
    from harness.evaluate import EvalConfig
    from harness.suites import Suite
    from harness.types import Comparison, SuiteResult

__all__ = [
    "InputError",
    "Run",
    "build",
    "check_config",
    "check_flags",
    "check_paths",
    "check_runs_dir",
    "default_out",
    "resolve",
    "run",
    "run_results",
    "write_run",
]

NO_REFERENCE = "(no reference answer: scored by the suite's checkers)"


def _positive(flag: str, value: int | None) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise InputError(f"{flag} must be a positive integer, got {value!r}")


def check_flags(
    limit: int | None = None,
    max_new_tokens: int | None = None,
    n_boot: int | None = None,
    batch_size: int | None = None,
) -> None:
    """Refuse values that would silently mean something else (--limit 0 = every item, -1 = all but one)."""
    for flag, value in (
        ("--limit", limit),
        ("--max-new-tokens", max_new_tokens),
        ("--n-boot", n_boot),
        ("--batch-size", batch_size),
    ):
        _positive(flag, value)


def _writable_dir(flag: str, path: Path) -> None:
    """`path` is (or can be created as) a directory we may write into; checked without writing anything."""
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{flag} {path}: {probe} exists and is not a directory")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{flag} {path}: {probe} is not writable")


def check_paths(out: Path, runs_dir: Path | str) -> None:
    """--out and --runs-dir can be written, before any model work."""
    check_out(out)
    check_runs_dir(runs_dir)


def check_config(cfg: EvalConfig, suites: Sequence[Suite] = ()) -> None:
    """Names the user typed must exist: every --engine-opt key among the engine's declared options (no model
    is loaded to learn them), every --suite-limit key among the selected suites; and no option given twice
    (--dtype with --engine-opt dtype=...)."""
    from harness.engines import ENGINE_OPTIONS, EngineError

    opts = dict(cfg.engine_options or {})
    for key, flag in (("dtype", "--dtype"), ("batch_size", "--batch-size")):
        if key in opts:
            given = getattr(cfg, key)
            clash = f" conflicts with {flag} {given}" if given not in (None, opts[key]) else ""
            raise InputError(f"--engine-opt {key}={opts[key]}{clash}: give it as {flag} (one place, in the cache key)")
    declared = ENGINE_OPTIONS.get(cfg.engine, ())
    for key in opts:
        if declared is not None and key not in declared:
            known = ", ".join(declared) or "none"
            hint = did_you_mean(key, declared)
            raise EngineError(f"engine {cfg.engine!r} does not take --engine-opt {key}{hint} (options: {known})")
    names = [s.name for s in suites]
    for key in cfg.limits or {}:
        if names and key not in names:
            raise InputError(
                f"--suite-limit {key}: not a selected suite{did_you_mean(key, names)} (selected: {', '.join(names)})"
            )


def check_runs_dir(runs_dir: Path | str) -> None:
    """The record store can be written (even cached-only runs note each checkpoint there). A URL store
    (s3://, memory://, ...) needs a scheme and a location; its filesystem checks it when first written."""
    if isinstance(runs_dir, str) and "://" in runs_dir:
        from harness.store import check_url

        check_url(runs_dir)
        return
    runs_dir = Path(runs_dir)
    _writable_dir("--runs-dir", runs_dir)
    for sub in (runs_dir, runs_dir / "records", runs_dir / "checkpoints"):
        if sub.is_dir() and not os.access(sub, os.W_OK | os.X_OK):
            raise InputError(f"--runs-dir {runs_dir}: {sub} is not writable")


def resolve(
    registry_path: Path | None,
    specs: Sequence[str],
    suites_arg: str | None,
    lineage: tuple[str | None, ...] = (None, None),
) -> tuple[Registry, list, list]:
    """Registry, checkpoints (base first; a repeated id gets `-<position>`; `lineage` = (--trained-on,
    --method, --group) for candidates given as paths), suites (default: registry's). registry_path None: no registry
    (`report DIR` of a comparison made without one never reads the current folder's checkpoints.yaml)."""
    from harness.checkpoints.registry import DEFAULT_SUITES, Registry, with_lineage
    from harness.suites import SuiteError, parse_suites

    registry = Registry.load(registry_path) if registry_path is not None else Registry([], DEFAULT_SUITES, None)
    ckpts: list[Checkpoint] = []
    seen: set[str] = set()
    for spec in specs:
        c = registry.resolve(spec)
        if c.id in seen:  # two paths with the same file name: keep both, distinctly named
            c = replace(c, id=f"{c.id}-{len(ckpts)}")
        seen.add(c.id)
        ckpts.append(c)
    if any(x is not None for x in lineage):
        ckpts = with_lineage(registry, ckpts, list(specs), *lineage)
    if suites_arg is None:
        return registry, ckpts, parse_suites(registry.default_suites)
    try:  # an explicit `--suites ""` is an error naming the flag, not the registry's default
        return registry, ckpts, parse_suites(suites_arg)
    except SuiteError as e:
        raise SuiteError(f"--suites: {e}") from None


def prompts_for(suites: Sequence[Suite], cfg: EvalConfig) -> dict[str, dict[str, tuple[str, str]]]:
    """prompt text and reference answer per item (the items cfg evaluates), for the forgotten-items browser."""
    from harness.suites import load_items

    return {
        s.name: {
            it.id: (s.prompt(it)[-1]["content"], s.reference(it) if s.has_reference else NO_REFERENCE)
            for it in load_items(s, cfg.limit_for(s.name))
        }
        for s in suites
    }


def chance_for(suites: Sequence[Suite], cfg: EvalConfig) -> tuple[dict[str, float], dict[str, float]]:
    """Per suite, the score of a random answer on the items cfg evaluates (a choice suite: the mean of
    1 / number of choices, exact for its items; otherwise the suite's declared `chance`), and its declared
    `ceiling` where it has one: what harness/informative.py decides informative suites by."""
    from harness.suites import load_items

    chance, ceiling = {}, {}
    for s in suites:
        chance[s.name] = float(s.chance)
        if s.kind == "choice":
            items = load_items(s, cfg.limit_for(s.name))
            if items:
                chance[s.name] = sum(1 / max(len(s.choices(it)), 1) for it in items) / len(items)
        if getattr(s, "ceiling", None) is not None:
            ceiling[s.name] = float(s.ceiling)  # type: ignore[attr-defined]
    return chance, ceiling


def assign_groups(ckpts: Sequence[Checkpoint]) -> dict[str, str]:
    """Replicate groups of the candidates (harness/groups.py)."""
    from harness.groups import assign

    return assign(ckpts)


@dataclass
class Run:
    """What one pipeline run produced: the Comparison, the results it came from, the config to save."""

    registry: Registry
    checkpoints: list[Checkpoint]
    suites: list[Suite]
    results: dict[str, dict[str, SuiteResult]]
    comparison: Comparison
    config: dict[str, Any] = field(default_factory=dict)


def build(
    registry: Registry,
    ckpts: Sequence[Checkpoint],
    suites: Sequence[Suite],
    cfg: EvalConfig,
    specs: Sequence[str],
    n_boot: int = 1000,
    n_perm: int = 4000,
    cached_only: bool = False,
    console: Console | None = None,
    extra_config: dict[str, Any] | None = None,
    probe_opts: dict[str, bool] | None = None,
    probes_cached_only: bool | None = None,
) -> Run:
    """Evaluate what the store lacks (or refuse, cached_only), run the probes (noise floor, KL; cached like
    evaluations; `probes_cached_only` defaults to cached_only), compare every candidate with the base."""
    from harness.compare import compare
    from harness.evaluate import evaluate
    from harness.probes import run_probes

    results = evaluate(registry, ckpts, suites, cfg, console=console, cached_only=cached_only)
    probe_opts = probe_opts or {"noise_floor": False, "kl": False}
    extra = run_probes(
        registry,
        list(ckpts),
        list(suites),
        cfg,
        console,
        probe_opts["noise_floor"],
        probe_opts["kl"],
        cached_only if probes_cached_only is None else probes_cached_only,
    )
    base = ckpts[0]
    chance, ceiling = chance_for(suites, cfg)
    comp = compare(
        results,
        base.id,
        [(c.id, c.method, c.trained_on) for c in ckpts[1:]],
        prompts_for(suites, cfg),
        n_boot=n_boot,
        n_perm=n_perm,
        **extra,
        chance=chance,
        ceiling=ceiling,
        groups=assign_groups(ckpts[1:]),
    )
    # how off-policy each candidate's training data was (its data_score), beside its drop
    comp = replace(comp, data_scores={c.id: dict(c.data_score) for c in ckpts[1:] if c.data_score})
    config = {
        "checkpoints": list(specs),
        "suites": [s.spec for s in suites],  # with options: `report` re-resolves exactly these
        "versions": {s.name: {"data": s.data_version, "scorer": s.scorer_version} for s in suites},
        "registry": str(registry.source or ""),
        "eval": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(cfg).items()},
        "n_boot": n_boot,
        "lineage": {c.id: c.to_dict() for c in ckpts},
        "probes": probe_opts,
    } | (extra_config or {})
    return Run(registry, list(ckpts), list(suites), results, comp, config)


def write_run(run: Run | None, out: Path, extra: Callable[[Path], None] | None = None) -> Path:
    """config.json, report.html, results.json, results.parquet (+ `extra`, e.g. the gate's files), as one unit.

    run=None writes only `extra`: the previous results go with the swap, so no stale report is read as
    this run's.
    """
    from harness.report import render_html, write_json, write_parquet

    def write(stage: Path) -> None:
        if run is not None:
            text = json.dumps(run.config, indent=1, default=str)
            (stage / "config.json").write_text(text)
            render_html(run.comparison, stage / "report.html", config=run.config)
            write_json(run.comparison, stage / "results.json", config=run.config)
            write_parquet(run.comparison, stage / "results.parquet")
        if extra is not None:
            extra(stage)

    return commit(out, write)


def pareto_peers(
    run: Run, cfg: EvalConfig, n_boot: int = 1000, console: Console | None = None
) -> tuple[tuple[str, ...], list[str]]:
    """Who dominates the first candidate among registered children of the same base with the same trained_on,
    from the store only (never evaluated here); notes name the peers skipped and why."""
    from harness.checkpoints.registry import RegistryError
    from harness.compare import ComparisonError, check_comparable, compare
    from harness.evaluate import MissingRecordsError, evaluate

    b, c = run.checkpoints[0], run.checkpoints[1]
    results = dict(run.results)
    notes, peers = [], []
    for p in run.registry.by_id.values():
        if p.id in (b.id, c.id) or p.base != b.id or not p.trained_on or set(p.trained_on) != set(c.trained_on):
            continue
        try:
            res = evaluate(run.registry, [p], run.suites, cfg, console=console, cached_only=True)
            for s in run.suites:
                check_comparable(results[b.id][s.name], res[p.id][s.name])
        except (MissingRecordsError, RegistryError, ComparisonError, FileNotFoundError) as e:
            notes.append(f"Pareto: skipped {p.id} ({e})")
            continue
        results[p.id] = res[p.id]
        peers.append((p.id, p.method, p.trained_on))
    dominated = run.comparison.summaries[0].dominated_by
    if peers:
        chance, ceiling = chance_for(run.suites, cfg)  # the same informative suites as the comparison's
        everyone = compare(
            results, b.id, [(c.id, c.method, c.trained_on), *peers], n_boot=n_boot, chance=chance, ceiling=ceiling
        )
        dominated = everyone.summaries[0].dominated_by
    return tuple(dominated), notes


def default_out(ckpts: Sequence[Checkpoint], suites: Sequence[Suite], cfg: EvalConfig) -> Path:
    """reports/compare-<ids>-<hash of ids, suite idents, limit, engine>."""
    names = "-".join(c.id for c in ckpts)[:60]
    key = stable_hash([[c.id for c in ckpts], [s.ident for s in suites], cfg.limit, cfg.limits, cfg.engine], 6)
    return Path("reports") / f"compare-{names}-{key}"


def run(
    registry_path: Path | None,
    specs: Sequence[str],
    suites_arg: str | None,
    cfg: EvalConfig,
    out: Path | None = None,
    n_boot: int = 1000,
    n_perm: int = 4000,
    cached_only: bool = False,
    console: Console | None = None,
    extra_config: dict[str, Any] | None = None,
    check: Callable[[Registry, list[Checkpoint], list[Suite]], None] | None = None,
    finish: Callable[[Run], Callable[[Path], None] | None] | None = None,
    lineage: tuple[str | None, ...] = (None, None),
    probe_opts: dict[str, bool] | None = None,
    probes_cached_only: bool | None = None,
) -> tuple[Run, Path]:
    """The whole pipeline of compare, report and gate: check flags and paths, resolve (`check` may refuse
    more, e.g. the gate's identical weights), evaluate or cached-only, compare, then `finish(run)` (print a
    table; the gate decides and returns its files' writer), and write every output as one unit."""
    check_flags(cfg.limit, cfg.max_new_tokens, n_boot, cfg.batch_size)
    registry, ckpts, suites = resolve(registry_path, specs, suites_arg, lineage)
    check_config(cfg, suites)
    if check is not None:
        check(registry, ckpts, suites)
    out = out or default_out(ckpts, suites, cfg)
    check_paths(out, cfg.runs_dir)
    result = build(
        registry,
        ckpts,
        suites,
        cfg,
        specs,
        n_boot,
        n_perm,
        cached_only,
        console,
        extra_config,
        probe_opts,
        probes_cached_only,
    )
    return result, _finish_and_write(result, out, finish)


def _finish_and_write(result: Run, out: Path, finish: Callable[[Run], Callable[[Path], None] | None] | None) -> Path:
    extra = finish(result) if finish is not None else None
    try:
        write_run(result, out, extra)
    except OSError as e:
        raise InputError(f"--out {out}: cannot write ({e.strerror or e}); the previous output is kept") from None
    return out


def run_results(
    registry: Registry | None,
    ckpts: Sequence[Checkpoint],
    results: dict[str, dict[str, SuiteResult]],
    out: Path,
    config: dict[str, Any],
    prompts: dict[str, dict[str, tuple[str, str]]] | None = None,
    n_boot: int = 1000,
    n_perm: int = 4000,
    finish: Callable[[Run], Callable[[Path], None] | None] | None = None,
    repeats: dict[str, tuple[SuiteResult, SuiteResult, str]] | None = None,
) -> tuple[Run, Path]:
    """`run` for SuiteResults read elsewhere (harness/logs: lm-eval and Inspect sample logs): nothing is
    resolved, evaluated or probed; compare with the base (ckpts[0]), `finish`, write every output as one unit.
    `repeats[suite]` = two repeats of the base and what differs (Inspect epochs): the noise floor and its band."""
    import numpy as np

    from harness import stats
    from harness.compare import boot_indices, compare

    check_flags(n_boot=n_boot)
    check_out(out)
    trio = [(c.id, c.method, c.trained_on) for c in ckpts[1:]]
    comp = compare(results, ckpts[0].id, trio, prompts, n_boot=n_boot, n_perm=n_perm)
    if repeats:  # compare's own noise input pairs the base's result itself with a rerun; here both are repeats
        floor = [
            stats.noise_floor(a, b, boot_indices(s, len(a.scores), n_boot, 0), change)
            for s, (a, b, change) in repeats.items()
        ]
        band = stats.percentile_ci(-np.mean([boot for _, boot in floor], axis=0))
        comp = replace(comp, noise=tuple(f for f, _ in floor), meta=comp.meta | {"noise_band": band})
    result = Run(registry, list(ckpts), [], results, comp, config)  # type: ignore[arg-type]  (None: logs need no registry)
    return result, _finish_and_write(result, out, finish)
