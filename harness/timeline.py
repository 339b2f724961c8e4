"""The forgetting timeline of training runs (pure: numpy, no torch): gain and drop against step with paired 95%
CIs, per-suite curves, per-item turnover, an adjacent-checkpoint noise floor, the best checkpoint under a
drop budget (`--max-drop`), and for runs that are seeds of one recipe, the method's mean trajectory. Rendered
by harness/track_report.py; computed from SuiteResults the store gave.

Statistics are compare's: every checkpoint is paired with the base item by item and resampled with the same
per-suite bootstrap indices (harness.compare.boot_indices, harness.stats.paired_boot), so a point's CI here is
the CI `forgetbench compare BASE CKPT` reports for it.

    python -m pytest tests/test_track.py -q
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from harness import informative, stats
from harness.compare import _aligned, _headline, boot_indices, check_comparable
from harness.groups import two_level
from harness.types import SuiteResult


@dataclass(frozen=True)
class Point:
    """One evaluated checkpoint of a run, as the analysis needs it."""

    run: str
    step: int
    checkpoint: str  # the id results are keyed by
    path: str  # what a script can hand to the next command
    trained_on: tuple[str, ...]
    method: str = "other"


def _resolved_above(ci: Sequence[float] | None, pp: float) -> bool:
    return ci is not None and ci[0] > pp


def analyse(
    results: Mapping[str, Mapping[str, SuiteResult]],
    base: str,
    points: Sequence[Point],
    n_boot: int = 1000,
    seed: int = 0,
    last_k: int = 3,
    max_drop: float | None = None,
    max_items: int = 300,
    chance: Mapping[str, float] | None = None,
    ceiling: Mapping[str, float] | None = None,
    groups: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The whole timeline as plain JSON-able data (results.json holds it as is). `chance` / `ceiling` per suite
    decide, from the base alone, which suites are informative (harness/informative.py, as compare does): `drop`
    is over the informative non-target suites (over all of them when none is), `drop_all` over every one.
    `groups` (run -> replicate group, harness/groups.py) adds `methods`: each group's mean trajectory."""
    suites = list(results[base])
    flags = {
        s: informative.classify(s, results[base][s].scores, (chance or {}).get(s, 0.0), (ceiling or {}).get(s))
        for s in suites
    }
    idx = {s: boot_indices(s, len(results[base][s].scores), n_boot, seed) for s in suites}
    warnings: set[str] = set()
    rows = []
    aligned: dict[str, dict[str, np.ndarray]] = {}
    gain_boot: dict[str, np.ndarray] = {}  # per checkpoint: its gain's / drop's item resamples (for the methods)
    drop_boot: dict[str, np.ndarray] = {}
    for p in points:
        per_suite, boots, scores = {}, {}, {}
        for s in suites:
            warnings.update(check_comparable(results[base][s], results[p.checkpoint][s]))
            b, c = _aligned(results[base][s], results[p.checkpoint][s])
            boot = stats.paired_boot(b, c, idx[s])
            boots[s], scores[s] = boot, c
            lo, hi = stats.percentile_ci(boot)
            per_suite[s] = {
                "score": float(c.mean() * 100),
                "delta": float((c - b).mean() * 100),
                "ci": [lo, hi],
                "target": s in p.trained_on,
                "forgotten": int(np.sum((b >= 0.5) & (c < 0.5))),
                "learned": int(np.sum((b < 0.5) & (c >= 0.5))),
            }
        aligned[p.checkpoint] = scores
        targets = [s for s in suites if s in p.trained_on]
        others = [s for s in suites if s not in p.trained_on]  # every suite when the run has no targets
        head = _headline(others, flags)
        gain = gain_ci = None
        if targets:
            gain = float(np.mean([per_suite[s]["delta"] for s in targets]))
            gain_boot[p.checkpoint] = np.mean([boots[s] for s in targets], axis=0)
            gain_ci = list(stats.percentile_ci(gain_boot[p.checkpoint]))
        if head:
            drop_boot[p.checkpoint] = -np.mean([boots[s] for s in head], axis=0)
        drop, drop_ci = _drop(head, per_suite, boots)
        drop_all, drop_all_ci = _drop(others, per_suite, boots)
        rows.append(
            {
                "run": p.run,
                "step": p.step,
                "checkpoint": p.checkpoint,
                "path": p.path,
                "method": p.method,
                "trained_on": list(p.trained_on),
                "gain": gain,
                "gain_ci": gain_ci,
                "drop": drop,
                "drop_ci": drop_ci,
                "drop_suites": head,
                "drop_all": drop_all,
                "drop_all_ci": drop_all_ci,
                "suites": per_suite,
            }
        )
    base_scores = {s: _aligned(results[base][s], results[base][s])[0] for s in suites}
    runs = sorted({p.run for p in points}, key=[p.run for p in points].index)
    by_run = {r: [p for p in points if p.run == r] for r in runs}
    return {
        "base": base,
        "suites": suites,
        "base_scores": {s: float(base_scores[s].mean() * 100) for s in suites},
        "informative": {s: {"informative": f.informative, "reason": f.reason} for s, f in flags.items()},
        "left_out": informative.left_out(list(flags.values()), suites),
        "n_boot": n_boot,
        "seed": seed,
        "warnings": sorted(warnings),
        "points": rows,
        "turnover": {
            r: turnover(results[base], [(p.step, aligned[p.checkpoint]) for p in ps], max_items)
            for r, ps in by_run.items()
        },
        "noise_floor": {r: noise_floor([rw for rw in rows if rw["run"] == r], suites, last_k) for r in runs},
        "max_drop": None if max_drop is None else best_under(rows, max_drop),
        "methods": method_curves(rows, groups or {}, gain_boot, drop_boot, seed),
    }


def method_curves(
    rows: Sequence[Mapping[str, Any]],
    groups: Mapping[str, str],
    gain_boot: Mapping[str, np.ndarray],
    drop_boot: Mapping[str, np.ndarray],
    seed: int,
) -> list[dict[str, Any]]:
    """Per replicate group of >= 2 runs and per step every member reached: the mean gain and drop over its runs,
    with compare's two-level bootstrap CI (seeds with replacement, then the items every checkpoint shares), so
    a method's trajectory carries seed noise as well as item noise."""
    members: dict[str, list[str]] = {}
    for run, g in groups.items():
        members.setdefault(g, []).append(run)
    by = {(r["run"], r["step"]): r for r in rows}
    out: list[dict[str, Any]] = []
    for g, runs in members.items():
        if len(runs) < 2:
            continue
        steps = set.intersection(*({r["step"] for r in rows if r["run"] == run} for run in runs))
        for step in sorted(steps):
            pts = [by[(run, step)] for run in runs]
            row: dict[str, Any] = {"group": g, "runs": list(runs), "step": step}
            for what, boot in (("gain", gain_boot), ("drop", drop_boot)):
                ckpts = [p["checkpoint"] for p in pts]
                if all(c in boot for c in ckpts) and all(p[what] is not None for p in pts):
                    row[what] = float(np.mean([p[what] for p in pts]))
                    row[f"{what}_ci"] = list(stats.percentile_ci(two_level(ckpts, boot, seed, f"{g}/{step}/{what}")))
                else:
                    row[what], row[f"{what}_ci"] = None, None
            out.append(row)
    return out


def _drop(
    suites: Sequence[str], per_suite: Mapping[str, Mapping[str, Any]], boots: Mapping[str, np.ndarray]
) -> tuple[float | None, list[float] | None]:
    """Mean of (base - score) over `suites`, with its paired 95% CI; (None, None) for no suites."""
    if not suites:
        return None, None
    drop = float(np.mean([-per_suite[s]["delta"] for s in suites]))
    return drop, list(stats.percentile_ci(-np.mean([boots[s] for s in suites], axis=0)))


def turnover(
    base: Mapping[str, SuiteResult], steps: Sequence[tuple[int, Mapping[str, np.ndarray]]], max_items: int = 300
) -> dict[str, Any]:
    """Per-item history along one run (0/1 at 0.5): items right under the base first wrong at step s, and
    whether they were right again later (recovered at the first such step) or never; items the base got wrong
    first right at step s (learned), and whether they were still right at the run's last checkpoint."""
    if not steps:
        return {"by_step": [], "items": [], "truncated": 0}
    order = [s for s, _ in steps]
    by_step = {s: {"step": s, "forgotten": 0, "recovered_later": 0, "never_recovered": 0, "learned": 0} for s in order}
    items: list[dict[str, Any]] = []
    for suite, res in base.items():
        b = _aligned(res, res)[0] >= 0.5
        right = np.stack([np.asarray(scores[suite]) >= 0.5 for _, scores in steps])  # (steps, items)
        for k, item_id in enumerate(res.item_ids):
            hist = right[:, k]
            if b[k]:
                wrong = np.flatnonzero(~hist)
                if not wrong.size:
                    continue
                first = int(wrong[0])
                again = np.flatnonzero(hist[first + 1 :])
                rec = order[first + 1 + int(again[0])] if again.size else None
                by_step[order[first]]["forgotten"] += 1
                by_step[order[first]]["recovered_later" if rec is not None else "never_recovered"] += 1
                items.append(
                    {"suite": suite, "item": item_id, "kind": "forgotten", "step": order[first], "recovered": rec}
                )
            else:
                got = np.flatnonzero(hist)
                if not got.size:
                    continue
                first = int(got[0])
                by_step[order[first]]["learned"] += 1
                items.append(
                    {"suite": suite, "item": item_id, "kind": "learned", "step": order[first], "kept": bool(hist[-1])}
                )
    items.sort(key=lambda it: (it["step"], it["kind"], it["suite"], str(it["item"])))
    return {"by_step": list(by_step.values()), "items": items[:max_items], "truncated": max(0, len(items) - max_items)}


def noise_floor(rows: Sequence[Mapping[str, Any]], suites: Sequence[str], last_k: int) -> dict[str, Any]:
    """How much a suite's score moves between neighbouring checkpoints late in a run, where training has
    mostly settled: over the last k checkpoints, the range (max - min) and standard deviation of the score and
    the mean absolute change between adjacent checkpoints (points). Changes smaller than this are noise."""
    tail = list(rows)[-last_k:] if last_k > 0 else []
    out: dict[str, Any] = {"k": len(tail), "steps": [r["step"] for r in tail], "suites": {}}
    if len(tail) < 2:
        return out
    for s in suites:
        v = np.asarray([r["suites"][s]["score"] for r in tail])
        out["suites"][s] = {
            "range": float(v.max() - v.min()),
            "sd": float(v.std(ddof=1)),
            "adjacent": float(np.mean(np.abs(np.diff(v)))),
        }
    return out


def best_under(rows: Sequence[Mapping[str, Any]], pp: float) -> dict[str, Any] | None:
    """The checkpoint with the highest gain whose drop is not resolved above `pp` points (its CI's lower end is
    at most pp); ties go to the earlier step. Checkpoints without a gain (no target suites) rank by step, last
    first. None when every checkpoint's drop is resolved above pp."""
    ok = [r for r in rows if r["drop_ci"] is not None and not _resolved_above(r["drop_ci"], pp)]
    if not ok:
        return None
    if any(r["gain"] is not None for r in ok):
        best = max((r for r in ok if r["gain"] is not None), key=lambda r: (r["gain"], -r["step"]))
    else:
        best = max(ok, key=lambda r: r["step"])
    return {k: best[k] for k in ("run", "step", "checkpoint", "path", "gain", "gain_ci", "drop", "drop_ci")}


def max_drop_line(timeline: Mapping[str, Any], pp: float) -> str:
    """One line a script can read: `max-drop 2.0: PATH step 300 gain +12.5 drop +0.8 [-0.5, +2.1]`."""
    best = timeline.get("max_drop")
    if best is None:
        return f"max-drop {pp:g}: none (every checkpoint's drop is resolved above {pp:g})"
    gain = "n/a" if best["gain"] is None else _pts(best["gain"])
    lo, hi = best["drop_ci"]
    where = f"{best['path']} step {best['step']}"
    return f"max-drop {pp:g}: {where} gain {gain} drop {_pts(best['drop'])} [{_pts(lo)}, {_pts(hi)}]"


def _pts(x: float) -> str:
    return f"{round(x, 1) + 0.0:+.1f}"  # + 0.0: never print "-0.0"
