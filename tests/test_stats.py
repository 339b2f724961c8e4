"""Method against method, the paper's ordering, Pareto per target, power and drop at matched gain, on planted
data whose answers are known by hand (replicate groups: tests/test_groups.py).

    python -m pytest tests/test_stats.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import binomtest

from harness import decisions, stats
from harness.compare import compare, paired_p_value
from harness.gate import GateConfig, decide
from harness.leaderboard import collect
from harness.report import frontier_figure, render_html, write_json
from harness.types import GroupSummary, SuiteResult


def sr(ckpt: str, suite: str, right: list[int] | np.ndarray, n: int = 200) -> SuiteResult:
    """Scores 1 on the item indices in `right`, 0 elsewhere."""
    scores = np.zeros(n)
    scores[np.asarray(right, int)] = 1
    ids = tuple(f"{suite}-{i}" for i in range(n))
    return SuiteResult(ckpt, f"fp-{ckpt}", suite, "1", "math", "d", "fake@1", ids, ids, tuple(scores.tolist()))


def planted(sft_lost_a: int = 40, grpo_lost_a: int = 4, n: int = 200) -> dict[str, dict[str, SuiteResult]]:
    """Base: T 50/200, A 160/200, B 160/200. sft: T 150 (+50), A -sft_lost_a, B -20 items. grpo: T 120 (+35),
    A -grpo_lost_a. So drop(sft) - drop(grpo) = (sft_lost_a + 20 - grpo_lost_a) / 2 / n * 100 points."""
    r = np.arange(n)
    return {
        "base": {"T": sr("base", "T", r[:50], n), "A": sr("base", "A", r[:160], n), "B": sr("base", "B", r[:160], n)},
        "sft": {"T": sr("sft", "T", r[:150], n), "A": sr("sft", "A", r[sft_lost_a:160], n),
                "B": sr("sft", "B", r[20:160], n)},
        "grpo": {"T": sr("grpo", "T", r[:120], n), "A": sr("grpo", "A", r[grpo_lost_a:160], n),
                 "B": sr("grpo", "B", r[:160], n)},
    }  # fmt: skip


CANDS = [("sft", "sft", ("T",)), ("grpo", "grpo", ("T",))]


def test_pair_difference_hand_computed() -> None:
    comp = compare(planted(), "base", CANDS)
    (p,) = comp.pairs
    assert (p.a, p.b, p.method_a, p.method_b) == ("sft", "grpo", "sft", "grpo")
    assert p.drop_diff == pytest.approx((40 + 20 - 4) / 2 / 200 * 100)  # 14.0
    assert p.gain_diff == pytest.approx(15.0)
    assert 0 < p.drop_ci[0] < 14.0 < p.drop_ci[1] and p.drop_p < 0.001
    assert p.verdict.startswith("sft drops 14.0 points more than grpo [") and ": resolved;" in p.verdict
    assert "sft gains 15.0 points more than grpo" in p.verdict
    s = {x.checkpoint: x for x in comp.summaries}
    assert p.drop_diff == pytest.approx(s["sft"].drop - s["grpo"].drop)
    # paired: tighter than treating the two drops' CIs as independent
    width = p.drop_ci[1] - p.drop_ci[0]
    indep = np.hypot(*(np.subtract(*x.drop_ci[::-1]) for x in s.values()))
    assert width < indep
    o = comp.ordering  # one checkpoint per method: resolved, but about checkpoints, never "confirms"
    assert o["verdict"] == "checkpoints only" and o["relations"][0]["claim"] == ">"
    assert "confirms" not in o["sentence"] and "not methods" in o["sentence"] and "not methods" in p.verdict


def test_ordering_states_only_the_papers_relations() -> None:
    # self-sft forgets far more than sft: once "refutes SFT > Self-SFT"; the paper does not state that
    # relation (its 1B numbers have Self-SFT forgetting more), so there is nothing to check
    res = planted(sft_lost_a=0, grpo_lost_a=100)
    comp = compare(res, "base", [("sft", "sft", ("T",)), ("grpo", "self-sft", ("T",))])
    assert comp.pairs[0].drop_ci[1] < 0 and comp.ordering["verdict"] == "not applicable"
    # one item apart: nothing resolved
    close = planted(sft_lost_a=5, grpo_lost_a=24)
    comp = compare(close, "base", [("sft", "iter-sft", ("T",)), ("grpo", "grpo", ("T",))])
    assert comp.pairs[0].verdict.startswith("sft drops 0.2 points more than grpo") and "cannot tell" in (
        comp.pairs[0].verdict
    )
    assert comp.ordering["verdict"] == "not applicable"  # iter-sft against grpo: not a stated relation
    # a method the paper does not rank: no relation, "not applicable"
    comp = compare(close, "base", [("sft", "other", ("T",)), ("grpo", "grpo", ("T",))])
    assert comp.ordering["verdict"] == "not applicable" and comp.pairs


def test_pairs_only_within_a_target() -> None:
    res = planted()
    res["x"] = {s: SuiteResult(**{**r.__dict__, "checkpoint": "x"}) for s, r in res["sft"].items()}
    comp = compare(res, "base", [*CANDS, ("x", "sft", ("A", "B"))])
    assert [(p.a, p.b) for p in comp.pairs] == [("sft", "grpo")]
    res["y"] = res.pop("x")
    comp = compare(res, "base", [("sft", "sft", ("T", "A")), ("y", "grpo", ("A", "T"))])  # the same set
    assert [(p.a, p.b) for p in comp.pairs] == [("sft", "y")]
    assert comp.pairs[0].drop_ci == (0.0, 0.0)  # identical scores, paired resamples: exactly no difference


def test_pareto_per_target_and_leaderboard_agrees(tmp_path: Path) -> None:
    """A Countdown checkpoint (gain 60, drop 0) must not dominate an MMLU one (gain 10, drop 0.5)."""
    r = np.arange(200)
    base = {"countdown": r[:0], "mmlu": r[:100], "arc": r[:100]}
    ckpts = {
        "cd": {"countdown": r[:120], "mmlu": r[:100], "arc": r[:100]},  # gain 60, drop 0
        "mm": {"countdown": r[:0], "mmlu": r[:120], "arc": r[2:100]},  # gain 10, drop (0 + 1) / 2 = 0.5
        "mm2": {"countdown": r[:0], "mmlu": r[:124], "arc": r[1:100]},  # gain 12, drop 0.25: dominates mm
    }
    res = {"base": {s: sr("base", s, v) for s, v in base.items()}}
    res |= {c: {s: sr(c, s, v) for s, v in d.items()} for c, d in ckpts.items()}
    cands = [("cd", "grpo", ("countdown",)), ("mm", "sft", ("mmlu",)), ("mm2", "sft", ("mmlu",))]
    comp = compare(res, "base", cands)
    s = {x.checkpoint: x for x in comp.summaries}
    # countdown's base scores 0 (at chance): left out of mmlu checkpoints' drop, which is arc's alone
    assert (s["cd"].gain, s["cd"].drop, s["mm"].gain, s["mm"].drop) == pytest.approx((60, 0, 10, 1.0))
    assert s["mm"].drop_all == pytest.approx(0.5)
    assert s["cd"].dominated_by == () and s["mm"].dominated_by == ("mm2",) and s["mm2"].dominated_by == ()
    lines = [t["name"] for t in frontier_figure(comp)["data"] if t.get("mode") == "lines"]
    assert lines == ["frontier (countdown)", "frontier (mmlu)"]
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    config = {"checkpoints": ["base", "cd", "mm", "mm2"], "suites": list(base), "eval": {"limit": None}}
    (run / "config.json").write_text(json.dumps(config))
    write_json(comp, run / "results.json", config=config)
    (group,) = collect(tmp_path / "runs", [])[0]
    board = {e.checkpoint: tuple(e.dominated_by) for e in group.entries if not e.is_base}
    assert board == {k: v.dominated_by for k, v in s.items()}


def test_mcnemar_p_equals_binomtest() -> None:
    for m in range(1, 41):
        for k in range(m + 1):
            b = np.r_[np.ones(k), np.zeros(m - k)]
            assert paired_p_value(b, 1 - b) == pytest.approx(binomtest(k, m, 0.5).pvalue, rel=1e-9, abs=1e-15)


@pytest.mark.parametrize(("n", "psi"), [(300, 0.2), (800, 0.1)])
def test_minimum_detectable_drop_has_80_percent_power(n: int, psi: float) -> None:
    """Simulate paired 0/1 data at the formula's drop; the exact McNemar test rejects about 80% of the time."""
    delta = stats.mcnemar_mdd(n, psi, cap=0.7)
    assert delta is not None and stats.mcnemar_n(delta, psi) == pytest.approx(n, abs=2)  # the inverse
    rng = np.random.default_rng(0)

    def power(d: float, sims: int = 2000) -> float:
        # per item: forgotten with (psi + d) / 2, learned with (psi - d) / 2, else unchanged
        u = rng.random((sims, n))
        c = np.where(u < (psi + d) / 2, 0.0, np.where(u < psi, 1.0, 0.5))
        b = np.where(c == 0.0, 1.0, np.where(c == 1.0, 0.0, 1.0))
        c = np.where(c == 0.5, 1.0, c)
        return float(np.mean([paired_p_value(b[k], c[k]) <= 0.05 for k in range(sims)]))

    assert 0.74 <= power(delta) <= 0.86
    assert power(delta / 2) < 0.4  # half the drop is clearly underpowered


def test_suite_power_estimates_discordance_or_says_it_assumed() -> None:
    b = np.r_[np.ones(140), np.zeros(60)]
    c = b.copy()
    c[:20] = 0  # 20 of 200 discordant
    p = stats.suite_power("A", b, [c])
    assert p.model == "mcnemar" and p.spread == pytest.approx(0.1) and "estimated" in p.spread_source
    assert p.mdd == pytest.approx(100 * stats.mcnemar_mdd(200, 0.1, 0.7))
    q = stats.suite_power("A", b, [])
    assert q.spread == pytest.approx(2 * 0.7 * 0.3) and "assumed" in q.spread_source and q.mdd > p.mdd
    g = stats.suite_power("G", b * 0.5 + 0.25, [b * 0.5 + 0.2])
    assert g.model == "paired-normal"


def test_gate_says_underpowered_and_suggests_n() -> None:
    comp = compare(planted(n=200), "base", [("grpo", "grpo", ("T",))])

    dec = decide(comp, GateConfig(max_drop=0.5, max_suite_drop=1.0))
    lines = [w for w in dec.warnings if w.startswith("underpowered")]
    assert any(w.startswith("underpowered: A: max drop 1 pp") and "would suffice" in w for w in lines)
    assert any(w.startswith("underpowered: overall: max drop 0.5 pp") for w in lines)
    need = int(next(w for w in lines if w.startswith("underpowered: A")).split("about n=")[1].split()[0])
    a = next(p for p in comp.power if p.suite == "A")
    assert stats.mcnemar_mdd(need, a.spread, 0.8) <= 0.01 < stats.mcnemar_mdd(need - 5, a.spread, 0.8)
    loose = decide(comp, GateConfig(max_drop=30, max_suite_drop=30))
    assert not [w for w in loose.warnings if w.startswith("underpowered")]


def _group(cid: str, method: str, gain: float, drop: float, seeds: int = 1) -> GroupSummary:
    members = tuple(f"{cid}-{k}" for k in range(seeds)) if seeds > 1 else (cid,)
    return GroupSummary(cid, method, ("T",), members, gain, (gain, gain), drop, (drop, drop))


def test_drop_at_matched_gain_on_planted_curves() -> None:
    # sft: (10, 5) and (30, 20); grpo: (20, 2). Common range (0, 20]: levels 5, 10, 15.
    pts = [("sft-lo", "sft", 10, 5), ("sft-hi", "sft", 30, 20), ("grpo", "grpo", 20, 2)]
    rows_in = [_group(c, m, g, d) for c, m, g, d in pts]
    rng = np.random.default_rng(0)
    bg = {c: g + rng.normal(0, 1, 2000) for c, _, g, _ in pts}
    bd = {c: d + rng.normal(0, 0.5, 2000) for c, _, _, d in pts}
    rows, notes, curves = decisions.matched_gain(rows_in, bg, bd)
    got = {(r.method, r.gain): r for r in rows}
    assert sorted(got) == [("grpo", 5.0), ("grpo", 10.0), ("grpo", 15.0), ("sft", 5.0), ("sft", 10.0),
                           ("sft", 15.0)]  # fmt: skip
    assert got[("sft", 15.0)].drop == pytest.approx(8.75)  # a quarter of the way from (10, 5) to (30, 20)
    assert got[("sft", 5.0)].drop == pytest.approx(2.5)  # on the segment from the base (0, 0) to (10, 5)
    assert got[("grpo", 15.0)].drop == pytest.approx(1.5) and got[("grpo", 5.0)].drop == pytest.approx(0.5)
    for r in rows:
        assert r.drop_ci[0] < r.drop < r.drop_ci[1] and r.drop_ci[1] - r.drop_ci[0] < 5
    assert got[("sft", 15.0)].checkpoints == ("sft-lo", "sft-hi") and not notes
    # grpo's gain is 20 +- 1: at level 15 no resample stops short; nothing is extrapolated past a curve's end
    assert got[("grpo", 15.0)].unreadable == 0.0 and curves[(("T",), "grpo", 15.0)].shape == (2000,)
    # one method only: no common level to compare at
    assert decisions.matched_gain(rows_in[:2], bg, bd)[:2] == ([], [])


def test_matched_gain_through_compare(tmp_path: Path) -> None:
    res = planted()
    res["sft2"] = {s: SuiteResult(**{**r.__dict__, "checkpoint": "sft2"}) for s, r in res["grpo"].items()}
    res["sft2"]["A"] = sr("sft2", "A", np.arange(200)[10:160])
    comp = compare(res, "base", [*CANDS, ("sft2", "sft", ("T",))])
    levels = sorted({m.gain for m in comp.matched_gain})
    assert levels == [8.75, 17.5, 26.25] and {m.method for m in comp.matched_gain} == {"sft", "grpo"}
    html = render_html(comp, tmp_path / "r.html").read_text()
    for part in ('id="pairs-table"', 'id="ordering"', 'id="matched-table"', "min. detectable drop"):
        assert part in html
    assert json.loads(json.dumps(comp.to_dict(), default=str))["pairs"][0]["a"] == "sft"


def test_noise_floor_band_in_comparison_and_frontier() -> None:
    res = planted()
    r = np.arange(200)
    second = {"T": sr("base", "T", r[2:52]), "A": sr("base", "A", r[:160]), "B": sr("base", "B", r[1:161])}
    comp = compare(res, "base", CANDS, noise={s: (v, "batch size 32 -> 16") for s, v in second.items()})
    nf = {f.suite: f for f in comp.noise}
    assert (nf["T"].delta, nf["T"].flips, nf["A"].flips, nf["B"].flips) == (0.0, 4, 0, 2)
    assert nf["B"].delta == 0.0 and nf["B"].ci_low < 0 < nf["B"].ci_high and nf["A"].ci_low == nf["A"].ci_high == 0
    lo, hi = comp.meta["noise_band"]
    assert lo < 0 < hi
    (rect,) = frontier_figure(comp)["layout"]["shapes"]
    assert (rect["x0"], rect["x1"], rect["y0"], rect["y1"]) == (lo, hi, -hi, -lo)
    with pytest.raises(ValueError, match="different items or prompts"):
        compare(res, "base", CANDS, noise={"A": (sr("base", "A", r[:10], n=100), "x")})


def test_spearman_equals_scipy_with_ties() -> None:
    from scipy.stats import spearmanr

    from harness.stats import spearman

    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(3, 20))
        x, y = rng.integers(0, 5, n).tolist(), rng.normal(size=n).round(1).tolist()
        if len(set(x)) < 2 or len(set(y)) < 2:
            assert spearman(x, y) is None
            continue
        assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)


def test_power_quantiles_equal_scipy_norm() -> None:
    from scipy.stats import norm

    from harness.stats import _z

    for alpha, power in ((0.05, 0.8), (0.01, 0.9), (0.1, 0.5)):
        assert _z(alpha, power) == pytest.approx((norm.ppf(1 - alpha / 2), norm.ppf(power)), abs=1e-9)


def test_decoding_noise_zero_by_construction_is_said_in_words(tmp_path: Path) -> None:
    from rich.console import Console

    from harness.table import print_comparison

    res = planted()
    same = {s: (r, "batch size 32 -> 16") for s, r in res["base"].items()}  # greedy, batch-invariant
    comp = compare(res, "base", CANDS, noise=same)
    assert all(f.zero_by_construction for f in comp.noise) and comp.meta["decoding_noise_zero"]
    assert comp.meta["noise_band"] is None and frontier_figure(comp)["layout"]["shapes"] == []
    html = render_html(comp, tmp_path / "r.html").read_text()
    assert 'id="decoding-zero"' in html and "0 by construction" in html
    console = Console(record=True, width=200)
    print_comparison(console, comp)
    assert (
        "0 on every suite by construction" in console.export_text()
        and "decoding noise" not in (console.export_text().split("\n")[0])
    )
    # a sampled suite re-scored with another seed that changed nothing is still a (measured) floor
    seeded = {s: (r, "seed 0 -> 1") for s, r in res["base"].items()}
    comp = compare(res, "base", CANDS, noise=seeded)
    assert not any(f.zero_by_construction for f in comp.noise) and comp.meta["noise_band"] == (0.0, 0.0)
