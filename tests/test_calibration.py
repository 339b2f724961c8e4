"""Calibration of the comparator's statistics on simulated paired data with known effects, and mutation cases
that prove each check has power: every named mutation (monkeypatched in) must turn at least one check red.

Checks: 95% CI coverage of per-suite deltas (1,200 datasets) and of method-vs-method drop differences
(1,000 datasets) within 93-97% at the default 1,000 resamples; two identical checkpoints differ by exactly
[0, 0]; null p-values uniform (KS) on the sign-flip and the McNemar path; BH's false discovery rate <= q.

    python -m pytest tests/test_calibration.py -q
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
from scipy import stats as sps

import harness.compare as cmp
import harness.stats as hst
from harness.types import SuiteResult

Check = Callable[[], tuple[bool, str]]


def _sr(ckpt: str, suite: str, scores: np.ndarray) -> SuiteResult:
    ids = tuple(f"i{k}" for k in range(scores.size))
    return SuiteResult(ckpt, f"fp-{ckpt}", suite, "1", "math", "d", "fake@1", ids, ids, tuple(scores.tolist()))


def _flip(rng: np.random.Generator, x: np.ndarray, p_down: float, p_up: float) -> np.ndarray:
    """Right answers go wrong with p_down, wrong ones right with p_up: a checkpoint paired with x."""
    u = rng.random(x.shape)
    return np.where(x == 1, (u >= p_down).astype(float), (u < p_up).astype(float))


def _within(cover: float, what: str) -> tuple[bool, str]:
    return 0.93 <= cover <= 0.97, f"{what}: 95% CI coverage {cover:.3f}, want 0.93-0.97"


def _ci_rows(boot: np.ndarray) -> np.ndarray:
    """Percentile CIs of each row (dataset) of bootstrap means: (k, 2)."""
    return np.percentile(boot, [2.5, 97.5], axis=1).T


def check_delta_coverage(n_datasets: int = 1200, n: int = 200) -> tuple[bool, str]:
    """Per-suite delta CI: base 70%, 15% of right answers forgotten, 10% of wrong ones learned (known delta).

    Datasets share one index matrix (as every checkpoint of a suite does): each CI is still a valid bootstrap
    of its own dataset, and one matrix keeps 1,200 datasets fast. test_compare_uses_these_primitives ties the
    primitives to compare()'s output.
    """
    rng = np.random.default_rng(1)
    p0, down, up = 0.7, 0.15, 0.10
    truth = 100 * (-p0 * down + (1 - p0) * up)
    b = (rng.random((n_datasets, n)) < p0).astype(float)
    c = _flip(rng, b, down, up)
    ci = _ci_rows(hst.paired_boot(b, c, cmp.boot_indices("S", n, 1000, 0)))
    return _within(float(np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1]))), "per-suite delta")


def _pair_dataset(rng: np.random.Generator, n: int, k: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    b = (rng.random((k, n)) < 0.7).astype(float)
    a = _flip(rng, b, 0.10, 0.05)
    c = _flip(rng, a, 0.15, 0.10)  # c starts from a's answers: a and c are strongly correlated
    return b, a, c


def check_pair_coverage(n_datasets: int = 1000, n: int = 200) -> tuple[bool, str]:
    """drop(a) - drop(c) CI from the resamples compare draws for each checkpoint (one boot_indices call per
    checkpoint and suite, as in compare); truth = 100 (-P(a right) 0.15 + P(a wrong) 0.10), P(a right) = 0.645."""
    rng = np.random.default_rng(2)
    truth = 100 * (-0.645 * 0.15 + 0.355 * 0.10)
    b, a, c = _pair_dataset(rng, n, n_datasets)
    idx_a, idx_c = cmp.boot_indices("S", n, 1000, 0), cmp.boot_indices("S", n, 1000, 0)
    ci = _ci_rows(hst.paired_boot(b, c, idx_c) - hst.paired_boot(b, a, idx_a))
    hits = float(np.mean((ci[:, 0] <= truth) & (truth <= ci[:, 1])))
    return _within(hits, "drop(a) - drop(c)")


def _results(b: np.ndarray, **ckpts: np.ndarray) -> dict[str, dict[str, SuiteResult]]:
    return {k: {"S": _sr(k, "S", v)} for k, v in ({"base": b} | ckpts).items()}


def check_identical_pair() -> tuple[bool, str]:
    """Two checkpoints with the same scores differ by exactly 0 on every shared resample."""
    b, a, _ = _pair_dataset(np.random.default_rng(3), 80)
    d = _results(b[0], a=a[0], twin=a[0].copy())
    p = cmp.compare(d, "base", [("a", "sft", ("T",)), ("twin", "grpo", ("T",))], n_boot=200).pairs[0]
    return p.drop_ci == (0.0, 0.0), f"identical checkpoints: drop difference CI {p.drop_ci}, want (0, 0)"


def _ks(p: list[float], what: str) -> tuple[bool, str]:
    res = sps.kstest(p, "uniform")
    return bool(res.pvalue > 0.01), f"{what}: KS vs uniform D={res.statistic:.3f} p={res.pvalue:.2g}"


def check_signflip_null(n_datasets: int = 1000, n: int = 20) -> tuple[bool, str]:
    """Graded scores, checkpoint exchangeable with the base (no effect): sign-flip p-values ~ U(0, 1)."""
    rng = np.random.default_rng(4)
    z = rng.random((n_datasets, n))
    b = np.clip(z + rng.normal(0, 0.2, z.shape), 0.01, 0.99)
    c = np.clip(z + rng.normal(0, 0.2, z.shape), 0.01, 0.99)
    return _ks([cmp.paired_p_value(b[k], c[k], seed=k, n_perm=499) for k in range(n_datasets)], "sign-flip null")


def check_mcnemar_null(n_datasets: int = 1000, n: int = 2000) -> tuple[bool, str]:
    """0/1 scores, flips equally likely both ways: exact McNemar p-values ~ U(0, 1) (many discordant pairs,
    so the discreteness of the exact test stays below what KS resolves at 1,000 datasets)."""
    rng = np.random.default_rng(5)
    b = (rng.random((n_datasets, n)) < 0.5).astype(float)
    c = np.where(rng.random(b.shape) < 0.5, 1 - b, b)
    return _ks([cmp.paired_p_value(b[k], c[k]) for k in range(n_datasets)], "McNemar null")


def check_bh_fdr(n_sims: int = 2000, q: float = 0.05) -> tuple[bool, str]:
    """15 true nulls (uniform p) and 5 real effects per family; FDR = E[false / max(rejected, 1)] <= q."""
    rng = np.random.default_rng(6)
    fdp = []
    for _ in range(n_sims):
        p = np.concatenate([rng.random(15), rng.random(5) ** 8])  # the last 5 are small: real effects
        rejected = np.asarray(cmp.benjamini_hochberg(p.tolist())) <= q
        fdp.append(rejected[:15].sum() / max(rejected.sum(), 1))
    fdr, se = float(np.mean(fdp)), float(np.std(fdp) / np.sqrt(n_sims))
    return fdr <= q + 2 * se, f"BH FDR {fdr:.3f} (se {se:.3f}), want <= {q}"


CHECKS: dict[str, Check] = {
    "delta_coverage": check_delta_coverage,
    "pair_coverage": check_pair_coverage,
    "identical_pair": check_identical_pair,
    "signflip_null": check_signflip_null,
    "mcnemar_null": check_mcnemar_null,
    "bh_fdr": check_bh_fdr,
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_statistics_are_calibrated(name: str) -> None:
    ok, msg = CHECKS[name]()
    assert ok, msg


def test_compare_uses_these_primitives() -> None:
    """compare()'s per-suite CI and pair CI are exactly the checked primitives' (so their calibration is its)."""
    b, a, c = (x[0] for x in _pair_dataset(np.random.default_rng(7), 90))
    comp = cmp.compare(_results(b, a=a, c=c), "base", [("a", "sft", ("T",)), ("c", "grpo", ("T",))], n_boot=500)
    idx = cmp.boot_indices("S", b.size, 500, 0)
    assert comp.summaries[0].deltas[0].ci_low == hst.percentile_ci(hst.paired_boot(b, a, idx))[0]
    assert comp.summaries[1].deltas[0].ci_high == hst.percentile_ci(hst.paired_boot(b, c, idx))[1]
    diff = hst.percentile_ci(hst.paired_boot(b, c, idx) - hst.paired_boot(b, a, idx))
    assert comp.pairs[0].drop_ci == pytest.approx(diff, abs=1e-9)


# -- mutations: each must turn its catching checks red ---------------------------------------------------


def _degenerate(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(cmp, "boot_indices", lambda suite, n, n_boot, seed: np.tile(np.arange(n), (n_boot, 1)))


def _one_sided(mp: pytest.MonkeyPatch) -> None:
    real = cmp.paired_p_value

    def halved(b: np.ndarray, c: np.ndarray, seed: int = 0, n_perm: int = 4000) -> float:
        binary = np.isin(b, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all()
        p = real(b, c, seed, n_perm)
        return p if binary else p / 2  # the sign-flip path only

    mp.setattr(cmp, "paired_p_value", halved)


def _broken_pairing(mp: pytest.MonkeyPatch) -> None:
    real, calls = cmp.boot_indices, [0]

    def fresh(suite: str, n: int, n_boot: int, seed: int) -> np.ndarray:
        calls[0] += 1  # every call (= every checkpoint) gets its own indices
        return real(suite, n, n_boot, seed + calls[0])

    mp.setattr(cmp, "boot_indices", fresh)


def _unpaired(mp: pytest.MonkeyPatch) -> None:
    def independent(b: np.ndarray, c: np.ndarray, idx: np.ndarray) -> np.ndarray:
        n = idx.shape[1]
        other = np.random.default_rng(idx.shape).integers(0, n, idx.shape)  # the base's own resamples
        w_c, w_b = hst.resample_weights(idx, n), hst.resample_weights(other, n)
        return (c @ w_c.T - b @ w_b.T) * (100 / n)

    mp.setattr(hst, "paired_boot", independent)


def _no_bh(mp: pytest.MonkeyPatch) -> None:
    mp.setattr(cmp, "benjamini_hochberg", lambda p: list(p))


MUTATIONS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], tuple[str, ...]]] = {
    "degenerate bootstrap": (_degenerate, ("delta_coverage",)),
    "one-sided p-value": (_one_sided, ("signflip_null",)),
    "broken pairing across checkpoints": (_broken_pairing, ("identical_pair", "pair_coverage")),
    "unpaired resampling": (_unpaired, ("delta_coverage",)),
    "no BH adjustment": (_no_bh, ("bh_fdr",)),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_is_caught(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    mutate, catchers = MUTATIONS[name]
    mutate(monkeypatch)
    for check in catchers:
        ok, msg = CHECKS[check]()
        assert not ok, f"mutation {name!r} went unnoticed by {check}: {msg}"
