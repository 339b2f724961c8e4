"""The paper's mixture-of-Gaussians experiment: why forward KL (SFT) and reverse KL (RL) forget differently.

A 1-D "model" q is fitted to the target task T (the right mode of p) while we watch how much of the
old task T' (the left mode of p) it keeps. With a bi-modal q, reverse KL moves only the new mode and
forgets less; with a uni-modal q it is the other way round. Setup, update rules and the numbers this
reproduces: reference/paper.md section 5. numpy only (no torch), about 2 s on one CPU core.

Steps are 1-based (the number of updates taken): the paper's "iteration 82" is our step 83. Each
(run, seed) draws from its own np.random.default_rng(seed); the repo instead shares one global stream
across runs, which is why its single-seed target-distance sweep differs from our seed means.

Pure numerics: rendering (terminal table, HTML page) lives in harness.simulate.report, which imports
this module and never the other way round; the one command line is `forgetbench simulate`.

    forgetbench simulate --seeds 5 --out reports/simulate.html
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Method = Literal["forward_kl", "reverse_kl"]
SettingName = Literal["bimodal", "unimodal"]
_Rng = np.random.Generator | np.random.RandomState

NUM_SAMPLES = 1000
REINFORCE_BETA = 0.1
# The old-mode parameters (pi1, mu1, sigma1) move 200x slower than the new mode: the paper's stand-in
# for "prior knowledge is hard to move", without which both objectives would simply refit everything.
SLOW_FACTOR = 0.005
SNAPSHOT_EVERY = 10
EPS = 1e-12  # the reference code's guard against log(0) and 0/0; kept so the numbers match
TARGET_OLD = (0.75, -3.0, 1.0)  # (weight, mean, std) of p's left component: the old task T'
TARGET_NEW = (0.25, 3.5, 0.7)  # p's right component: the target task T
SWEEP_MEANS = (4.5, 5.5, 6.5)

# Drop at gain 0.9 as the paper reports it (reference/paper.md 5.3); shown next to ours in the table.
PAPER_DROP: dict[tuple[str, str, float, float], float] = {
    ("bimodal", "forward_kl", 0.15, 3.5): 0.12,
    ("bimodal", "reverse_kl", 0.01, 3.5): 0.03,
    ("unimodal", "forward_kl", 0.05, 3.5): 0.64,
    ("unimodal", "reverse_kl", 0.005, 3.5): 0.70,
}


@dataclass(frozen=True)
class Setting:
    """One experimental setting: grid, initial q and number of updates."""

    name: SettingName
    x_min: float
    x_max: float
    num_iters: int
    init: tuple[float, ...]  # bimodal: (pi1, mu1, sigma1, mu2, sigma2); unimodal: (mu, sigma)
    n_x: int = 500


BIMODAL = Setting("bimodal", -8.0, 8.0, 200, (0.75, -3.5, 1.0, 0.5, 0.7))
UNIMODAL = Setting("unimodal", -10.0, 10.0, 1000, (-3.5, 1.0))


@dataclass(frozen=True)
class RunSpec:
    """What to run: a setting, an objective, its learning rate and where the target mode sits."""

    setting: Setting
    method: Method
    lr: float
    target_mean: float = TARGET_NEW[1]
    group: str = "main"  # "main" (paper figure 3 / 4 panels) or "sweep" (target-distance appendix)


@dataclass(frozen=True, eq=False)
class RunResult:
    """One seed of one run. Step t (1-based) is the state after t updates; index t-1 in the arrays."""

    spec: RunSpec
    seed: int
    gain_threshold: float
    initial_old: float  # Acc_0(T')
    initial_new: float  # Acc_0(T)
    gain: np.ndarray  # per step: Acc_t(T) - Acc_0(T)
    drop: np.ndarray  # per step: Acc_0(T') - Acc_t(T'); positive = forgetting (the repo stores -drop)
    step_at_threshold: int | None  # first step with gain >= threshold, None if never reached
    drop_at_threshold: float | None
    final_gain: float
    final_drop: float
    params: np.ndarray  # (num_iters + 1, n_params): parameters after each step, row 0 = initial
    snapshot_steps: tuple[int, ...]  # every SNAPSHOT_EVERY steps up to the threshold step (or the end)
    snapshots: np.ndarray  # (len(snapshot_steps), n_x): q(x) on the grid at those steps


@dataclass(frozen=True)
class SummaryRow:
    """Seed-averaged result of one RunSpec. drop_at_threshold_* are over the seeds that reached it."""

    group: str
    setting: str
    method: str
    lr: float
    target_mean: float
    gain_threshold: float
    n_seeds: int
    n_reached: int
    step_at_threshold_mean: float | None
    drop_at_threshold_mean: float | None
    drop_at_threshold_std: float | None
    final_gain_mean: float
    final_gain_std: float
    final_drop_mean: float
    final_drop_std: float
    paper_drop_at_threshold: float | None = None
    per_seed: tuple[dict[str, float | int | None], ...] = field(default=(), repr=False)


def normal_pdf(x: np.ndarray, mu: float, sigma: float) -> np.ndarray:
    """N(x; mu, sigma) with sigma the standard deviation (scipy.stats.norm.pdf, without its overhead)."""
    z = (x - mu) / sigma
    return np.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))


class _Metrics:
    """Overlap accuracies on the fixed grid: Acc(T') = int min(p1, q1) / int p1, likewise for T."""

    def __init__(self, setting: Setting, target_mean: float) -> None:
        self.xs = np.linspace(setting.x_min, setting.x_max, setting.n_x)
        w1, m1, s1 = TARGET_OLD
        w2, _, s2 = TARGET_NEW
        # p1, p2 are the *weighted* components, so a perfect q scores exactly 1 on each.
        self.p1 = w1 * normal_pdf(self.xs, m1, s1)
        self.p2 = w2 * normal_pdf(self.xs, target_mean, s2)
        self.area1 = np.trapezoid(self.p1, self.xs)
        self.area2 = np.trapezoid(self.p2, self.xs)

    def components(self, setting: Setting, theta: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
        if setting.name == "unimodal":
            q = normal_pdf(self.xs, theta[0], theta[1])
            return q, q  # a single Gaussian is scored against both modes
        pi1, mu1, s1, mu2, s2 = theta
        return pi1 * normal_pdf(self.xs, mu1, s1), (1.0 - pi1) * normal_pdf(self.xs, mu2, s2)

    def accuracies(self, setting: Setting, theta: Sequence[float]) -> tuple[float, float]:
        q1, q2 = self.components(setting, theta)
        acc_old = np.trapezoid(np.minimum(self.p1, q1), self.xs) / self.area1
        acc_new = np.trapezoid(np.minimum(self.p2, q2), self.xs) / self.area2
        return float(acc_old), float(acc_new)

    def density(self, setting: Setting, theta: Sequence[float]) -> np.ndarray:
        q1, q2 = self.components(setting, theta)
        return q1 if setting.name == "unimodal" else q1 + q2


def _bimodal_step(theta: list[float], spec: RunSpec, rng: _Rng) -> list[float]:
    """One update of (pi1, mu1, s1, mu2, s2) for q = pi1 N(mu1, s1) + (1 - pi1) N(mu2, s2)."""
    pi1, mu1, s1, mu2, s2 = theta
    _, _, s_tgt = TARGET_NEW
    if spec.method == "forward_kl":
        # SFT = maximum likelihood on data from the target task only, never from the old one.
        x = rng.normal(spec.target_mean, s_tgt, size=NUM_SAMPLES)
    else:
        # RL is on-policy: the model's own samples, from its new-task mode (the one the reward sees).
        x = rng.normal(mu2, s2, size=NUM_SAMPLES)
    n1, n2 = normal_pdf(x, mu1, s1), normal_pdf(x, mu2, s2)
    q1, q2 = pi1 * n1, (1.0 - pi1) * n2
    qx = q1 + q2 + EPS
    r1, r2 = q1 / qx, q2 / qx  # responsibilities
    # Per-sample d log q / d theta. d/dpi1 is taken with pi2 = 1 - pi1, hence (N1 - N2) / q.
    scores = (
        (n1 - n2) / qx,
        r1 * (x - mu1) / s1**2,
        r1 * (-1.0 / s1 + (x - mu1) ** 2 / s1**3),
        r2 * (x - mu2) / s2**2,
        r2 * (-1.0 / s2 + (x - mu2) ** 2 / s2**3),
    )
    if spec.method == "forward_kl":
        weight = np.ones_like(x)  # ascent on mean log q(x) == descent on the NLL
    else:
        # Raw reward log(p2n / q2 / beta) (the repo does not centre it; -log beta acts as a baseline)
        # times the importance weight q / q2 that corrects for sampling only q's right component.
        p2n = normal_pdf(x, spec.target_mean, s_tgt)
        weight = np.log(p2n / q2 / REINFORCE_BETA + EPS) * (qx / (q2 + EPS))
    grads = [float(np.mean(weight * s)) for s in scores]
    slow = spec.lr * SLOW_FACTOR
    steps = (slow, slow, slow, spec.lr, spec.lr)
    pi1, mu1, s1, mu2, s2 = (p + a * g for p, a, g in zip(theta, steps, grads, strict=True))
    return [min(max(pi1, 1e-3), 1.0 - 1e-3), mu1, max(s1, 1e-3), mu2, max(s2, 1e-3)]


def _unimodal_step(theta: list[float], spec: RunSpec, rng: _Rng) -> list[float]:
    """One update of (mu, s) for q = N(mu, s): one mode has to serve both tasks."""
    mu, s = theta
    _, _, s_tgt = TARGET_NEW
    if spec.method == "forward_kl":
        x = rng.normal(spec.target_mean, s_tgt, size=NUM_SAMPLES)
        weight = np.ones_like(x)
    else:
        x = rng.normal(mu, s, size=NUM_SAMPLES)
        qx = normal_pdf(x, mu, s) + EPS
        weight = np.log(normal_pdf(x, spec.target_mean, s_tgt) / qx / REINFORCE_BETA + EPS)
    g_mu = float(np.mean(weight * (x - mu) / s**2))
    g_s = float(np.mean(weight * (-1.0 / s + (x - mu) ** 2 / s**3)))
    return [mu + spec.lr * g_mu, max(s + spec.lr * g_s, 1e-3)]


def run_one(
    spec: RunSpec,
    seed: int,
    threshold: float = 0.9,
    rng: _Rng | None = None,
) -> RunResult:
    """Run one objective from the setting's initial q.

    `rng` overrides the per-seed generator: pass one np.random.RandomState(0) through several runs to
    replay the reference code's shared global stream (tests/test_simulate.py does).
    """
    setting = spec.setting
    rng = np.random.default_rng(seed) if rng is None else rng
    metrics = _Metrics(setting, spec.target_mean)
    step_fn = _bimodal_step if setting.name == "bimodal" else _unimodal_step
    theta = list(setting.init)
    old0, new0 = metrics.accuracies(setting, theta)
    params = np.empty((setting.num_iters + 1, len(theta)))
    params[0] = theta
    gain = np.empty(setting.num_iters)
    drop = np.empty(setting.num_iters)
    for t in range(setting.num_iters):
        theta = step_fn(theta, spec, rng)
        params[t + 1] = theta
        acc_old, acc_new = metrics.accuracies(setting, theta)
        gain[t] = acc_new - new0
        drop[t] = old0 - acc_old
    hit = np.flatnonzero(gain >= threshold)
    step = int(hit[0]) + 1 if hit.size else None
    last = step if step is not None else setting.num_iters
    snap_steps = tuple(sorted({*range(0, last + 1, SNAPSHOT_EVERY), last}))
    snapshots = np.stack([metrics.density(setting, params[k]) for k in snap_steps])
    return RunResult(
        spec=spec,
        seed=seed,
        gain_threshold=threshold,
        initial_old=old0,
        initial_new=new0,
        gain=gain,
        drop=drop,
        step_at_threshold=step,
        drop_at_threshold=float(drop[step - 1]) if step is not None else None,
        final_gain=float(gain[-1]),
        final_drop=float(drop[-1]),
        params=params,
        snapshot_steps=snap_steps,
        snapshots=snapshots,
    )


def default_specs() -> list[RunSpec]:
    """The paper's panels (bi-modal FKL 0.15 / 0.01, RKL 0.01; uni-modal FKL 0.05, RKL 0.005) and sweep."""
    specs = [
        RunSpec(BIMODAL, "forward_kl", 0.15),
        RunSpec(BIMODAL, "forward_kl", 0.01),
        RunSpec(BIMODAL, "reverse_kl", 0.01),
        RunSpec(UNIMODAL, "forward_kl", 0.05),
        RunSpec(UNIMODAL, "reverse_kl", 0.005),
    ]
    for mean in SWEEP_MEANS:
        specs += [
            RunSpec(BIMODAL, "forward_kl", 0.15, mean, "sweep"),
            RunSpec(BIMODAL, "forward_kl", 0.01, mean, "sweep"),
            RunSpec(BIMODAL, "reverse_kl", 0.01, mean, "sweep"),
        ]
    return specs


def run_all(
    seeds: int = 5, threshold: float = 0.9, specs: Sequence[RunSpec] | None = None
) -> dict[RunSpec, list[RunResult]]:
    """Every spec for seeds 0..seeds-1; each (spec, seed) gets its own default_rng(seed) stream."""
    specs = default_specs() if specs is None else specs
    return {spec: [run_one(spec, seed, threshold) for seed in range(seeds)] for spec in specs}


def _mean_std(values: Sequence[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())  # population std: a spread over seeds, not an estimator


def summarise(spec: RunSpec, results: Sequence[RunResult]) -> SummaryRow:
    """Seed mean and std; the matched-gain drop only over seeds that reached the threshold."""
    if not results:
        raise ValueError(f"no runs to summarise for {spec.setting.name} {spec.method} lr {spec.lr}")
    drops_at = [r.drop_at_threshold for r in results if r.drop_at_threshold is not None]
    steps_at = [float(r.step_at_threshold) for r in results if r.step_at_threshold is not None]
    drop_mean, drop_std = _mean_std(drops_at)
    step_mean, _ = _mean_std(steps_at)
    final_gain = np.array([r.final_gain for r in results])
    final_drop = np.array([r.final_drop for r in results])
    per_seed = tuple(
        {
            "seed": r.seed,
            "initial_old": r.initial_old,
            "initial_new": r.initial_new,
            "step_at_threshold": r.step_at_threshold,
            "drop_at_threshold": r.drop_at_threshold,
            "final_gain": r.final_gain,
            "final_drop": r.final_drop,
        }
        for r in results
    )
    return SummaryRow(
        group=spec.group,
        setting=spec.setting.name,
        method=spec.method,
        lr=spec.lr,
        target_mean=spec.target_mean,
        gain_threshold=results[0].gain_threshold,
        n_seeds=len(results),
        n_reached=len(steps_at),
        step_at_threshold_mean=step_mean,
        drop_at_threshold_mean=drop_mean,
        drop_at_threshold_std=drop_std,
        final_gain_mean=float(final_gain.mean()),
        final_gain_std=float(final_gain.std()),
        final_drop_mean=float(final_drop.mean()),
        final_drop_std=float(final_drop.std()),
        paper_drop_at_threshold=PAPER_DROP.get((spec.setting.name, spec.method, spec.lr, spec.target_mean)),
        per_seed=per_seed,
    )


def summary_rows(results: dict[RunSpec, list[RunResult]]) -> list[SummaryRow]:
    return [summarise(spec, runs) for spec, runs in results.items()]


def to_json(rows: Sequence[SummaryRow], seeds: int, threshold: float) -> str:
    """The --json document: every summary row with its per-seed values. None stands for "never reached"."""
    doc = {
        "experiment": "mixture_of_gaussians",
        "seeds": seeds,
        "gain_threshold": threshold,
        "drop_sign": "positive = forgetting (Acc_0(T') - Acc_t(T'))",
        "rows": [{**row.__dict__, "per_seed": list(row.per_seed)} for row in rows],
    }
    return json.dumps(doc, indent=2)
