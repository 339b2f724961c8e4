"""The comparator on hand-computed examples: gain, drop, flips, CIs, BH, Pareto, refusals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.compare import ComparisonError, benjamini_hochberg, compare, paired_p_value
from harness.decisions import interval_dominators
from harness.types import SuiteResult


def sr(
    ckpt: str,
    suite: str,
    scores: list[float],
    version: str = "1",
    decoding: str = "d",
    ids=None,
    hashes=None,
    area: str = "math",
) -> SuiteResult:
    ids = tuple(ids or [f"{suite}-{i}" for i in range(len(scores))])
    return SuiteResult(
        ckpt,
        f"fp-{ckpt}",
        suite,
        version,
        area,
        decoding,
        "fake@1",
        ids,
        tuple(hashes or [f"h{i}" for i in ids]),
        tuple(float(s) for s in scores),
        tuple(f"answer {s}" for s in scores),
    )


def test_gain_drop_hand_computed() -> None:
    # base: A 2/4 = 50, B 4/4 = 100, C 3/4 = 75; sft: A 4/4 (+50), B 2/4 (-50), C 2/4 (-25)
    results = {
        "base": {
            "A": sr("base", "A", [1, 1, 0, 0]),
            "B": sr("base", "B", [1, 1, 1, 1]),
            "C": sr("base", "C", [1, 1, 1, 0]),
        },
        "sft": {
            "A": sr("sft", "A", [1, 1, 1, 1]),
            "B": sr("sft", "B", [1, 0, 1, 0]),
            "C": sr("sft", "C", [1, 0, 1, 0]),
        },
    }
    comp = compare(results, "base", [("sft", "sft", ("A",))])
    s = comp.summaries[0]
    assert s.gain == pytest.approx(50.0)
    assert s.drop == pytest.approx((50 + 25) / 2)  # unweighted over non-target suites
    d = {x.suite: x for x in s.deltas}
    assert (d["A"].learned, d["A"].forgotten) == (2, 0)
    assert (d["B"].forgotten, d["B"].learned) == (2, 0)
    assert (d["C"].forgotten, d["C"].learned) == (1, 0)
    assert d["A"].is_target and not d["B"].is_target
    assert d["A"].ci_low <= 50 <= d["A"].ci_high
    assert s.gain_ci[0] <= s.gain <= s.gain_ci[1] and s.drop_ci[0] <= s.drop <= s.drop_ci[1]
    assert comp.scores["base"]["C"] == pytest.approx(75.0)
    # exact McNemar: 2 discordant pairs all one way -> p = 0.5
    assert d["A"].p_value == pytest.approx(0.5)
    # deterministic: same inputs, same CIs
    again = compare(results, "base", [("sft", "sft", ("A",))])
    assert again.summaries[0].deltas == s.deltas
    assert len(comp.forgotten) == 3 and {f.suite for f in comp.forgotten} == {"B", "C"}


def test_no_trained_on_gives_deltas_only() -> None:
    results = {"base": {"A": sr("base", "A", [1, 0])}, "x": {"A": sr("x", "A", [1, 1])}}
    s = compare(results, "base", [("x", "other", ())]).summaries[0]
    assert s.gain is None and s.drop is None and s.deltas[0].delta == pytest.approx(50)
    assert any("per-suite deltas only" in n for n in s.notes)


def test_interval_dominance_needs_intervals_apart() -> None:
    """The leaderboard's rule: better points alone dominate nothing; an axis with the intervals apart does."""

    def pt(g: float, d: float, w: float) -> tuple[float, tuple[float, float], float, tuple[float, float]]:
        return (g, (g - w, g + w), d, (d - w, d + w))

    base = (0.0, (0.0, 0.0), 0.0, (0.0, 0.0))
    dom = interval_dominators({"a": pt(10, 5, 1), "b": pt(13, 3, 1), "close": pt(10.5, 4.5, 1), "base": base})
    assert dom["a"] == ["b"]  # b's gain interval [12, 14] lies above a's [9, 11], and b's drop is lower
    assert dom["close"] == ["b"] and "close" not in dom["a"]  # close beats a on both points, intervals overlap
    assert dom["b"] == [] and dom["base"] == []
    x = {"x": pt(-3, 2, 1), "base": base}  # gain interval [-4, -2] lies below the base's exact 0
    assert interval_dominators(x)["x"] == ["base"]
    assert interval_dominators({"y": pt(-0.5, 0.5, 1), "base": base})["y"] == []  # both intervals cover 0


def test_bh_matches_hand_computation() -> None:
    # p sorted 0.01,0.02,0.03,0.5 with m=4 -> 0.04,0.04,0.04,0.5
    assert benjamini_hochberg([0.03, 0.5, 0.01, 0.02]) == pytest.approx([0.04, 0.5, 0.04, 0.04])


def test_paired_p_values() -> None:
    b = np.array([1.0] * 30 + [0.0] * 30)
    c = np.array([0.0] * 20 + [1.0] * 10 + [0.0] * 30)
    assert paired_p_value(b, c) == pytest.approx(2 * 0.5**20, rel=1e-6)  # 20 forgotten, 0 learned
    assert paired_p_value(b, b) == 1.0
    cont_b = np.linspace(0, 1, 40)
    assert paired_p_value(cont_b, cont_b - 0.3) < 0.01  # sign-flip permutation for partial credit


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"version": "2"}, "data version differs"),
        ({"decoding": "other"}, "decoding differs"),
        ({"ids": ["A-0", "A-9"]}, "item set differs"),
        ({"hashes": ["h", "hA-1"]}, "prompt hash differs"),
    ],
)
def test_refuses_incomparable_runs(change: dict, needle: str) -> None:
    results = {"base": {"A": sr("base", "A", [1, 0])}, "x": {"A": sr("x", "A", [1, 1], **change)}}
    with pytest.raises(ComparisonError, match=needle):
        compare(results, "base", [("x", "sft", ("A",))])


def test_item_order_does_not_matter() -> None:
    base = sr("base", "A", [1, 0, 0], ids=["a", "b", "c"])
    x = sr("x", "A", [0, 1, 0], ids=["c", "a", "b"])  # a=1, b=0, c=0 -> identical to base
    d = compare({"base": {"A": base}, "x": {"A": x}}, "base", [("x", "sft", ())]).summaries[0].deltas[0]
    assert d.delta == 0 and d.forgotten == 0 and math.isclose(d.p_value, 1.0)
