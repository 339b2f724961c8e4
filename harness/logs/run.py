"""`compare --from-logs`, `gate --from-logs` and `report` of such a run: read the logs (harness/logs), hand the
SuiteResults to the shared pipeline (pipeline.run_results), write the same outputs as a normal compare. config.json
keeps `from_logs` (the specs and flags) so `report DIR` re-reads the same logs.

    forgetbench compare --from-logs base=tests/data/logs/inspect/base cand=tests/data/logs/inspect/cand --out /tmp/x
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.logs import load
from harness.types import stable_hash

if TYPE_CHECKING:
    from harness.pipeline import Run


def _registry(path: Path, specs: Sequence[str]) -> object | None:
    """The registry only when a spec may be one of its ids (not NAME=PATH, not an existing path): reading it
    validates every entry, which a pure logs comparison does not need."""
    if all("=" in s or Path(s).exists() for s in specs) or not Path(path).exists():
        return None
    from harness.checkpoints.registry import Registry

    return Registry.load(path)


def default_out(ids: Sequence[str], specs: Sequence[str]) -> Path:
    return Path("reports") / f"compare-logs-{'-'.join(ids)[:60]}-{stable_hash(list(specs), 6)}"


def compare_logs(
    specs: Sequence[str],
    registry: Path = Path("checkpoints.yaml"),
    out: Path | None = None,
    trained_on: str | None = None,
    method: str | None = None,
    suites: str | None = None,
    n_boot: int = 1000,
    n_perm: int = 4000,
    finish: Callable[[Run], Callable[[Path], None] | None] | None = None,
    extra_config: dict[str, Any] | None = None,
) -> tuple[Run, Path]:
    """Read, check and compare the logs of `specs` (base first); every output written as one unit."""
    from harness import pipeline

    reg = _registry(registry, specs)
    logged = load(specs, reg, trained_on, method, suites)
    ids = [c.id for c in logged.checkpoints]
    out = out or default_out(ids, specs)
    base_results = logged.results[ids[0]]
    config = {
        "from_logs": {
            "specs": list(specs),
            "trained_on": trained_on,
            "method": method,
            "suites": suites,
            "registry": str(registry),
        },
        "checkpoints": list(specs),
        "suites": list(base_results),
        "versions": {s: {"data": r.data_version, "scorer": r.scorer_version} for s, r in base_results.items()},
        "tools": {s: r.engine for s, r in base_results.items()},
        "logs": logged.sources,
        "registry": str(getattr(reg, "source", "") or ""),
        "n_boot": n_boot,
        "lineage": {c.id: c.to_dict() for c in logged.checkpoints},
    } | (extra_config or {})
    return pipeline.run_results(
        reg, logged.checkpoints, logged.results, out, config, logged.prompts, n_boot, n_perm, finish, logged.noise
    )


def rerun(config: dict[str, Any], out: Path, finish: Callable[[Run], Callable[[Path], None] | None] | None = None):
    """`report DIR` of a logs comparison: the same specs and flags, the logs read again."""
    fl = config["from_logs"]
    return compare_logs(
        fl["specs"], Path(fl.get("registry") or "checkpoints.yaml"), out, fl.get("trained_on"), fl.get("method"),
        fl.get("suites"), config.get("n_boot", 1000), finish=finish,
    )  # fmt: skip
