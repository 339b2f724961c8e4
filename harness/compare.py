"""Compare checkpoints with their base: gain, drop, paired CIs, flips, BH-adjusted p-values, Pareto per target,
replicate groups, method against method, power, drop at matched gain, noise floors (the statistics themselves:
harness/stats.py, harness/decisions.py, harness/groups.py; informative suites: harness/informative.py).

Pure (numpy/scipy, no torch). Definitions follow the paper (reference/paper.md section 3.1):
  gain = mean over the checkpoint's target suites (trained_on) of (score - base score)
  drop = mean over the other selected suites of (base score - score)      positive drop = forgetting
         over the informative ones (harness/informative.py; all of them when none is); drop_all beside it
in absolute points (0-100), unweighted over suites. Statistics are paired per item: every checkpoint
is resampled with the same bootstrap indices as the base, per suite, from a fixed seed.

    python -m pytest tests/test_compare.py -q
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence

import numpy as np

from harness import breakdown, decisions, informative, stats
from harness import groups as groups_mod
from harness.errors import ForgetbenchError
from harness.types import (
    CheckpointSummary,
    Comparison,
    Delta,
    ForgottenItem,
    GroupSummary,
    KLPoint,
    NoiseFloor,
    SuiteFloor,
    SuiteInformative,
    SuiteResult,
)


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
    chance: Mapping[str, float] | None = None,
    ceiling: Mapping[str, float] | None = None,
    groups: Mapping[str, str] | None = None,
    step_floors: Sequence[SuiteFloor] = (),
) -> Comparison:
    """results[ckpt][suite]; checkpoints = (id, method, trained_on) of the candidates, in order.

    prompts[suite][item_id] = (prompt text, reference answer), for the forgotten-items browser.
    meta["non_target_drop"][ckpt]: suite_set_drop over the suites not in its trained_on (all of them when
    it has none), with the overall p-value (n_perm draws): what the gate decides on.
    noise[suite] = (the base scored a second time under a change that should not matter, that change).
    kl = KL points per checkpoint (harness/probes.py), correlated here with the drop.
    chance[suite], ceiling[suite]: what harness/informative.py decides informative suites by (default chance
    0, ceiling from the chance); the headline drop is over the informative non-target suites.
    groups[ckpt] = its replicate group (default: each checkpoint alone; harness/groups.py).
    step_floors: groups.step_floor of one run's adjacent steps, carried into the Comparison's floors.
    """
    suites = tuple(results[base])
    flags = {
        s: informative.classify(s, results[base][s].scores, (chance or {}).get(s, 0.0), (ceiling or {}).get(s))
        for s in suites
    }
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
                informative=flags[s].informative,
            )
        )
    boot_gain: dict[str, np.ndarray] = {}
    boot_drop: dict[str, np.ndarray] = {}
    group_of = {cid: (groups or {}).get(cid) or cid for cid, _, _ in checkpoints}
    summaries = [
        _summarise(cid, method, trained, suites, deltas[cid], boots, boot_gain, boot_drop, flags, group_of[cid])
        for cid, method, trained in checkpoints
    ]
    dom = decisions.pareto_by_target(summaries, lambda s: s.checkpoint, boot_gain, boot_drop, base)
    summaries = [
        CheckpointSummary(**{**s.__dict__, "dominated_by": tuple(dom.get(s.checkpoint, ()))}) for s in summaries
    ]
    members = _members(checkpoints, group_of)
    group_rows, g_gain, g_drop = decisions.summarise_groups(summaries, members, boot_gain, boot_drop, seed)
    g_dom = decisions.pareto_by_target(group_rows, lambda g: g.group, g_gain, g_drop, base)
    group_rows = [GroupSummary(**{**g.__dict__, "dominated_by": tuple(g_dom.get(g.group, ()))}) for g in group_rows]
    by_ckpt = {s.checkpoint: s.deltas for s in summaries}
    pairs = stats.pair_diffs(group_rows, g_gain, g_drop, aligned, seed, by_ckpt)
    matched, matched_notes, curves = decisions.matched_gain(group_rows, g_gain, g_drop)
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
    floor = [(_by_construction(f), b) for f, b in floor]
    zero = bool(floor) and all(f.zero_by_construction for f, _ in floor)
    # the band in the frontier plot: what "no change" does to a mean over all suites (drop = -delta); none
    # when the re-score cannot differ (greedy, batch-invariant): a zero band would read as "no noise"
    band = stats.percentile_ci(-np.mean([b for _, b in floor], axis=0)) if floor and not zero else None
    seed_floors = groups_mod.seed_floor(
        {s.checkpoint: {d.suite: d.score for d in s.deltas} for s in summaries}, members
    )
    seed_band = _seed_band(summaries, members)
    drops = {s.checkpoint: s.drop for s in summaries if s.drop is not None}
    kl_pts = [k for k in kl if k.checkpoint in drops]
    kl_rho = stats.spearman([k.kl_base_ckpt for k in kl_pts], [drops[k.checkpoint] for k in kl_pts])
    scores = {cid: {s: r.mean * 100 for s, r in res.items() if s in suites} for cid, res in results.items()}
    head_drop = {
        cid: _headline_set_drop(results, base, cid, [s for s in suites if s not in t], flags, n_boot, seed, n_perm)
        for cid, _, t in checkpoints
    }
    formats, categories = breakdown.breakdown(results, base, [c for c, _, _ in checkpoints], n_boot, seed)
    meta = {
        "n_boot": n_boot,
        "seed": seed,
        "warnings": sorted(set(warnings)),
        "engines": sorted({r.engine for res in results.values() for r in res.values()}),
        "data_versions": {s: results[base][s].data_version for s in suites},
        "areas": area,
        "decoding": {s: results[base][s].decoding for s in suites},
        "fingerprints": {cid: next(iter(res.values())).fingerprint for cid, res in results.items() if res},
        "non_target_drop": head_drop,
        "non_target_drop_all": {
            # the same suites: the same numbers (the permutation test is the costly part)
            cid: {k: v for k, v in head_drop[cid].items() if k not in ("left_out", "fallback")}
            if head_drop[cid] is not None and head_drop[cid]["suites"] == [s for s in suites if s not in t]
            else suite_set_drop(results, base, cid, [s for s in suites if s not in t], n_boot, seed, n_perm)
            for cid, _, t in checkpoints
        },
        "notes": matched_notes,
        "noise_band": seed_band or band,
        "noise_band_label": "seed spread (two seeds of one recipe, 95%)" if seed_band else None,
        "decoding_noise_zero": zero,
        "left_out": informative.left_out(list(flags.values()), suites),
    }
    return Comparison(
        base=base,
        suites=suites,
        scores=scores,
        summaries=tuple(summaries),
        forgotten=tuple(forgotten),
        meta=meta,
        pairs=tuple(pairs),
        ordering=decisions.paper_ordering(matched, curves),
        power=tuple(power),
        matched_gain=tuple(matched),
        noise=tuple(f for f, _ in floor),
        kl=tuple(kl_pts),
        kl_spearman=kl_rho,
        informative=tuple(flags.values()),
        groups=tuple(group_rows),
        floors=(*seed_floors, *step_floors),
        formats=tuple(formats),
        categories=tuple(categories),
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
    flags: Mapping[str, SuiteInformative] | None = None,
    group: str = "",
) -> CheckpointSummary:
    notes = [f"target suite {t!r} was not evaluated: gain leaves it out" for t in trained if t not in suites]
    tgt = [s for s in suites if s in trained]
    non = [s for s in suites if s not in trained]
    head = _headline(non, flags or {})
    if non and head == non and any(not f.informative for s, f in (flags or {}).items() if s in non):
        notes.append("no non-target suite is informative: the drop is over all of them (see left-out suites)")
    gain = gain_ci = drop = drop_ci = drop_all = drop_all_ci = None
    by = {d.suite: d for d in deltas}
    if trained and tgt:
        g = np.mean([boots[(cid, s)] for s in tgt], axis=0)
        gain = float(np.mean([by[s].delta for s in tgt]))
        gain_ci = stats.percentile_ci(g)
        boot_gain[cid] = g
    if trained and non:
        dr = -np.mean([boots[(cid, s)] for s in head], axis=0)
        drop = float(np.mean([-by[s].delta for s in head]))
        drop_ci = stats.percentile_ci(dr)
        boot_drop[cid] = dr
        drop_all = float(np.mean([-by[s].delta for s in non]))
        drop_all_ci = stats.percentile_ci(-np.mean([boots[(cid, s)] for s in non], axis=0))
    if not trained:
        notes.append("no trained_on: per-suite deltas only (gain and drop need target suites)")
    marked = tuple(Delta(**{**d.__dict__, "in_drop": bool(trained) and d.suite in head}) for d in deltas)
    return CheckpointSummary(
        checkpoint=cid,
        method=method,
        trained_on=tuple(trained),
        gain=gain,
        gain_ci=gain_ci,
        drop=drop,
        drop_ci=drop_ci,
        deltas=marked,
        notes=tuple(notes),
        drop_all=drop_all,
        drop_all_ci=drop_all_ci,
        group=group,
    )


def _headline(non: Sequence[str], flags: Mapping[str, SuiteInformative]) -> list[str]:
    """The suites of the headline drop: the informative non-target ones; all of them when none is."""
    keep = [s for s in non if s not in flags or flags[s].informative]
    return keep or list(non)


def _headline_set_drop(
    results: Mapping[str, Mapping[str, SuiteResult]],
    base: str,
    cid: str,
    non: Sequence[str],
    flags: Mapping[str, SuiteInformative],
    n_boot: int,
    seed: int,
    n_perm: int,
) -> dict[str, object] | None:
    """suite_set_drop over the headline suites, with the left-out suites and why (what the gate decides on)."""
    head = _headline(non, flags)
    out = suite_set_drop(results, base, cid, head, n_boot, seed, n_perm)
    if out is not None:
        out["left_out"] = {s: flags[s].reason for s in non if s not in head}
        out["fallback"] = bool(non) and head == list(non) and any(not flags[s].informative for s in non)
    return out


def _members(checkpoints: Sequence[tuple[str, str, tuple[str, ...]]], group_of: Mapping[str, str]) -> dict:
    """group -> its checkpoints; a group must share method and trained_on (else it compares nothing)."""
    out: dict[str, list[str]] = {}
    seen: dict[str, tuple[str, frozenset[str]]] = {}
    for cid, method, trained in checkpoints:
        g = group_of[cid]
        recipe = (method, frozenset(trained))
        if seen.setdefault(g, recipe) != recipe:
            raise ComparisonError(f"group {g!r}: {cid} has method/trained_on {method}/{sorted(trained)}, "
                                  f"the group's first member {seen[g][0]}/{sorted(seen[g][1])}")  # fmt: skip
        out.setdefault(g, []).append(cid)
    return out


def _by_construction(f: NoiseFloor) -> NoiseFloor:
    """A greedy re-score at another batch size that changed nothing measures determinism, not noise."""
    zero = f.change.startswith("batch size") and f.flips == 0 and f.delta == 0 and f.ci_low == f.ci_high == 0
    return NoiseFloor(**{**f.__dict__, "zero_by_construction": zero})


def _seed_band(summaries: Sequence[CheckpointSummary], members: Mapping[str, Sequence[str]]) -> tuple | None:
    """+-1.96 sqrt(2) x the pooled within-group sd of the drop: what two seeds of one recipe differ by."""
    drops = {s.checkpoint: s.drop for s in summaries if s.drop is not None}
    ss, dof = 0.0, 0
    for ms in members.values():
        x = np.array([drops[m] for m in ms if m in drops])
        if x.size >= 2:
            ss, dof = ss + float(np.sum((x - x.mean()) ** 2)), dof + x.size - 1
    if not dof:
        return None
    half = groups_mod.Z95 * math.sqrt(2 * ss / dof)
    return (-half, half)


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
        kc = pos[item_id]
        parsed = c.answers[kc] if breakdown.has_answers(c) else None
        base_parsed = b.answers[k] if breakdown.has_answers(b) else None
        why = c.explanations[kc] if len(c.explanations) == len(c.scores) else ""
        out.append(
            ForgottenItem(
                cid, suite, item_id, prompt, base_ans, ans, ref, parsed, base_parsed, breakdown.cause(c, kc), why
            )
        )
    return out
