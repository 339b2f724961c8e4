"""CI gate: exit non-zero when a candidate checkpoint forgets what its base could do.

    forgetbench gate --base smollm2-135m --candidate my-sft --max-drop 2 --suites arithmetic,capitals --limit 200

Exit codes: 0 pass, 1 regression, 2 could not decide (missing checkpoint, data, judge or records; a refused
comparison; a bad config; any unexpected error). The gate fails closed: nothing missing ever passes.

Decision rule (long form with a GitHub Actions example: docs/gate.md). All numbers are absolute points (0-100);
drop = base score - candidate score, positive = forgetting.

1. Per suite s (every selected suite, target or not): the paired test of compare (exact McNemar for 0/1
   scores, sign-flip permutation otherwise) gives p_s; the q-values are Benjamini-Hochberg-adjusted over the
   candidate's suites. Suite s is a REGRESSION when drop_s > threshold_s AND q_s <= alpha, where threshold_s
   is `per_suite[s]`, else `max_suite_drop`.
2. Overall: D = mean over the INFORMATIVE non-target suites (those not in the candidate's trained_on; all
   suites when it has none) of drop_s, the paper's "drop". A suite is informative when the base is above
   chance and below ceiling (harness/informative.py, from the base alone); the others are left out of D, named
   with the reason, and still gated per suite (1). When none is informative, D is over all of them (said
   so). Its p-value is a paired sign-flip permutation test of the same suite-averaged statistic (per-item
   differences weighted 1/(S*n_s)). REGRESSION when D > max_drop AND p_D <= alpha.
   D, its CI and p_D are the Comparison's own (compare.suite_set_drop, meta["non_target_drop"]).
3. A drop above its threshold that is not significant is a WARNING (too few items to tell): it passes. A
   threshold below the minimum detectable drop at this n (80% power, paired; harness/stats.py) is flagged
   "underpowered" with the n that would suffice.
4. Exit 1 when any of 1-2 is a regression, else 0. Pareto dominance by registered checkpoints (same base,
   same trained_on, records already in the store: never evaluated here) is reported, never gated.

Statistics: tests are of "no change" (the threshold is a separate condition); BH bounds false suite failures at
alpha, the overall test adds about alpha/2 (only drops fail), so a candidate that changed nothing fails with
probability <= 1.5 * alpha. Fixed seeds: the same records always give the same decision. alpha is in [0.001, 1).
Thresholds come from defaults < the config file (`--config`, else ./forgetbench-gate.yaml if present) < flags.
The run itself is harness/pipeline.py (shared with compare and report); this module decides and writes
gate.md / junit.xml / gate.json, escaping every string it did not write. A base and candidate with the same
weights fingerprint are refused (exit 2) before any model work.
`--from-logs`: --base/--candidate are lm-eval or Inspect sample logs (harness/logs), decided by the same rule with
no model; logs that measured differently, or the same model logged twice, are refused (exit 2).
"""

from __future__ import annotations

import json
import math
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from harness.commandline import (
    RUNS_DIR,
    BatchSizeOpt,
    CachedOnlyOpt,
    DtypeOpt,
    EngineOpt,
    EngineOptsOpt,
    LimitOpt,
    MaxNewTokensOpt,
    NBootOpt,
    RegistryOpt,
    RunsDirOpt,
    SuiteLimitOpt,
    err_console,
    eval_config,
    fail_line,
)
from harness.errors import ForgetbenchError
from harness.fmt import pp as _pp
from harness.fsio import load_yaml
from harness.informative import label
from harness.stats import underpowered
from harness.types import Comparison

if TYPE_CHECKING:
    from harness.evaluate import EvalConfig
    from harness.pipeline import Run

CONFIG_FILE = "forgetbench-gate.yaml"
EXIT_PASS, EXIT_REGRESSION, EXIT_UNDECIDED = 0, 1, 2
_CONFIG_KEYS = {"max_drop", "max_suite_drop", "per_suite", "alpha", "suites", "limit"}


class GateConfigError(ForgetbenchError):
    """The gate config file or a threshold is invalid (names the file and key)."""


@dataclass(frozen=True)
class GateConfig:
    """Thresholds and scope of the gate; saved into config.json next to its output."""

    max_drop: float = 2.0  # overall drop (mean over non-target suites), points
    max_suite_drop: float = 5.0  # any one suite, points, unless per_suite names it
    per_suite: dict[str, float] = field(default_factory=dict)  # suite -> its own max drop (points)
    alpha: float = 0.05  # significance: overall p and per-suite BH q must be <= alpha to fail
    suites: tuple[str, ...] | None = None  # None = the registry's default_suites
    limit: int | None = None  # first N items of every suite (fixes the item set)
    source: str | None = None  # the config file these came from, for the record

    def threshold(self, suite: str) -> float:
        return self.per_suite.get(suite, self.max_suite_drop)


def _number(value: Any, where: str, lo: float = 0.0, hi: float = math.inf, strict_hi: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < lo or value > hi or (strict_hi and value >= hi):
        raise GateConfigError(f"{where}: must be a number in [{lo}, {hi}{')' if strict_hi else ']'}, got {value!r}")
    return float(value)


def load_config(path: Path | None, overrides: Mapping[str, Any] | None = None) -> GateConfig:
    """Defaults, then the YAML file (if any), then non-None overrides (command-line flags)."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw = load_yaml(path, GateConfigError) or {}  # aliases and repeated keys refused
        if not isinstance(raw, dict):
            raise GateConfigError(f"{path}: top level must be a mapping of {', '.join(sorted(_CONFIG_KEYS))}")
        unknown = set(raw) - _CONFIG_KEYS  # a typo must not silently fall back to a default
        if unknown:
            raise GateConfigError(f"{path}: unknown key(s) {', '.join(sorted(map(str, unknown)))}")
    raw |= {k: v for k, v in (overrides or {}).items() if v is not None}
    where = str(path) if path else "gate options"
    kw: dict[str, Any] = {"source": str(path) if path else None}
    for key in ("max_drop", "max_suite_drop"):
        if key in raw:
            kw[key] = _number(raw[key], f"{where}: {key}")
    if "alpha" in raw:
        # floor 0.001: the permutation tests resolve p down to ~1/4000 (see docs/gate.md)
        kw["alpha"] = _number(raw["alpha"], f"{where}: alpha", 0.001, 1.0, strict_hi=True)
    per = raw.get("per_suite") or {}
    if not isinstance(per, dict):
        raise GateConfigError(f"{where}: per_suite must map suite names to max drops (points)")
    kw["per_suite"] = {str(s): _number(v, f"{where}: per_suite.{s}") for s, v in per.items()}
    suites = raw.get("suites")
    if isinstance(suites, str):
        suites = [s.strip() for s in suites.split(",") if s.strip()]
    if suites is not None:
        if not isinstance(suites, list) or not suites or not all(isinstance(s, str) for s in suites):
            raise GateConfigError(f"{where}: suites must be a non-empty list of suite names")
        kw["suites"] = tuple(suites)
    if raw.get("limit") is not None:
        limit = raw["limit"]
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 1:
            raise GateConfigError(f"{where}: limit must be a positive integer, got {limit!r}")
        kw["limit"] = limit
    return GateConfig(**kw)


# -- the decision (pure) ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One gated quantity: a suite's drop, or the overall drop (suite == "overall")."""

    suite: str
    is_target: bool
    n: int
    base_score: float | None
    score: float | None
    drop: float
    drop_ci: tuple[float, float]
    p_value: float
    q_value: float | None  # per-suite BH q; None for the overall drop (tested on its own p)
    threshold: float
    status: str  # pass | warn | fail
    reason: str
    informative: bool = True  # the base can show forgetting on this suite (harness/informative.py)
    why: str = ""  # why not, when not


@dataclass(frozen=True)
class GateDecision:
    base: str
    candidate: str
    exit_code: int
    checks: tuple[Check, ...] = ()  # per suite, in suite order
    overall: Check | None = None
    gain: float | None = None
    gain_ci: tuple[float, float] | None = None
    trained_on: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    dominated_by: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    error: str | None = None
    config: GateConfig = field(default_factory=GateConfig)
    left_out: tuple[str, ...] = ()  # "suite: why" for non-target suites left out of the overall drop
    drop_all: float | None = None  # the overall drop over all non-target suites, shown beside
    drop_all_ci: tuple[float, float] | None = None

    @property
    def status(self) -> str:
        return {EXIT_PASS: "pass", EXIT_REGRESSION: "regression"}.get(self.exit_code, "undecided")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"status": self.status}


def decide(
    comp: Comparison,
    cfg: GateConfig,
    dominated_by: Sequence[str] = (),
    notes: Sequence[str] = (),
) -> GateDecision:
    """Apply the rule to a comparison of exactly one candidate with its base (q-values over its suites).

    Everything comes from the Comparison: per-suite deltas and q-values, and meta["non_target_drop"] (drop
    over the non-target suites with compare's bootstrap CI and overall p-value; see compare.suite_set_drop).
    """
    if len(comp.summaries) != 1:
        raise ValueError("the gate decides on a comparison of exactly one candidate")
    summ = comp.summaries[0]
    cand, base = summ.checkpoint, comp.base
    checks, warnings = [], list(comp.meta.get("warnings", []))
    flags = {f.suite: f for f in comp.informative}
    for d in summ.deltas:
        if d.n == 0:
            raise ValueError(f"suite {d.suite}: no items to decide on")
        drop, thr = -d.delta, cfg.threshold(d.suite)
        status, reason = _verdict(drop, thr, d.q_value, cfg.alpha, "q", d.n)
        if status == "warn":
            warnings.append(f"{d.suite}: {reason}")
        ci = (-d.ci_high, -d.ci_low)
        f = flags.get(d.suite)
        checks.append(Check(d.suite, d.is_target, d.n, d.base_score, d.score, drop, ci, d.p_value, d.q_value, thr,
                            status, reason, f is None or f.informative, f.reason if f else ""))  # fmt: skip
    if cand not in comp.meta.get("non_target_drop", {}):
        raise ValueError(f"the comparison carries no non-target drop for {cand}")
    nt = comp.meta["non_target_drop"][cand]
    overall = None
    if nt:
        drop, p, n = float(nt["drop"]), float(nt["p_value"]), int(nt["n"])
        status, reason = _verdict(drop, cfg.max_drop, p, cfg.alpha, "p", n)
        if status == "warn":
            warnings.append(f"overall: {reason}")
        ci = (float(nt["ci"][0]), float(nt["ci"][1]))
        overall = Check("overall", False, n, None, None, drop, ci, p, None, cfg.max_drop, status, reason)
    else:
        notes = [*notes, "every selected suite is a target suite: no overall drop to gate"]
    left_out = tuple(f"{s}: {why}" for s, why in (nt or {}).get("left_out", {}).items())
    if nt and nt.get("fallback"):
        notes = [*notes, "no non-target suite is informative: the overall drop is over all of them"]
    every = comp.meta.get("non_target_drop_all", {}).get(cand)
    # A threshold below what this n can detect passes forgetting it cannot see: say so, and what n would do.
    thresholds = {k.suite: k.threshold for k in checks}
    non = list(nt.get("suites", ())) if nt else []
    warnings += underpowered(comp.power, thresholds, (non, cfg.max_drop) if non else None, cfg.alpha)
    unknown = sorted(set(cfg.per_suite) - set(comp.suites))
    if unknown:
        notes = [*notes, f"per_suite thresholds for suites not gated here: {', '.join(unknown)}"]
    failed = any(c.status == "fail" for c in [*checks, *([overall] if overall else [])])
    return GateDecision(
        base=base,
        candidate=cand,
        exit_code=EXIT_REGRESSION if failed else EXIT_PASS,
        checks=tuple(checks),
        overall=overall,
        gain=summ.gain,
        gain_ci=summ.gain_ci,
        trained_on=summ.trained_on,
        warnings=tuple(warnings),
        dominated_by=tuple(dominated_by),
        notes=tuple([*summ.notes, *notes]),
        config=cfg,
        left_out=left_out,
        drop_all=float(every["drop"]) if every else None,
        drop_all_ci=(float(every["ci"][0]), float(every["ci"][1])) if every else None,
    )


def n_perm_for(alpha: float) -> int:
    """Permutation draws for the overall test: enough that p can fall well below alpha."""
    return max(4000, math.ceil(20 / alpha))


def _verdict(drop: float, thr: float, sig: float, alpha: float, name: str, n: int) -> tuple[str, str]:
    over, significant = drop > thr + 1e-9, sig <= alpha  # 1e-9: a drop exactly at the threshold passes
    if over and significant:
        return "fail", f"drop {drop:.1f} pp > {thr:g} pp and {name} = {sig:.2g} <= {alpha:g}"
    if over:
        return "warn", (
            f"drop {drop:.1f} pp > {thr:g} pp but not significant ({name} = {sig:.2g} > {alpha:g}, n = {n}): "
            "too few items to tell; raise --limit"
        )
    if drop > 0 and significant:
        return "pass", f"significant drop {drop:.1f} pp within {thr:g} pp"
    return "pass", f"drop {drop:.1f} pp <= {thr:g} pp" if drop > 0 else "no drop"


# -- outputs for CI -----------------------------------------------------------------------------------------

_ICON = {"pass": "✅", "warn": "⚠️", "fail": "❌"}


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>&|~{}])")
_XML_BAD = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _md(text: object) -> str:
    """Untrusted text in markdown: every character that could start HTML, a link, emphasis, a code span or
    a table cell is backslash-escaped (GitHub renders it literally); newlines would end the line."""
    return _MD_SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def _code(text: object) -> str:
    """Untrusted text as a code span: literal inside, so only a backtick or a newline could break out."""
    return "`" + " ".join(str(text).splitlines()).replace("`", "'") + "`"


def _xml(text: object) -> str:
    """XML 1.0 cannot carry control characters (ElementTree would write them raw: an unreadable file)."""
    return _XML_BAD.sub("\ufffd", str(text))


def markdown(dec: GateDecision) -> str:
    """The summary for a PR comment or $GITHUB_STEP_SUMMARY."""
    title = {"pass": "✅ pass", "regression": "❌ regression", "undecided": "⛔ could not decide"}[dec.status]
    out = [f"## forgetbench gate: {title}", "", f"Candidate {_code(dec.candidate)} vs base {_code(dec.base)}."]
    if dec.error:
        return "\n".join([*out, "", f"**Error:** {_md(dec.error)}", "", "Exit 2: the gate fails closed.", ""])
    c = dec.config
    if dec.overall:
        o = dec.overall
        which = "informative non-target suites" if dec.left_out else "non-target suites"
        out += ["", f"**Drop** (mean over {which}): **{_pp(o.drop, o.drop_ci)} pp** — max {c.max_drop:g} "
                f"pp, p = {o.p_value:.2g} → {_ICON[o.status]} {o.status}"]  # fmt: skip
        if dec.left_out:
            out += ["", f"Drop over all non-target suites: {_pp(dec.drop_all, dec.drop_all_ci)} pp (not gated). "
                    "Left out of the gated drop (from the base alone):",
                    *[f"- {_md(x)}" for x in dec.left_out]]  # fmt: skip
    if dec.gain is not None:
        out += ["", f"**Gain** on {', '.join(map(_md, dec.trained_on))}: {_pp(dec.gain, dec.gain_ci)} pp"]
    out += ["", "| suite | n | base | candidate | drop (pp) [95% CI] | q | max drop | verdict |", "|---" * 8 + "|"]
    for k in dec.checks:
        flag = "" if k.informative else f" ({label(k.why)}: not in the overall drop)"
        name = f"{_md(k.suite)}{' (target)' if k.is_target else ''}{flag}"
        out.append(
            f"| {name} | {k.n} | {k.base_score:.1f} | {k.score:.1f} | {_pp(k.drop, k.drop_ci)} | {k.q_value:.2g} | "
            f"{k.threshold:g} | {_ICON[k.status]} {k.status} |"
        )
    if dec.warnings:
        out += ["", "**Warnings**", *[f"- {_md(w)}" for w in dec.warnings]]
    if dec.dominated_by:
        out += ["", f"**Pareto:** dominated by {', '.join(_code(d) for d in dec.dominated_by)} "
                "(resolved: better on one axis, its 95% CI excluding 0, and not worse on the other)."]  # fmt: skip
    if dec.notes:
        out += ["", *[f"- {_md(n)}" for n in dec.notes]]
    out += ["", f"<sub>Fails when a drop exceeds its threshold and is significant (per suite: BH q <= {c.alpha:g}; "
            f"overall: p <= {c.alpha:g}). Points are absolute (0-100). Rule: docs/gate.md.</sub>", ""]  # fmt: skip
    return "\n".join(out)


def junit_xml(dec: GateDecision) -> str:
    """One test case per suite plus one for the overall drop; regressions carry a <failure>."""
    cases = [*dec.checks, *([dec.overall] if dec.overall else [])]
    failures = sum(k.status == "fail" for k in cases)
    errors = int(dec.error is not None)
    tests = max(len(cases), 1)
    attrs = {"name": "forgetbench-gate", "tests": str(tests), "failures": str(failures), "errors": str(errors)}
    root = ET.Element("testsuites", attrs)
    suite = ET.SubElement(root, "testsuite", attrs | {"skipped": "0", "time": "0"})
    props = ET.SubElement(suite, "properties")
    for key, value in (("base", dec.base), ("candidate", dec.candidate), ("alpha", f"{dec.config.alpha:g}")):
        ET.SubElement(props, "property", {"name": key, "value": _xml(value)})
    if dec.left_out:
        ET.SubElement(props, "property", {"name": "left_out_of_overall_drop", "value": _xml("; ".join(dec.left_out))})
    classname = _xml(f"forgetbench.gate.{dec.candidate}")
    if dec.error:
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": "gate", "time": "0"})
        ET.SubElement(case, "error", {"type": "undecided", "message": _xml(dec.error)}).text = _xml(dec.error)
    for k in cases:
        name = _xml("overall drop" if k.suite == "overall" else k.suite)
        case = ET.SubElement(suite, "testcase", {"classname": classname, "name": name, "time": "0"})
        if k.status == "fail":
            ET.SubElement(case, "failure", {"type": "regression", "message": _xml(k.reason)}).text = _xml(k.reason)
        sig = f"q={k.q_value:.3g}" if k.q_value is not None else f"p={k.p_value:.3g}"
        text = f"{k.status}: {k.reason}; drop {_pp(k.drop, k.drop_ci)} pp, {sig}, n={k.n}"
        if not k.informative:
            text += f"; uninformative, left out of the overall drop: {k.why}"
        ET.SubElement(case, "system-out").text = _xml(text)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _gate_files(dec: GateDecision) -> Callable[[Path], None]:
    def write(stage: Path) -> None:
        (stage / "gate.md").write_text(markdown(dec), encoding="utf-8")
        (stage / "junit.xml").write_text(junit_xml(dec), encoding="utf-8")
        (stage / "gate.json").write_text(json.dumps(dec.to_dict(), indent=1, sort_keys=True, default=str))

    return write


def _step_summary(dec: GateDecision) -> None:
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with open(summary, "a", encoding="utf-8") as fh:
            fh.write(markdown(dec) + "\n")


def write_outputs(dec: GateDecision, out: Path, run: Run | None = None) -> None:
    """gate.md, junit.xml, gate.json (+ the comparison's files when there is one) as one unit; then append
    the markdown to $GITHUB_STEP_SUMMARY when CI provides one. Without a run (could not decide) the
    previous results go with the swap: no stale report is read as this run's."""
    from harness.pipeline import write_run

    write_run(run, out, extra=_gate_files(dec))
    _step_summary(dec)


# -- running it ---------------------------------------------------------------------------------------------


def run_gate(
    base: str,
    candidate: str,
    cfg: GateConfig,
    eval_cfg: EvalConfig,
    registry_path: Path,
    out: Path,
    n_boot: int = 1000,
    cached_only: bool = False,
    console: Console | None = None,
) -> GateDecision:
    """Check inputs, run the shared comparison pipeline, decide, write every output as one unit.

    Raises (exit 2 in gate_cmd) on anything missing, and before any model work on bad flags, an unusable
    --out/--runs-dir, or a candidate whose weights are the base's (same file or an identical copy).
    """
    from harness import pipeline
    from harness.checkpoints.weights import fingerprint
    from harness.suites import get_suite

    console = console or err_console
    if base == candidate:
        raise GateConfigError(f"--base and --candidate are the same checkpoint ({base})")

    def check(reg: object, ckpts: list, suites: list) -> None:
        for name in cfg.per_suite:
            get_suite(name)  # a misspelt override is an error, not a silently ungated suite
        fb, fc = fingerprint(ckpts[0]), fingerprint(ckpts[1])
        if fb == fc:  # gating a model against itself always passes: a wrong path in CI must not look green
            raise GateConfigError(
                f"--base {base} and --candidate {candidate} have the same weights (fingerprint {fb}): nothing to gate"
            )

    decision: list[GateDecision] = []

    def finish(run: Run) -> Callable[[Path], None]:
        dominated, notes = pipeline.pareto_peers(run, eval_cfg, n_boot, console)
        decision.append(decide(run.comparison, cfg, dominated, notes))
        return _gate_files(decision[0])

    suites_arg = ",".join(cfg.suites) if cfg.suites is not None else None
    pipeline.run(registry_path, [base, candidate], suites_arg, eval_cfg, out, n_boot, n_perm_for(cfg.alpha),
                 cached_only, console, {"gate": asdict(cfg)}, check, finish)  # fmt: skip
    _step_summary(decision[0])
    return decision[0]


def run_gate_logs(
    base: str,
    candidate: str,
    cfg: GateConfig,
    registry_path: Path,
    out: Path,
    n_boot: int = 1000,
    trained_on: str | None = None,
) -> GateDecision:
    """The gate on lm-eval/Inspect sample logs (harness/logs): `base`/`candidate` are NAME=PATH, a path, or a
    registry id with `logs:`. The same decision and files; Pareto peers are not looked up (no store)."""
    from harness.logs.run import compare_logs

    if base == candidate:
        raise GateConfigError(f"--base and --candidate are the same logs ({base})")
    if cfg.limit is not None:
        raise GateConfigError("--limit does not apply to --from-logs: the logs fix the items")
    decision: list[GateDecision] = []

    def finish(run: Run) -> Callable[[Path], None]:
        fps = run.comparison.meta["fingerprints"]  # of the logs' model and model args
        if fps[run.checkpoints[0].id] == fps[run.checkpoints[1].id]:  # gating a model against itself always passes
            raise GateConfigError(f"--base {base} and --candidate {candidate} logged the same model: nothing to gate")
        unknown = sorted(set(cfg.per_suite) - set(run.comparison.suites))
        if unknown:  # a misspelt override is an error, not a silently ungated suite
            raise GateConfigError(f"per_suite: {', '.join(unknown)} not among the logs' suites")
        decision.append(decide(run.comparison, cfg, (), []))
        return _gate_files(decision[0])

    suites_arg = ",".join(cfg.suites) if cfg.suites is not None else None
    compare_logs([base, candidate], registry_path, out, trained_on, None, suites_arg, n_boot, n_perm_for(cfg.alpha),
                 finish, {"gate": asdict(cfg)})  # fmt: skip
    _step_summary(decision[0])
    return decision[0]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text.rsplit("/", 1)[-1])[:40] or "x"


def gate_cmd(
    base: Annotated[str, typer.Option("--base", help="base checkpoint: registry id or path")],
    candidate: Annotated[str, typer.Option("--candidate", help="checkpoint to gate: registry id or path")],
    max_drop: Annotated[float | None, typer.Option(help="max overall drop, points (default 2)")] = None,
    max_suite_drop: Annotated[float | None, typer.Option(help="max drop on any one suite, points (default 5)")] = None,
    alpha: Annotated[float | None, typer.Option(help="significance level for p / BH q (default 0.05)")] = None,
    suites: Annotated[str | None, typer.Option(help="comma-separated suites (default: config, else registry)")] = None,
    config: Annotated[Path | None, typer.Option(help=f"gate config YAML (default ./{CONFIG_FILE} if present)")] = None,
    limit: LimitOpt = None,
    suite_limit: SuiteLimitOpt = None,
    engine: EngineOpt = "hf",
    engine_opt: EngineOptsOpt = None,
    out: Annotated[Path | None, typer.Option(help="output dir (default reports/gate-<base>-<candidate>)")] = None,
    registry: RegistryOpt = Path("checkpoints.yaml"),
    runs_dir: RunsDirOpt = RUNS_DIR,
    batch_size: BatchSizeOpt = 32,
    max_new_tokens: MaxNewTokensOpt = None,
    dtype: DtypeOpt = None,
    n_boot: NBootOpt = 1000,
    cached_only: CachedOnlyOpt = False,
    from_logs: Annotated[
        bool, typer.Option("--from-logs", help="--base/--candidate are lm-eval/Inspect sample logs: NAME=PATH")
    ] = False,
    trained_on: Annotated[str | None, typer.Option(help="with --from-logs: the candidate's target suites")] = None,
) -> None:
    """CI gate: exit 0 pass, 1 significant forgetting beyond the threshold, 2 could not decide."""
    out = out or Path("reports") / f"gate-{_slug(base)}-{_slug(candidate)}"
    cfg = GateConfig()
    try:
        if config is None and Path(CONFIG_FILE).exists():
            config = Path(CONFIG_FILE)
        flags = {"max_drop": max_drop, "max_suite_drop": max_suite_drop, "alpha": alpha, "limit": limit}
        cfg = load_config(config, flags | {"suites": suites})
        ev = eval_config(engine, cfg.limit, runs_dir, batch_size, max_new_tokens, dtype, engine_opt, suite_limit)
        if from_logs:
            dec = run_gate_logs(base, candidate, cfg, registry, out, n_boot, trained_on)
        else:
            dec = run_gate(base, candidate, cfg, ev, registry, out, n_boot, cached_only)
    except Exception as e:  # fail closed: whatever went wrong, the answer is "could not decide", never a pass
        known = isinstance(e, (ForgetbenchError, FileNotFoundError, NotImplementedError, ValueError))
        msg = str(e).splitlines()[0] if known and str(e) else f"internal error: {type(e).__name__}: {e}"
        fail_line(msg)
        dec = GateDecision(base=base, candidate=candidate, exit_code=EXIT_UNDECIDED, error=msg, config=cfg)
        try:
            write_outputs(dec, out)
        except Exception as w:  # an unusable --out: the message above and exit 2 still reach CI
            err_console.print(f"[bold red]error:[/] cannot write {out}: {w}", highlight=False)
    typer.echo(markdown(dec))
    if dec.exit_code != EXIT_UNDECIDED:
        err_console.print(f"gate: {dec.status}  ({out / 'gate.md'}, {out / 'junit.xml'}, {out / 'report.html'})")
    raise typer.Exit(dec.exit_code)


def register(app: typer.Typer) -> None:
    """Add `gate` to a typer app (the main CLI wires it in)."""
    app.command("gate")(gate_cmd)
