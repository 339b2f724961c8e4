"""Statistics read beside the per-suite deltas: method against method, the paper's ordering, power (minimum
detectable drop), drop at matched gain, the noise floor, rank correlation. Pure (numpy/scipy, no torch).

Everything is paired: compare.py draws one bootstrap index matrix per suite and every checkpoint is resampled
with it, so the difference of two checkpoints' bootstrap drops is itself a paired bootstrap of their difference.

    python -m pytest tests/test_stats.py tests/test_calibration.py -q
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist
from typing import Any

import numpy as np

from harness.types import CheckpointSummary, MatchedGain, NoiseFloor, PairDiff, SuitePower, SuiteResult

POWER = 0.8
ALPHA = 0.05
# The paper's ordering of drop at comparable gain (reference/paper.md): SFT > Self-SFT >= Iterative-SFT >= GRPO.
# RL variants (REINFORCE, GRPO without KL) are the paper's ablations of GRPO and share its rank.
PAPER_RANK = {"sft": 0, "self-sft": 1, "iter-sft": 2, "grpo": 3, "reinforce": 3, "grpo-nokl": 3}
PAPER_CLAIM = "drop: SFT > Self-SFT >= Iterative-SFT >= GRPO at comparable gain"


def resample_weights(idx: np.ndarray, n: int) -> np.ndarray:
    """(n_boot, n) counts: how often each item is drawn in each resample (rows of idx)."""
    rows = np.arange(idx.shape[0])[:, None] * n
    return np.bincount((idx + rows).ravel(), minlength=idx.shape[0] * n).reshape(idx.shape[0], n).astype(float)


def paired_boot(b: np.ndarray, c: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """Bootstrap means of c - b in points, one per row of idx: base and checkpoint are resampled together.

    Equal to (c - b)[idx].mean(axis=1) up to rounding, as a matrix product with the resample counts, so that
    b and c may also be stacks of datasets (k, n) sharing the index matrix (the calibration tests do that).
    """
    n = idx.shape[1]
    return (c - b) @ resample_weights(idx, n).T * (100 / n)


def percentile_ci(boot: np.ndarray) -> tuple[float, float]:
    return float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))


def suite_mean_p_value(diffs: Sequence[np.ndarray], seed: int = 0, n_perm: int = 4000) -> float:
    """Two-sided sign-flip test that the mean over suites of mean(d_s) is 0 (each suite weighs 1/S)."""
    if not diffs:
        return 1.0
    x = np.concatenate([d / (len(diffs) * d.size) for d in diffs])
    x = x[x != 0]  # unchanged items contribute nothing under any sign
    if x.size == 0:
        return 1.0
    obs = abs(x.sum()) - 1e-12
    rng = np.random.default_rng(seed)
    hits = 0
    for k in range(0, n_perm, 500):  # chunks bound memory for large suites
        signs = rng.choice((-1.0, 1.0), size=(min(500, n_perm - k), x.size))
        hits += int(np.sum(np.abs(signs @ x) >= obs))
    return (hits + 1) / (n_perm + 1)


# -- method against method ----------------------------------------------------------------------------------


def _resolved(ci: tuple[float, float] | None) -> bool:
    return ci is not None and (ci[0] > 0 or ci[1] < 0)


def _sentence(a: str, b: str, what: str, diff: float, ci: tuple[float, float]) -> str:
    word = {"drops": ("more", "less"), "gains": ("more", "less")}[what]
    return (
        f"{a} {what} {abs(diff):.1f} points {word[0] if diff >= 0 else word[1]} than {b} "
        f"[{ci[0]:+.1f}, {ci[1]:+.1f}]: {'resolved' if _resolved(ci) else 'cannot tell'}"
    )


def pair_diffs(
    summaries: Sequence[CheckpointSummary],
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    item_scores: Mapping[tuple[str, str], np.ndarray],
    seed: int = 0,
) -> list[PairDiff]:
    """Every pair of candidates with the same trained_on: drop(a) - drop(b) and gain(a) - gain(b), 95% CIs
    from the shared resamples, a paired p-value; item_scores[(ckpt, suite)] are aligned to the base's items."""
    out = []
    for i, sa in enumerate(summaries):
        for sb in summaries[i + 1 :]:
            if not sa.trained_on or set(sa.trained_on) != set(sb.trained_on):
                continue
            parts, row = [], {}
            for what, boot, val_a, val_b, targets in (
                ("drops", boot_drop, sa.drop, sb.drop, False),
                ("gains", boot_gain, sa.gain, sb.gain, True),
            ):
                key = "drop" if what == "drops" else "gain"
                if val_a is None or val_b is None or sa.checkpoint not in boot or sb.checkpoint not in boot:
                    row |= {f"{key}_diff": None, f"{key}_ci": None, f"{key}_p": None}
                    continue
                diff = val_a - val_b
                ci = percentile_ci(boot[sa.checkpoint] - boot[sb.checkpoint])
                suites = [d.suite for d in sa.deltas if d.is_target == targets]
                # per item: drop(a) - drop(b) = c_b - c_a; gain(a) - gain(b) = c_a - c_b (the sign does not
                # matter to a two-sided test)
                d_items = [item_scores[(sa.checkpoint, s)] - item_scores[(sb.checkpoint, s)] for s in suites]
                row |= {f"{key}_diff": diff, f"{key}_ci": ci, f"{key}_p": suite_mean_p_value(d_items, seed)}
                parts.append(_sentence(sa.checkpoint, sb.checkpoint, what, diff, ci))
            out.append(
                PairDiff(
                    a=sa.checkpoint,
                    b=sb.checkpoint,
                    method_a=sa.method,
                    method_b=sb.method,
                    verdict="; ".join(parts) or "no gain or drop to compare",
                    **row,
                )
            )
    return out


def paper_ordering(pairs: Sequence[PairDiff]) -> dict[str, Any]:
    """Does this run confirm the paper's drop ordering, refute it, or cannot it tell? From the pairwise CIs.

    A relation "a > b" (SFT above the others) is confirmed when drop(a) - drop(b) has a CI above 0; a relation
    "a >= b" is confirmed the same way (an equality cannot be confirmed) and refuted by a CI below 0. Several
    checkpoint pairs per method pair: all resolved one way decides; resolved both ways is "mixed".
    """
    relations: dict[tuple[str, str], dict[str, Any]] = {}
    for p in pairs:
        ra, rb = PAPER_RANK.get(p.method_a), PAPER_RANK.get(p.method_b)
        if ra is None or rb is None or ra == rb or p.drop_ci is None or p.drop_diff is None:
            continue
        hi, lo = (p.a, p.b) if ra < rb else (p.b, p.a)  # hi = the method the paper says forgets more
        sign = 1.0 if ra < rb else -1.0
        ci = p.drop_ci if sign > 0 else (-p.drop_ci[1], -p.drop_ci[0])
        m_hi, m_lo = (p.method_a, p.method_b) if ra < rb else (p.method_b, p.method_a)
        rel = relations.setdefault(
            (m_hi, m_lo),
            {"a": m_hi, "b": m_lo, "claim": ">" if min(ra, rb) == 0 else ">=", "for": 0, "against": 0, "pairs": []},
        )
        if ci[0] > 0:
            rel["for"] += 1
        elif ci[1] < 0:
            rel["against"] += 1
        rel["pairs"].append(f"drop({hi}) - drop({lo}) = {sign * p.drop_diff:+.1f} [{ci[0]:+.1f}, {ci[1]:+.1f}]")
        if _resolved(p.gain_ci):
            rel.setdefault("notes", []).append(
                f"{p.a} and {p.b} differ in gain ({p.gain_diff:+.1f} [{p.gain_ci[0]:+.1f}, {p.gain_ci[1]:+.1f}]): "
                "not at comparable gain, see drop at matched gain"
            )
    rels = []
    for rel in relations.values():
        if rel["for"] and rel["against"]:
            rel["verdict"] = "mixed"
        elif rel["for"]:
            rel["verdict"] = "confirms"
        elif rel["against"]:
            rel["verdict"] = "refutes"
        else:
            rel["verdict"] = "cannot tell"
        rels.append(rel)
    rels.sort(key=lambda r: (PAPER_RANK[r["a"]], PAPER_RANK[r["b"]], r["a"], r["b"]))
    if not rels:
        verdict = "not applicable"
        sentence = "fewer than two of the paper's methods were trained for the same suites: no ordering to check"
    else:
        got = {r["verdict"] for r in rels}
        verdict = "refutes" if "refutes" in got else "confirms" if got == {"confirms"} else "cannot tell"
        parts = [f"{r['a']} {r['claim']} {r['b']}: {r['verdict']}" for r in rels]
        sentence = f"The paper's ordering ({PAPER_CLAIM}): this run {verdict} it ({'; '.join(parts)})."
    return {"claim": PAPER_CLAIM, "verdict": verdict, "sentence": sentence, "relations": rels}


# -- power --------------------------------------------------------------------------------------------------


def _z(alpha: float, power: float) -> tuple[float, float]:
    std = NormalDist()  # the stdlib's normal quantiles: scipy.stats costs half a second to import
    return std.inv_cdf(1 - alpha / 2), std.inv_cdf(power)


def mcnemar_mdd(n: int, psi: float, cap: float, alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Smallest drop delta (fraction) that a two-sided McNemar test at alpha detects with the given power,
    for n pairs with discordance rate psi (Connor 1987: n = (z_a sqrt(psi) + z_b sqrt(psi - delta^2))^2 /
    delta^2). A drop of delta needs at least delta discordant pairs, so psi is raised to delta where smaller.
    cap = the base score (no checkpoint drops below 0); None when not even cap is detectable."""
    za, zb = _z(alpha, power)

    def short(delta: float) -> float:  # > 0 once delta is detectable; increasing in delta
        p = max(psi, delta)
        return math.sqrt(n) * delta - za * math.sqrt(p) - zb * math.sqrt(max(p - delta * delta, 0.0))

    if n <= 0 or cap <= 0 or short(cap) < 0:
        return None
    lo, hi = 0.0, cap
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (lo, mid) if short(mid) >= 0 else (mid, hi)
    return hi


def mcnemar_n(delta: float, psi: float, alpha: float = ALPHA, power: float = POWER) -> int:
    """Pairs needed to detect a drop delta (fraction) at discordance psi (raised to delta where smaller)."""
    za, zb = _z(alpha, power)
    p = max(psi, delta)
    return math.ceil(((za * math.sqrt(p) + zb * math.sqrt(max(p - delta * delta, 0.0))) / delta) ** 2)


def suite_power(
    suite: str, base: np.ndarray, candidates: Sequence[np.ndarray], alpha: float = ALPHA, power: float = POWER
) -> SuitePower:
    """Minimum detectable drop of one suite, paired, two-sided, before any multiple-testing adjustment.

    0/1 scores: the discordant-pair (McNemar) model. The discordance rate psi (fraction of items whose outcome
    differs between base and checkpoint) is ESTIMATED as the mean over the candidates of their observed
    discordant fraction; with no candidate, or none discordant, it is ASSUMED to be 2 p0 (1 - p0) (errors
    independent of the base's, the largest discordance a model of the base's accuracy has; conservative).
    Other scores: a paired normal model, mdd = (z_a + z_b) sd(d) / sqrt(n), sd(d) estimated from the candidates'
    per-item differences, else assumed sqrt(2) sd(base) (independent errors).
    """
    n, p0 = int(base.size), float(base.mean()) if base.size else 0.0
    binary = np.isin(base, (0.0, 1.0)).all() and all(np.isin(c, (0.0, 1.0)).all() for c in candidates)
    if binary:
        rates = [float(np.mean(c != base)) for c in candidates]
        psi = float(np.mean(rates)) if rates else 0.0
        source = f"estimated from {len(rates)} checkpoint(s)"
        if psi <= 0:
            psi, source = 2 * p0 * (1 - p0), "assumed 2 p0 (1 - p0): independent errors"
        mdd = mcnemar_mdd(n, psi, p0, alpha, power)
        model, spread = "mcnemar", psi
    else:
        sds = [float(np.std(c - base, ddof=1)) for c in candidates if n > 1]
        sd = float(np.sqrt(np.mean(np.square(sds)))) if sds else 0.0
        source = f"estimated from {len(sds)} checkpoint(s)"
        if sd <= 0:
            sd, source = float(np.sqrt(2) * np.std(base, ddof=1)) if n > 1 else 0.0, "assumed sqrt(2) sd(base)"
        za, zb = _z(alpha, power)
        raw = (za + zb) * sd / math.sqrt(max(n, 1))
        mdd = raw if raw <= p0 else None
        model, spread = "paired-normal", sd
    return SuitePower(
        suite=suite,
        n=n,
        base_score=p0 * 100,
        alpha=alpha,
        power=power,
        mdd=None if mdd is None else mdd * 100,
        model=model,
        spread=spread,
        spread_source=source,
    )


def n_to_detect(p: SuitePower, drop_points: float, alpha: float | None = None) -> int | None:
    """Items that would make a drop of drop_points detectable (80% power) under the suite's own model."""
    if drop_points <= 0:
        return None
    a, d = alpha if alpha is not None else p.alpha, drop_points / 100
    if p.model == "mcnemar":
        return mcnemar_n(d, p.spread, a, p.power)
    za, zb = _z(a, p.power)
    return math.ceil(((za + zb) * p.spread / d) ** 2)


def with_alpha(p: SuitePower, alpha: float) -> SuitePower:
    """The same suite's power at another alpha (the gate's)."""
    if math.isclose(alpha, p.alpha):
        return p
    if p.model == "mcnemar":
        mdd = mcnemar_mdd(p.n, p.spread, p.base_score / 100, alpha, p.power)
    else:
        za, zb = _z(alpha, p.power)
        raw = (za + zb) * p.spread / math.sqrt(max(p.n, 1))
        mdd = raw if raw <= p.base_score / 100 else None
    return SuitePower(**{**p.__dict__, "alpha": alpha, "mdd": None if mdd is None else mdd * 100})


def overall_mdd(powers: Sequence[SuitePower], alpha: float = ALPHA, power: float = POWER) -> float | None:
    """Minimum detectable mean drop over suites (normal approximation at no change: var = sum_s v_s / n_s / S^2,
    v_s = psi_s for 0/1 suites, sd_s^2 otherwise), points."""
    if not powers:
        return None
    za, zb = _z(alpha, power)
    var = sum((p.spread if p.model == "mcnemar" else p.spread**2) / max(p.n, 1) for p in powers) / len(powers) ** 2
    return (za + zb) * math.sqrt(var) * 100


def underpowered(
    powers: Sequence[SuitePower],
    thresholds: Mapping[str, float],
    overall: tuple[Sequence[str], float] | None,
    alpha: float,
) -> list[str]:
    """One line per gated quantity whose enforced threshold is below what this n can detect (80% power)."""
    by = {p.suite: with_alpha(p, alpha) for p in powers}
    out = []
    for suite, thr in thresholds.items():
        p = by.get(suite)
        if p is None or (p.mdd is not None and thr >= p.mdd):
            continue
        need = n_to_detect(p, thr, alpha)
        shown = "no drop at all" if p.mdd is None else f"{p.mdd:.1f} pp"
        out.append(
            f"underpowered: {suite}: max drop {thr:g} pp is below the minimum detectable drop ({shown}) at n={p.n}, "
            f"alpha {alpha:g}, 80% power" + (f"; about n={need} items would suffice" if need else "")
        )
    if overall:
        suites, thr = overall
        group = [by[s] for s in suites if s in by]
        mdd = overall_mdd(group, alpha)
        if mdd is not None and thr < mdd:
            factor = (mdd / thr) ** 2 if thr > 0 else math.inf
            sizes = ", ".join(f"{p.suite} {math.ceil(p.n * factor)}" for p in group) if thr > 0 else "more"
            out.append(
                f"underpowered: overall: max drop {thr:g} pp is below the minimum detectable drop ({mdd:.1f} pp) "
                f"at these n, alpha {alpha:g}, 80% power; items per suite that would suffice: {sizes}"
            )
    return out


# -- drop at matched gain -----------------------------------------------------------------------------------


def _interp(level: float, gains: np.ndarray, drops: np.ndarray) -> float:
    """Piecewise linear drop(gain) through (0, 0) and the points, extended linearly past the last one."""
    order = np.argsort(gains, kind="stable")
    g = np.concatenate([[0.0], gains[order]])
    d = np.concatenate([[0.0], drops[order]])
    keep = np.concatenate([[True], np.diff(g) > 1e-12])  # equal gains: the first point stands for them
    g, d = g[keep], d[keep]
    if len(g) == 1:
        return float("nan")
    if level <= g[-1]:
        return float(np.interp(level, g, d))
    return float(d[-1] + (d[-1] - d[-2]) / (g[-1] - g[-2]) * (level - g[-1]))


def matched_gain(
    summaries: Sequence[CheckpointSummary],
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    n_levels: int = 3,
) -> tuple[list[MatchedGain], list[str]]:
    """Per target (same trained_on) with >= 2 methods: each method's drop at common gain levels.

    Each method's curve is piecewise linear in gain through the base (0, 0) and its checkpoints (several steps
    or learning rates give several points; one checkpoint gives a line through the base). Levels are spread
    over (0, G], G = the smallest of the methods' highest gains, so every method reaches them. The CI comes
    from interpolating each paired bootstrap resample the same way. Returns the rows and notes.
    """
    groups: dict[frozenset[str], dict[str, list[CheckpointSummary]]] = {}
    for s in summaries:
        if s.trained_on and s.gain is not None and s.drop is not None and s.checkpoint in boot_gain:
            groups.setdefault(frozenset(s.trained_on), {}).setdefault(s.method, []).append(s)
    rows, notes = [], []
    for target, methods in groups.items():
        if len(methods) < 2:
            continue
        top = min(max(s.gain for s in ms) for ms in methods.values())  # type: ignore[type-var]
        name = ", ".join(sorted(target))
        if top <= 0:
            notes.append(f"drop at matched gain ({name}): a method has no positive gain, no common level")
            continue
        levels = [round(top * (k + 1) / n_levels, 2) for k in range(n_levels)]
        for method, ms in sorted(methods.items()):
            ms = sorted(ms, key=lambda s: s.gain)  # type: ignore[arg-type,return-value]
            g = np.array([s.gain for s in ms])
            d = np.array([s.drop for s in ms])
            bg = np.stack([boot_gain[s.checkpoint] for s in ms], axis=1)  # (n_boot, k)
            bd = np.stack([boot_drop[s.checkpoint] for s in ms], axis=1)
            for level in levels:
                boot = np.array([_interp(level, bg[r], bd[r]) for r in range(bg.shape[0])])
                boot = boot[np.isfinite(boot)]
                ci = percentile_ci(boot) if boot.size else (float("nan"), float("nan"))
                rows.append(
                    MatchedGain(
                        trained_on=tuple(sorted(target)),
                        method=method,
                        gain=level,
                        drop=_interp(level, g, d),
                        drop_ci=ci,
                        checkpoints=tuple(s.checkpoint for s in ms),
                    )
                )
    return rows, notes


# -- noise floor, correlation -------------------------------------------------------------------------------


def noise_floor(first: SuiteResult, second: SuiteResult, idx: np.ndarray, change: str) -> tuple[NoiseFloor, np.ndarray]:
    """Second run - first run of the same checkpoint, paired on the suite's bootstrap indices; and the
    bootstrap means (points), for a band over several suites."""
    if first.data_version != second.data_version or list(first.prompt_hashes) != list(second.prompt_hashes):
        raise ValueError(f"suite {first.suite}: the noise-floor run measured different items or prompts")
    pos = {i: k for k, i in enumerate(second.item_ids)}
    a = np.asarray(first.scores, float)
    b = np.asarray(second.scores, float)[[pos[i] for i in first.item_ids]]
    boot = paired_boot(a, b, idx)
    lo, hi = percentile_ci(boot)
    return NoiseFloor(
        suite=first.suite,
        change=change,
        n=int(a.size),
        delta=float((b - a).mean() * 100),
        ci_low=lo,
        ci_high=hi,
        flips=int(np.sum((a >= 0.5) != (b >= 0.5))),
    ), boot


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Rank correlation; None with fewer than 3 points or a constant side."""
    if len(x) < 3 or len(set(x)) < 2 or len(set(y)) < 2:
        return None
    rx, ry = _ranks(np.asarray(x, dtype=float)), _ranks(np.asarray(y, dtype=float))
    return float(np.corrcoef(rx, ry)[0, 1])  # Pearson on the ranks (= scipy.stats.spearmanr)


def _ranks(v: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties given the mean of the ranks they span."""
    order = np.argsort(v, kind="stable")
    ranks = np.empty(v.size)
    ranks[order] = np.arange(1, v.size + 1)
    sv = np.sort(v)
    for value in np.unique(sv[:-1][np.diff(sv) == 0]):
        tied = v == value
        ranks[tied] = ranks[tied].mean()
    return ranks
