"""The comparison's decisions, made only where the data resolve them: Pareto dominance, replicate groups'
gain and drop, drop at matched gain (never extrapolated) and the paper's ordering (only the relations the
paper states, Holm-adjusted, and only between methods with replicates). Pure (numpy, no torch).

    python -m pytest tests/test_groups.py tests/test_stats.py -q
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from harness.groups import bootstrap_p, two_level
from harness.stats import percentile_ci
from harness.types import CheckpointSummary, GroupSummary, MatchedGain

ALPHA = 0.05
MAX_UNREADABLE = 0.05  # a matched-gain reading missing in more resamples than this decides nothing

# The drop orderings the paper states (reference/paper.md), each at comparable gain, with where it says so.
# Not stated, so not tested: SFT > Self-SFT (App. A.5's Llama-3.2-1B numbers have Self-SFT forgetting MORE:
# MMLU 34.6 vs 28.9, Countdown 25.3 vs 24.2); anything about Iterative-SFT against Self-SFT or GRPO; GRPO
# without KL (section 4.1 says only that its trade-off is similar to GRPO's).
PAPER_RELATIONS: tuple[tuple[str, str, str], ...] = (
    ("sft", "grpo", "paper.md section 0 (core claim) and 3.2 (Table 1: SFT drop above GRPO in all 6 cells)"),
    (
        "sft",
        "reinforce",
        "paper.md 3.2 (Table 1: SFT drop above REINFORCE in all 6 cells) and 3.4 (advantage "
        "ablation: REINFORCE 'keeps forgetting low')",
    ),  # fmt: skip
    (
        "self-sft",
        "grpo",
        "paper.md 3.3 (Figure 2 pattern: Self-SFT 'still substantial forgetting', GRPO drop 'near 0, often negative')",
    ),  # fmt: skip
    (
        "sft",
        "iter-sft",
        "paper.md 3.4 (Iterative-SFT, paper section 4.2, Fig. 7: SFT's target accuracy 'with only "
        "mild to no forgetting'; Qwen2.5 1.5B/7B, IFEval and MMLU)",
    ),  # fmt: skip
)
PAPER_CLAIM = "drop at matched gain: " + ", ".join(f"{a} > {b}" for a, b, _ in PAPER_RELATIONS)


# -- Pareto ---------------------------------------------------------------------------------------------


def _ci_excludes(boot: np.ndarray, above: bool) -> bool:
    lo, hi = percentile_ci(boot)
    return lo > 0 if above else hi < 0


def resolved_dominators(
    points: Mapping[str, tuple[float, float]], boot_gain: Mapping[str, np.ndarray], boot_drop: Mapping[str, np.ndarray]
) -> dict[str, list[str]]:
    """b dominates a when b is better on one axis with the paired 95% CI of b - a excluding 0 (more gain, or
    less drop), and not worse on the other by the point estimate. Points (gain, drop) with paired bootstrap
    resamples; a point without resamples (the base at (0, 0)) counts as exactly known."""
    out: dict[str, list[str]] = {k: [] for k in points}
    n = max((v.size for v in boot_gain.values()), default=1)
    zero = np.zeros(n)
    for a, (ga, da) in points.items():
        for b, (gb, db) in points.items():
            if a == b:
                continue
            dg = boot_gain.get(b, zero) - boot_gain.get(a, zero)
            dd = boot_drop.get(b, zero) - boot_drop.get(a, zero)
            if (_ci_excludes(dg, True) and db <= da) or (_ci_excludes(dd, False) and gb >= ga):
                out[a].append(b)
    return out


Interval = tuple[float, float]


def interval_dominators(points: Mapping[str, tuple[float, Interval, float, Interval]]) -> dict[str, list[str]]:
    """Dominance for rows that share no resamples (the leaderboard joins comparisons run apart): b dominates a
    when b is better on one axis with the two 95% intervals apart (b's gain interval above a's, or b's drop
    interval below a's), and not worse on the other by the point estimate. Conservative: intervals that
    overlap can still differ, so an undominated row is "not shown dominated", not "on the frontier for sure".
    Points are (gain, gain interval, drop, drop interval); the base is (0, (0, 0), 0, (0, 0))."""
    out: dict[str, list[str]] = {k: [] for k in points}
    for a, (ga, (_, ga_hi), da, (da_lo, _)) in points.items():
        for b, (gb, (gb_lo, _), db, (_, db_hi)) in points.items():
            if a != b and ((gb_lo > ga_hi and db <= da) or (db_hi < da_lo and gb >= ga)):
                out[a].append(b)
    return out


def pareto_by_target(
    items: Sequence[CheckpointSummary | GroupSummary],
    name: Any,
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    base: str,
) -> dict[str, list[str]]:
    """Resolved dominance among items trained on the same suites, the base at (0, 0) in each target."""
    by_target: dict[frozenset[str], dict[str, tuple[float, float]]] = {}
    for s in items:
        if s.gain is not None and s.drop is not None:
            by_target.setdefault(frozenset(s.trained_on), {})[name(s)] = (s.gain, s.drop)
    out: dict[str, list[str]] = {}
    for pts in by_target.values():
        dom = resolved_dominators(pts | {base: (0.0, 0.0)}, boot_gain, boot_drop)
        out |= {k: v for k, v in dom.items() if k != base}
    return out


# -- replicate groups -----------------------------------------------------------------------------------


def summarise_groups(
    summaries: Sequence[CheckpointSummary],
    groups: Mapping[str, Sequence[str]],
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    seed: int,
) -> tuple[list[GroupSummary], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Group gain and drop (mean over members) with two-level bootstrap CIs; and the groups' resamples."""
    by = {s.checkpoint: s for s in summaries}
    out, gg, gd = [], {}, {}
    for name, members in groups.items():
        ms = [by[m] for m in members]
        gain = drop = drop_all = gain_ci = drop_ci = None
        if all(m.gain is not None and m.checkpoint in boot_gain for m in ms):
            gain = float(np.mean([m.gain for m in ms]))
            gg[name] = two_level(members, boot_gain, seed, name + "/gain")
            gain_ci = percentile_ci(gg[name])
        if all(m.drop is not None and m.checkpoint in boot_drop for m in ms):
            drop = float(np.mean([m.drop for m in ms]))
            gd[name] = two_level(members, boot_drop, seed, name + "/drop")
            drop_ci = percentile_ci(gd[name])
            alls = [m.drop_all for m in ms if m.drop_all is not None]
            drop_all = float(np.mean(alls)) if len(alls) == len(ms) else None
        notes = []
        if len(ms) == 1:
            notes.append("one seed: its numbers are one checkpoint's, not the method's")
        elif len(ms) < 5:
            notes.append(f"{len(ms)} seeds: the seed-level bootstrap understates the spread of so few runs")
        out.append(GroupSummary(name, ms[0].method, ms[0].trained_on, tuple(members), gain, gain_ci, drop,
                                drop_ci, drop_all, notes=tuple(notes)))  # fmt: skip
    return out, gg, gd


# -- drop at matched gain -------------------------------------------------------------------------------


def read_curve(level: float, gains: np.ndarray, drops: np.ndarray) -> float:
    """Drop at `level` on the piecewise linear curve through the base (0, 0) and the points with gain > 0;
    NaN past the highest gain the curve reached (never extrapolated)."""
    keep = gains > 0
    g, d = gains[keep], drops[keep]
    if not g.size or level > g.max() + 1e-12:
        return float("nan")
    order = np.argsort(g, kind="stable")
    g = np.concatenate([[0.0], g[order]])
    d = np.concatenate([[0.0], d[order]])
    first = np.concatenate([[True], np.diff(g) > 1e-12])  # equal gains: the first point stands for them
    return float(np.interp(level, g[first], d[first]))


def matched_gain(
    groups: Sequence[GroupSummary],
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    n_levels: int = 3,
) -> tuple[list[MatchedGain], list[str], dict[tuple[tuple[str, ...], str, float], np.ndarray]]:
    """Per target with >= 2 methods: each method's drop at common gain levels, read on its curve through the
    base and its groups (several steps or learning rates give several points). Levels are G k / (n + 1),
    G = the smallest of the methods' highest gains, so every method's curve reaches them in the point
    estimate; a resample whose curve stops short is unreadable (counted, not extrapolated). Returns the
    rows, notes and the resampled readings per (target, method, level) for the ordering."""
    by_target: dict[tuple[str, ...], dict[str, list[GroupSummary]]] = {}
    for g in groups:
        if g.trained_on and g.gain is not None and g.drop is not None and g.group in boot_gain:
            by_target.setdefault(tuple(sorted(g.trained_on)), {}).setdefault(g.method, []).append(g)
    rows, notes, curves = [], [], {}
    for target, methods in by_target.items():
        if len(methods) < 2:
            continue
        top = min(max(g.gain for g in gs) for gs in methods.values())  # type: ignore[type-var]
        if top <= 0:
            notes.append(f"drop at matched gain ({', '.join(target)}): a method has no positive gain, no common level")
            continue
        levels = [round(top * (k + 1) / (n_levels + 1), 2) for k in range(n_levels)]
        for method, gs in sorted(methods.items()):
            gs = sorted(gs, key=lambda g: g.gain)  # type: ignore[arg-type,return-value]
            pg, pd = np.array([g.gain for g in gs]), np.array([g.drop for g in gs])
            bg = np.stack([boot_gain[g.group] for g in gs], axis=1)
            bd = np.stack([boot_drop[g.group] for g in gs], axis=1)
            for level in levels:
                boot = np.array([read_curve(level, bg[r], bd[r]) for r in range(bg.shape[0])])
                ok = np.isfinite(boot)
                curves[(target, method, level)] = boot
                ci = percentile_ci(boot[ok]) if ok.any() else (float("nan"), float("nan"))
                rows.append(MatchedGain(target, method, level, read_curve(level, pg, pd), ci,
                                        tuple(g.group for g in gs), float(1 - ok.mean()),
                                        min(g.seeds for g in gs)))  # fmt: skip
    return rows, notes, curves


# -- the paper's ordering -------------------------------------------------------------------------------


def holm(p: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error), in the input order."""
    m = len(p)
    order = sorted(range(m), key=lambda i: p[i])
    out, running = [0.0] * m, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out


def paper_ordering(
    rows: Sequence[MatchedGain],
    curves: Mapping[tuple[tuple[str, ...], str, float], np.ndarray],
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """Each relation the paper states (PAPER_RELATIONS), per target where both methods were trained, read at
    the highest matched gain level both curves reach in >= 95% of resamples. "confirms"/"refutes" only when
    every group on both curves has >= 2 seeds and the Holm-adjusted bootstrap p <= alpha; with one seed it
    is a comparison of checkpoints, not methods, and says only which way they lie."""
    by = {(tuple(m.trained_on), m.method, m.gain): m for m in rows}
    levels: dict[tuple[str, ...], list[float]] = {}
    for m in rows:
        levels.setdefault(tuple(m.trained_on), [])
        if m.gain not in levels[tuple(m.trained_on)]:
            levels[tuple(m.trained_on)].append(m.gain)
    rels: list[dict[str, Any]] = []
    for hi, lo, source in PAPER_RELATIONS:
        for target, lv in levels.items():
            if (target, hi, lv[0]) not in by or (target, lo, lv[0]) not in by:
                continue
            rel: dict[str, Any] = {"a": hi, "b": lo, "claim": ">", "source": source, "trained_on": list(target),
                                   "pairs": [], "notes": []}  # fmt: skip
            rels.append(rel)
            seeds = min(by[(target, hi, lv[0])].seeds, by[(target, lo, lv[0])].seeds)
            rel["seeds"] = seeds
            fine = [
                x for x in lv if max(by[(target, hi, x)].unreadable, by[(target, lo, x)].unreadable) <= MAX_UNREADABLE
            ]
            if not fine:
                worst = max(max(by[(target, hi, x)].unreadable, by[(target, lo, x)].unreadable) for x in lv)
                rel |= {"verdict": "cannot tell", "p": None, "level": None}
                rel["notes"].append(f"matched gain unreadable in {worst:.0%} of resamples at every level")
                continue
            level = max(fine)
            a, b = curves[(target, hi, level)], curves[(target, lo, level)]
            ok = np.isfinite(a) & np.isfinite(b)
            diff = a[ok] - b[ok]
            point = by[(target, hi, level)].drop - by[(target, lo, level)].drop
            ci = percentile_ci(diff)
            rel |= {"level": level, "diff": point, "ci": ci, "p": bootstrap_p(diff)}
            rel["pairs"].append(f"at gain {level:.1f} on {', '.join(target)}: drop({hi}) - drop({lo}) = {point:+.1f} "
                                f"[{ci[0]:+.1f}, {ci[1]:+.1f}]")  # fmt: skip
    tested = [r for r in rels if r.get("p") is not None and r["seeds"] >= 2]
    for r, q in zip(tested, holm([r["p"] for r in tested]), strict=True):
        r["p_holm"] = q
        r["verdict"] = ("confirms" if r["diff"] > 0 else "refutes") if q <= alpha else "cannot tell"
    for r in rels:
        if r.get("p") is not None and r["seeds"] < 2:
            way = "above" if r["diff"] > 0 else "below"
            r["verdict"] = "one seed: checkpoints only"
            r["notes"].append(f"one seed: {r['a']}'s checkpoints lie {way} {r['b']}'s; not evidence about methods")
    rels.sort(key=lambda r: ([x[:2] for x in PAPER_RELATIONS].index((r["a"], r["b"])), r["trained_on"]))
    if not rels:
        verdict = "not applicable"
        sentence = "The paper's ordering: fewer than two of its ordered methods were trained for the same suites."
    elif not tested:
        verdict = "checkpoints only"
        parts = "; ".join(f"{r['a']} > {r['b']}: {r['verdict']}" for r in rels)
        sentence = (
            "The paper's ordering: one seed per group, so this compares checkpoints, not methods, and says "
            f"nothing about it ({parts})."
        )
    else:
        got = [r["verdict"] for r in rels]
        verdict = "refutes" if "refutes" in got else "confirms" if set(got) == {"confirms"} else "cannot tell"
        parts = "; ".join(f"{r['a']} > {r['b']}: {r['verdict']}" for r in rels)
        sentence = (
            f"The paper's ordering ({PAPER_CLAIM}; Holm-adjusted, alpha {alpha:g}): this run {verdict} it ({parts})."
        )
    return {"claim": PAPER_CLAIM, "verdict": verdict, "sentence": sentence, "relations": rels}
