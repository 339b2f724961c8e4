"""Which suites can show forgetting at all: decided from the base's scores alone, before any candidate is seen.

A suite is UNINFORMATIVE when its base score is
  - not above chance: one-sided exact binomial test of "score > chance" at alpha 0.05 (0/1 scores); for
    partial-credit scores the analogue is a one-sided normal (CLT) test of the mean, z = (mean - chance) / se;
  - or at ceiling: the one-sided 95% upper bound of the base score (exact Clopper-Pearson for 0/1 scores,
    mean + z se otherwise) reaches the ceiling: a declared `ceiling` on the suite, else
    1 - (1 - chance) * CEILING_MARGIN, the top 5% of the range above chance.

A base at chance has nothing to forget. At ceiling the items are too easy for this base to say much (and no
gain can show); the per-suite deltas of such suites are still reported (and still gated per suite), but the
headline drop is the mean over the informative non-target suites, with the drop over all of them beside it.

    python -m pytest tests/test_informative.py -q
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist

import numpy as np

from harness.types import SuiteInformative

ALPHA = 0.05
# The 1 - (1 - chance) / 2 would call any generation suite above 50% "at ceiling" (an 8B model's
# MMLU): the margin is the top 5% of the range above chance instead.
CEILING_MARGIN = 0.05


def _log_pmf(k: np.ndarray, n: int, p: float) -> np.ndarray:
    return (
        math.lgamma(n + 1)
        - np.array([math.lgamma(x + 1) + math.lgamma(n - x + 1) for x in k])
        + k * math.log(p)
        + (n - k) * math.log1p(-p)
    )


def binom_sf(k: int, n: int, p: float) -> float:
    """P(X >= k) for X ~ Binomial(n, p), exact (summed in log space: n may be thousands)."""
    if k <= 0:
        return 1.0
    if k > n or p <= 0:
        return 0.0
    if p >= 1:
        return 1.0
    logs = _log_pmf(np.arange(k, n + 1), n, p)
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def binom_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k)."""
    return 1.0 - binom_sf(k + 1, n, p) if k < n else 1.0


def upper_bound(k: int, n: int, alpha: float = ALPHA) -> float:
    """One-sided (1 - alpha) Clopper-Pearson upper bound of a proportion k / n: the p with P(X <= k) = alpha."""
    if k >= n:
        return 1.0
    lo, hi = k / n, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if binom_cdf(k, n, mid) > alpha else (lo, mid)
    return hi


def classify(
    suite: str, scores: Sequence[float] | np.ndarray, chance: float = 0.0, ceiling: float | None = None,
    alpha: float = ALPHA,
) -> SuiteInformative:  # fmt: skip
    """Is this suite informative for this base? `scores` = the base's per-item scores in [0, 1]."""
    x = np.asarray(scores, float)
    n = int(x.size)
    chance = float(chance)
    top = float(ceiling) if ceiling is not None else 1 - (1 - chance) * CEILING_MARGIN
    mean = float(x.mean()) if n else 0.0
    binary = bool(np.isin(x, (0.0, 1.0)).all())
    if n == 0:
        p, upper, test = 1.0, 1.0, "no items"
    elif binary:
        k = int(x.sum())
        p = binom_sf(k, n, chance) if chance > 0 else (0.0 if k > 0 else 1.0)
        upper, test = upper_bound(k, n, alpha), "exact binomial"
    else:
        se = float(x.std(ddof=1)) / math.sqrt(n) if n > 1 else 0.0
        z = NormalDist().inv_cdf(1 - alpha)
        p = (0.0 if mean > chance else 1.0) if se == 0 else 1 - NormalDist().cdf((mean - chance) / se)
        upper, test = min(1.0, mean + z * se), "one-sided normal (partial-credit scores)"
    why = []
    if p > alpha:
        why.append(f"not above chance: base {mean * 100:.1f} vs chance {chance * 100:.1f} ({test}, p = {p:.2g})")
    if upper >= top:
        src = "declared" if ceiling is not None else f"1 - (1 - chance) x {CEILING_MARGIN:g}"
        why.append(
            f"at ceiling: base {mean * 100:.1f}, its one-sided {1 - alpha:.0%} upper bound {upper * 100:.1f} "
            f">= ceiling {top * 100:.1f} ({src})"
        )
    return SuiteInformative(
        suite=suite,
        informative=not why,
        reason="; ".join(why),
        base_score=mean * 100,
        n=n,
        chance=chance * 100,
        ceiling=top * 100,
        p_above_chance=p,
        upper=upper * 100,
    )


def label(reason: str) -> str:
    """ "at chance", "at ceiling" (or both) from a reason: the short flag tables print."""
    parts = [("at chance", "not above chance"), ("at ceiling", "at ceiling")]
    return ", ".join(short for short, key in parts if key in reason) or "uninformative"


def left_out(flags: Sequence[SuiteInformative], suites: Sequence[str]) -> dict[str, str]:
    """suite -> why it is left out of the headline drop, for those of `suites` that are uninformative."""
    by = {f.suite: f for f in flags}
    return {s: by[s].reason for s in suites if s in by and not by[s].informative}
