"""Informative suites: decided from the base alone; a suite generated at chance is left out of the headline drop,
one above chance is not; the gate gates the informative drop and names what it left out.

    python -m pytest tests/test_informative.py -q
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy.stats import beta, binom

from harness import informative
from harness.compare import compare
from harness.gate import GateConfig, decide, junit_xml, markdown
from harness.report import render_html, write_json
from harness.table import print_comparison
from harness.types import SuiteResult


def sr(ckpt: str, suite: str, scores: np.ndarray | list[float]) -> SuiteResult:
    ids = tuple(f"{suite}-{i}" for i in range(len(scores)))
    return SuiteResult(ckpt, f"fp-{ckpt}", suite, "1", "reasoning", "d", "fake@1", ids, ids,
                       tuple(float(x) for x in scores))  # fmt: skip


def test_exact_binomial_tail_and_bound_equal_scipy() -> None:
    for n, k, p in ((400, 100, 0.25), (400, 120, 0.25), (1000, 520, 0.5), (30, 0, 0.1), (12, 12, 0.5)):
        assert informative.binom_sf(k, n, p) == pytest.approx(binom.sf(k - 1, n, p), rel=1e-9, abs=1e-300)
    for n, k in ((120, 117), (200, 40), (50, 0)):
        assert informative.upper_bound(k, n) == pytest.approx(beta.ppf(0.95, k + 1, n - k), abs=1e-9)
    assert informative.upper_bound(7, 7) == 1.0


def test_suite_generated_at_chance_is_left_out_and_above_chance_is_not() -> None:
    rng = np.random.default_rng(0)
    at_chance = [informative.classify("arc", rng.random(500) < 0.25, chance=0.25) for _ in range(200)]
    out = np.mean([not f.informative for f in at_chance])
    assert out >= 0.9  # a one-sided test at alpha 0.05: about 95% of bases at chance are left out
    assert all("not above chance" in f.reason for f in at_chance if not f.informative)
    above = [informative.classify("arc", rng.random(500) < 0.33, chance=0.25) for _ in range(200)]
    assert np.mean([f.informative for f in above]) >= 0.95
    # winogrande-like: 2 options, base 50.0 on 500 items
    f = informative.classify("winogrande", np.r_[np.ones(250), np.zeros(250)], chance=0.5)
    assert not f.informative and f.p_above_chance > 0.4
    # a generation suite (chance 0) is informative as soon as the base gets anything right
    assert informative.classify("gsm8k", np.r_[1.0, np.zeros(99)]).informative
    assert not informative.classify("gsm8k", np.zeros(100)).informative


def test_ceiling_from_the_base_alone() -> None:
    f = informative.classify("overrefusal", np.r_[np.ones(117), np.zeros(3)])  # 97.5 on 120
    assert not f.informative and f.reason.startswith("at ceiling") and f.ceiling == pytest.approx(95.0)
    assert informative.classify("capitals", np.r_[np.ones(100), np.zeros(150)]).informative  # 40 on 250
    assert informative.classify("mmlu", np.r_[np.ones(130), np.zeros(70)], chance=0.25).informative  # 65
    assert not informative.classify("x", np.r_[np.ones(85), np.zeros(15)], ceiling=0.8).informative  # declared
    # partial credit: the normal analogue
    g = informative.classify("judge", np.full(100, 0.3) + np.linspace(-0.1, 0.1, 100), chance=0.25)
    assert g.informative and g.p_above_chance < 0.05
    h = informative.classify("judge", np.full(100, 0.25) + np.linspace(-0.1, 0.1, 100), chance=0.25)
    assert not h.informative and "not above chance" in h.reason


def _planted() -> dict[str, dict[str, SuiteResult]]:
    """T: target. A: base 60%, the candidate loses 20 items. C: base at chance (25% of a 4-option suite),
    the candidate drops it to 5%. So the headline drop is A alone (10 points), over all (10 + 20) / 2 = 15."""
    n = 200
    r = np.arange(n)

    def ones(k: np.ndarray) -> np.ndarray:
        x = np.zeros(n)
        x[k] = 1
        return x

    base = {"T": ones(r[:20]), "A": ones(r[:120]), "C": ones(r[:50])}
    cand = {"T": ones(r[:100]), "A": ones(r[20:120]), "C": ones(r[:10])}
    return {"base": {s: sr("base", s, v) for s, v in base.items()}, "c": {s: sr("c", s, v) for s, v in cand.items()}}


def test_headline_drop_is_over_informative_suites_in_every_output(tmp_path) -> None:
    comp = compare(_planted(), "base", [("c", "sft", ("T",))], n_boot=300, chance={"C": 0.25})
    s = comp.summaries[0]
    assert s.drop == pytest.approx(10.0) and s.drop_all == pytest.approx(15.0)
    comp2 = compare(_planted(), "base", [("c", "sft", ("T",))], n_boot=300)  # chance 0: C is informative
    assert comp2.summaries[0].drop == pytest.approx(15.0) and comp2.meta["left_out"] == {}
    flags = {f.suite: f for f in comp.informative}
    assert not flags["C"].informative and flags["A"].informative
    assert {d.suite: (d.informative, d.in_drop) for d in s.deltas} == {
        "T": (True, False), "A": (True, True), "C": (False, False)}  # fmt: skip
    assert "C" in comp.meta["left_out"] and comp.meta["non_target_drop"]["c"]["suites"] == ["A"]
    assert comp.meta["non_target_drop_all"]["c"]["suites"] == ["A", "C"]
    # gate: the overall drop is the informative one, and it says what it left out and why
    dec = decide(comp, GateConfig(max_drop=50, max_suite_drop=50))
    assert dec.overall.drop == pytest.approx(10.0) and dec.drop_all == pytest.approx(15.0)
    assert dec.left_out and dec.left_out[0].startswith("C: not above chance")
    md = markdown(dec)
    assert (
        "informative non-target suites" in md
        and "C: not above chance" in md
        and "C (at chance: not in the overall drop)" in md
    )
    root = ET.fromstring(junit_xml(dec).split("\n", 1)[1])
    assert any(p.get("name") == "left_out_of_overall_drop" for p in root.iter("property"))
    assert "uninformative" in "".join(x.text or "" for x in root.iter("system-out"))
    html = render_html(comp, tmp_path / "r.html").read_text()
    assert 'id="left-out"' in html and "at chance: not in the drop" in html
    from harness.report import results_frame

    frame = results_frame(comp).to_pylist()
    assert [(r["suite"], r["informative"], r["in_drop"]) for r in frame if not r["is_base"]] == [
        ("T", True, False), ("A", True, True), ("C", False, False)]  # fmt: skip
    write_json(comp, tmp_path / "r.json")
    assert '"informative": false' in (tmp_path / "r.json").read_text()
    from rich.console import Console

    console = Console(record=True, width=200)
    print_comparison(console, comp)
    text = console.export_text()
    assert "uninformative: C: not above chance" in text and "drop, all suites" in text


def test_no_informative_suite_falls_back_to_all_and_says_so() -> None:
    res = _planted()
    res["base"].pop("A")
    res["c"].pop("A")
    comp = compare(res, "base", [("c", "sft", ("T",))], n_boot=200, chance={"C": 0.25})
    assert comp.summaries[0].drop == pytest.approx(20.0)
    assert any("no non-target suite is informative" in n for n in comp.summaries[0].notes)
    dec = decide(comp, GateConfig())
    assert any("no non-target suite is informative" in n for n in dec.notes)


def test_chance_of_a_choice_suite_is_computed_from_its_items() -> None:
    from harness.evaluate import EvalConfig
    from harness.pipeline import chance_for
    from harness.suites import Suite
    from harness.types import Item

    class Mixed(Suite):
        name, version, kind, area, chance = "mixed", "1", "choice", "reasoning", 0.25

        def load(self, split: str = "eval") -> list[Item]:
            return [Item(f"m{i}", {"choices": ["a", "b", "c", "d", "e"][: 2 + i % 4]}) for i in range(8)]

        def choices(self, item: Item) -> list[str]:
            return item.data["choices"]

    class Gen(Suite):
        name, version, area, chance = "gen", "1", "math", 0.0
        ceiling = 0.9

    chance, ceiling = chance_for([Mixed(), Gen()], EvalConfig(engine="fake", limit=4))
    assert chance["mixed"] == pytest.approx((1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 4)  # the first 4 items evaluated
    assert chance["gen"] == 0.0 and ceiling == {"gen": 0.9}
