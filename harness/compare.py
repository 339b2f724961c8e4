"""Compare checkpoints with their base: gain, drop, paired CIs, flips, BH-adjusted p-values, Pareto per target,
method against method, power, drop at matched gain, noise floor (the statistics themselves: harness/stats.py).

Pure (numpy/scipy, no torch). Definitions follow the paper (reference/paper.md section 3.1):
  gain = mean over the checkpoint's target suites (trained_on) of (score - base score)
  drop = mean over the other selected suites of (base score - score)      positive drop = forgetting
in absolute points (0-100), unweighted over suites. Statistics are paired per item: every checkpoint
is resampled with the same bootstrap indices as the base, per suite, from a fixed seed.

    python -m pytest tests/test_compare.py -q
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness import stats
from harness.errors import ForgetbenchError
from harness.types import CheckpointSummary, Comparison, Delta, ForgottenItem, KLPoint, SuiteResult


class ComparisonError(ForgetbenchError):
    """Two runs cannot be compared; the message says which suite and what differs."""


def check_comparable(base: SuiteResult, other: SuiteResult) -> list[str]:
    """Raise when the runs measure different things; return soft warnings (e.g. engine differs)."""
    where = f"suite {base.suite}: {other.checkpoint} vs {base.checkpoint}"
    if base.data_version != other.data_version:
        raise ComparisonError(f"{where}: data version differs ({other.data_version} vs {base.data_version})")
    if base.scorer_version != other.scorer_version:
        raise ComparisonError(
            f"{where}: scorer version differs ({other.scorer_version} vs {base.scorer_version}); rescore both alike"
        )
    if base.decoding != other.decoding:
        raise ComparisonError(f"{where}: decoding differs ({other.decoding} vs {base.decoding})")
    if set(base.item_ids) != set(other.item_ids):
        extra, missing = set(other.item_ids) - set(base.item_ids), set(base.item_ids) - set(other.item_ids)
        raise ComparisonError(f"{where}: item set differs ({len(extra)} extra, {len(missing)} missing)")
    by_id = dict(zip(base.item_ids, base.prompt_hashes, strict=True))
    differ = [i for i, h in zip(other.item_ids, other.prompt_hashes, strict=True) if by_id[i] != h]
    if differ:
        raise ComparisonError(f"{where}: prompt hash differs on {len(differ)} item(s), e.g. {differ[0]!r}")
    return [f"{where}: engine differs ({other.engine} vs {base.engine})"] if base.engine != other.engine else []


def _aligned(base: SuiteResult, other: SuiteResult) -> tuple[np.ndarray, np.ndarray]:
    pos = {i: k for k, i in enumerate(other.item_ids)}
    order = [pos[i] for i in base.item_ids]
    return np.asarray(base.scores, float), np.asarray(other.scores, float)[order]


def boot_indices(suite: str, n: int, n_boot: int, seed: int) -> np.ndarray:
    # One index matrix per suite, shared by every checkpoint: the CIs of gain/drop stay paired.
    sub = int.from_bytes(hashlib.sha256(suite.encode()).digest()[:4], "little")
    return np.random.default_rng([seed, sub]).integers(0, n, size=(n_boot, n), dtype=np.int32)


def paired_p_value(b: np.ndarray, c: np.ndarray, seed: int = 0, n_perm: int = 4000) -> float:
    """Two-sided paired test: exact McNemar for 0/1 scores, sign-flip permutation otherwise."""
    d = c - b
    if not np.any(d):
        return 1.0
    if np.isin(b, (0.0, 1.0)).all() and np.isin(c, (0.0, 1.0)).all():
        learned, forgotten = int(np.sum(d > 0)), int(np.sum(d < 0))
        # exact two-sided binomial test at 1/2 (= scipy's binomtest): the null is symmetric, so the outcomes
        # at most as likely as the observed one are both tails beyond it, summed exactly in integers
        if learned == forgotten:
            return 1.0
        n = learned + forgotten
        tail = sum(math.comb(n, k) for k in range(min(learned, forgotten) + 1))
        return float(min(1.0, 2 * tail / 2**n))
    rng = np.random.default_rng(seed)
    signs = rng.choice((-1.0, 1.0), size=(n_perm, d.size))
    obs = abs(d.mean())
    return float((np.sum(np.abs((signs * d).mean(axis=1)) >= obs - 1e-12) + 1) / (n_perm + 1))


def overall_p_value(pairs: Sequence[tuple[np.ndarray, np.ndarray]], seed: int = 0, n_perm: int = 4000) -> float:
    """Two-sided paired test of mean over suites of mean(c - b): sign-flip permutation of item differences.

    Each suite weighs 1/S whatever its size, like the drop itself; one suite reduces to paired_p_value.
    """
    if len(pairs) == 1:
        return paired_p_value(pairs[0][0], pairs[0][1], seed, n_perm)
    return stats.suite_mean_p_value([c - b for b, c in pairs], seed, n_perm)


def suite_set_drop(
    results: Mapping[str, Mapping[str, SuiteResult]],
    base: str,
    cid: str,
    suites: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
    n_perm: int = 4000,
) -> dict[str, object] | None:
    """Drop of `cid` over a set of suites: mean of per-suite drops, its paired bootstrap CI and overall p.

    The bootstrap uses compare's own per-suite indices, so over the non-target suites the CI equals the
    summary's drop_ci. None for an empty set.
    """
    if not suites:
        return None
    pairs = [_aligned(results[base][s], results[cid][s]) for s in suites]
    drop = float(np.mean([(b.mean() - c.mean()) * 100 for b, c in pairs]))
    deltas = [
        (c - b)[boot_indices(s, b.size, n_boot, seed)].mean(axis=1) for s, (b, c) in zip(suites, pairs, strict=True)
    ]
    boot = -np.mean(deltas, axis=0) * 100
    return {
        "suites": list(suites),
        "n": int(sum(b.size for b, _ in pairs)),
        "drop": drop,
        "ci": (float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5))),
        "p_value": overall_p_value(pairs, seed, n_perm),
    }


def benjamini_hochberg(p: Sequence[float]) -> list[float]:
    """BH-adjusted q-values (step-up, monotone), in the input order."""
    p_arr = np.asarray(p, float)
    m = p_arr.size
    if m == 0:
        return []
    order = np.argsort(p_arr)
    ranked = p_arr[order] * m / np.arange(1, m + 1)
    q = np.minimum.accumulate(ranked[::-1])[::-1].clip(max=1.0)
    out = np.empty(m)
    out[order] = q
    return out.tolist()


def pareto_dominators(points: Mapping[str, tuple[float, float]]) -> dict[str, list[str]]:
    """For (gain, drop) points: who dominates whom (gain >=, drop <=, one strictly)."""
    out: dict[str, list[str]] = {k: [] for k in points}
    for a, (ga, da) in points.items():
        for b, (gb, db) in points.items():
            if a != b and gb >= ga and db <= da and (gb > ga or db < da):
                out[a].append(b)
    return out


def pareto_by_target(summaries: Sequence[CheckpointSummary], base: str) -> dict[str, list[str]]:
    """Dominance only among checkpoints trained on the same suites (as a set), each group with its own base
    point at (0, 0): a gain on Countdown says nothing about a gain on MMLU. (One Comparison has one base.)"""
    groups: dict[frozenset[str], dict[str, tuple[float, float]]] = {}
    for s in summaries:
        if s.gain is not None and s.drop is not None:
            groups.setdefault(frozenset(s.trained_on), {})[s.checkpoint] = (s.gain, s.drop)
    out: dict[str, list[str]] = {}
    for points in groups.values():
        dom = pareto_dominators(points | {base: (0.0, 0.0)})  # the base: forgetting for no gain is dominated
        out |= {k: v for k, v in dom.items() if k != base}
    return out


def compare(
    results: Mapping[str, Mapping[str, SuiteResult]],
    base: str,
    checkpoints: Sequence[tuple[str, str, tuple[str, ...]]],
    prompts: Mapping[str, Mapping[str, tuple[str, str]]] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    max_forgotten: int = 200,
    n_perm: int = 4000,
    noise: Mapping[str, tuple[SuiteResult, str]] | None = None,
    kl: Sequence[KLPoint] = (),
) -> Comparison:
    """results[ckpt][suite]; checkpoints = (id, method, trained_on) of the candidates, in order.

    prompts[suite][item_id] = (prompt text, reference answer), for the forgotten-items browser.
    meta["non_target_drop"][ckpt]: suite_set_drop over the suites not in its trained_on (all of them when
    it has none), with the overall p-value (n_perm draws): what the gate decides on.
    noise[suite] = (the base scored a second time under a change that should not matter, that change).
    kl = KL points per checkpoint (harness/probes.py), correlated here with the drop.
    """
    suites = tuple(results[base])
    warnings: list[str] = []
    raw: list[tuple[str, str, dict]] = []  # (ckpt, suite, stats) before BH
    boots: dict[tuple[str, str], np.ndarray] = {}
    aligned: dict[tuple[str, str], np.ndarray] = {}  # per-item scores in the base's item order
    forgotten: list[ForgottenItem] = []
    for cid, _method, _trained in checkpoints:
        for s in suites:
            if s not in results.get(cid, {}):
                raise ComparisonError(f"suite {s}: no results for checkpoint {cid}")
            b_res, c_res = results[base][s], results[cid][s]
            warnings += check_comparable(b_res, c_res)
            b, c = _aligned(b_res, c_res)
            idx = boot_indices(s, b.size, n_boot, seed)
            d = c - b
            boot = stats.paired_boot(b, c, idx)
            boots[(cid, s)] = boot
            aligned[(cid, s)] = c
            lost = np.flatnonzero((b >= 0.5) & (c < 0.5))
            st = {
                "n": int(b.size),
                "base": float(b.mean() * 100),
                "score": float(c.mean() * 100),
                "delta": float(d.mean() * 100),
                "lo": float(np.percentile(boot, 2.5)),
                "hi": float(np.percentile(boot, 97.5)),
                "p": paired_p_value(b, c, seed),
                "forgotten": int(lost.size),
                "learned": int(np.sum((b < 0.5) & (c >= 0.5))),
            }
            raw.append((cid, s, st))
            forgotten += _forgotten_items(cid, s, lost[:max_forgotten], b_res, c_res, prompts)
    q = benjamini_hochberg([st["p"] for _, _, st in raw])
    area = {s: results[base][s].area for s in suites}
    deltas: dict[str, list[Delta]] = {cid: [] for cid, _, _ in checkpoints}
    targets = {cid: set(t) for cid, _, t in checkpoints}
    for (cid, s, st), qv in zip(raw, q, strict=True):
        deltas[cid].append(
            Delta(
                suite=s,
                area=area[s],
                checkpoint=cid,
                is_target=s in targets[cid],
                n=st["n"],
                base_score=st["base"],
                score=st["score"],
                delta=st["delta"],
                ci_low=st["lo"],
                ci_high=st["hi"],
                p_value=st["p"],
                q_value=qv,
                forgotten=st["forgotten"],
                learned=st["learned"],
            )
        )
    boot_gain: dict[str, np.ndarray] = {}
    boot_drop: dict[str, np.ndarray] = {}
    summaries = [
        _summarise(cid, method, trained, suites, deltas[cid], boots, boot_gain, boot_drop)
        for cid, method, trained in checkpoints
    ]
    dom = pareto_by_target(summaries, base)
    summaries = [
        CheckpointSummary(**{**s.__dict__, "dominated_by": tuple(dom.get(s.checkpoint, ()))}) for s in summaries
    ]
    pairs = stats.pair_diffs(summaries, boot_gain, boot_drop, aligned, seed)
    matched, matched_notes = stats.matched_gain(summaries, boot_gain, boot_drop)
    power = [
        stats.suite_power(
            s, _aligned(results[base][s], results[base][s])[0], [aligned[(c, s)] for c, _, _ in checkpoints]
        )
        for s in suites
    ]
    floor = [
        stats.noise_floor(results[base][s], second, boot_indices(s, len(results[base][s].scores), n_boot, seed), change)
        for s, (second, change) in (noise or {}).items()
        if s in suites
    ]
    # the band in the frontier plot: what "no change" does to a mean over all suites (drop = -delta)
    band = stats.percentile_ci(-np.mean([b for _, b in floor], axis=0)) if floor else None
    drops = {s.checkpoint: s.drop for s in summaries if s.drop is not None}
    kl_pts = [k for k in kl if k.checkpoint in drops]
    kl_rho = stats.spearman([k.kl_base_ckpt for k in kl_pts], [drops[k.checkpoint] for k in kl_pts])
    scores = {cid: {s: r.mean * 100 for s, r in res.items() if s in suites} for cid, res in results.items()}
    meta = {
        "n_boot": n_boot,
        "seed": seed,
        "warnings": sorted(set(warnings)),
        "engines": sorted({r.engine for res in results.values() for r in res.values()}),
        "data_versions": {s: results[base][s].data_version for s in suites},
        "areas": area,
        "decoding": {s: results[base][s].decoding for s in suites},
        "fingerprints": {cid: next(iter(res.values())).fingerprint for cid, res in results.items() if res},
        "non_target_drop": {
            cid: suite_set_drop(results, base, cid, [s for s in suites if s not in t], n_boot, seed, n_perm)
            for cid, _, t in checkpoints
        },
        "notes": matched_notes,
        "noise_band": band,
    }
    return Comparison(
        base=base,
        suites=suites,
        scores=scores,
        summaries=tuple(summaries),
        forgotten=tuple(forgotten),
        meta=meta,
        pairs=tuple(pairs),
        ordering=stats.paper_ordering(pairs),
        power=tuple(power),
        matched_gain=tuple(matched),
        noise=tuple(f for f, _ in floor),
        kl=tuple(kl_pts),
        kl_spearman=kl_rho,
    )


def _summarise(
    cid: str,
    method: str,
    trained: tuple[str, ...],
    suites: tuple[str, ...],
    deltas: list[Delta],
    boots: dict[tuple[str, str], np.ndarray],
    boot_gain: dict[str, np.ndarray],
    boot_drop: dict[str, np.ndarray],
) -> CheckpointSummary:
    notes = [f"target suite {t!r} was not evaluated: gain leaves it out" for t in trained if t not in suites]
    tgt = [s for s in suites if s in trained]
    non = [s for s in suites if s not in trained]
    gain = gain_ci = drop = drop_ci = None
    if trained and tgt:
        g = np.mean([boots[(cid, s)] for s in tgt], axis=0)
        gain = float(np.mean([d.delta for d in deltas if d.is_target]))
        gain_ci = stats.percentile_ci(g)
        boot_gain[cid] = g
    if trained and non:
        dr = -np.mean([boots[(cid, s)] for s in non], axis=0)
        drop = float(np.mean([-d.delta for d in deltas if not d.is_target]))
        drop_ci = stats.percentile_ci(dr)
        boot_drop[cid] = dr
    if not trained:
        notes.append("no trained_on: per-suite deltas only (gain and drop need target suites)")
    return CheckpointSummary(
        checkpoint=cid,
        method=method,
        trained_on=tuple(trained),
        gain=gain,
        gain_ci=gain_ci,
        drop=drop,
        drop_ci=drop_ci,
        deltas=tuple(deltas),
        notes=tuple(notes),
    )


def _forgotten_items(
    cid: str,
    suite: str,
    lost: np.ndarray,
    b: SuiteResult,
    c: SuiteResult,
    prompts: Mapping[str, Mapping[str, tuple[str, str]]] | None,
) -> list[ForgottenItem]:
    pos = {i: k for k, i in enumerate(c.item_ids)}
    out = []
    for k in lost.tolist():
        item_id = b.item_ids[k]
        prompt, ref = (prompts or {}).get(suite, {}).get(item_id, ("", ""))
        base_ans = b.completions[k] if b.completions else ""
        ans = c.completions[pos[item_id]] if c.completions else ""
        out.append(ForgottenItem(cid, suite, item_id, prompt, base_ans, ans, ref))
    return out
