"""Statistics read beside the per-suite deltas: group against group, power (minimum detectable drop), the
decoding noise floor, rank correlation. Pure (numpy/scipy, no torch). Drop at matched gain, resolved Pareto
dominance and the paper's ordering: harness/decisions.py.

Everything is paired: compare.py draws one bootstrap index matrix per suite and every checkpoint is resampled
with it, so the difference of two checkpoints' bootstrap drops is itself a paired bootstrap of their difference.

    python -m pytest tests/test_stats.py tests/test_calibration.py -q
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from statistics import NormalDist

import numpy as np

from harness.groups import bootstrap_p
from harness.types import Delta, GroupSummary, NoiseFloor, PairDiff, SuitePower, SuiteResult

POWER = 0.8
ALPHA = 0.05


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
    groups: Sequence[GroupSummary],
    boot_gain: Mapping[str, np.ndarray],
    boot_drop: Mapping[str, np.ndarray],
    item_scores: Mapping[tuple[str, str], np.ndarray],
    seed: int = 0,
    deltas: Mapping[str, Sequence[Delta]] | None = None,
) -> list[PairDiff]:
    """Every pair of replicate groups (a checkpoint alone is a group of one seed) with the same trained_on:
    drop(a) - drop(b) and gain(a) - gain(b), 95% CIs from the shared (two-level) resamples. p: for two single
    checkpoints a paired sign-flip test on the items (item_scores[(ckpt, suite)], aligned to the base's items;
    deltas[ckpt] says which suites are targets and which count in the drop); with replicates the bootstrap p
    of the two-level resamples (seed spread included)."""
    out = []
    for i, ga in enumerate(groups):
        for gb in groups[i + 1 :]:
            if not ga.trained_on or set(ga.trained_on) != set(gb.trained_on):
                continue
            single = len(ga.members) == 1 and len(gb.members) == 1
            parts, row = [], {}
            for what, boot, val_a, val_b in (
                ("drops", boot_drop, ga.drop, gb.drop),
                ("gains", boot_gain, ga.gain, gb.gain),
            ):
                key = "drop" if what == "drops" else "gain"
                if val_a is None or val_b is None or ga.group not in boot or gb.group not in boot:
                    row |= {f"{key}_diff": None, f"{key}_ci": None, f"{key}_p": None}
                    continue
                diff = val_a - val_b
                d_boot = boot[ga.group] - boot[gb.group]
                ci = percentile_ci(d_boot)
                if single and deltas is not None:
                    ca, cb = ga.members[0], gb.members[0]
                    # the suites that make up this checkpoint's gain (targets) or drop (counted non-targets)
                    suites = [d.suite for d in deltas[ca] if (d.is_target if key == "gain" else d.in_drop)]
                    # per item: drop(a) - drop(b) = c_b - c_a; gain(a) - gain(b) = c_a - c_b (the sign does
                    # not matter to a two-sided test)
                    p = suite_mean_p_value([item_scores[(ca, s)] - item_scores[(cb, s)] for s in suites], seed)
                else:
                    p = bootstrap_p(d_boot)
                row |= {f"{key}_diff": diff, f"{key}_ci": ci, f"{key}_p": p}
                parts.append(_sentence(ga.group, gb.group, what, diff, ci))
            verdict = "; ".join(parts) or "no gain or drop to compare"
            if parts and single:
                verdict += " (one seed each: checkpoints, not methods)"
            out.append(
                PairDiff(
                    a=ga.group,
                    b=gb.group,
                    method_a=ga.method,
                    method_b=gb.method,
                    verdict=verdict,
                    seeds_a=len(ga.members),
                    seeds_b=len(gb.members),
                    **row,
                )
            )
    return out


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
