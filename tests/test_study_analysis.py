"""scripts/study_analysis.py on planted per-item scores: a drop planted in one arm is found at matched gain,
no planted difference is not, and an arm whose curve never gains has no matched level (never extrapolated)."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "study_analysis.py"


@pytest.fixture
def sa(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    spec = importlib.util.spec_from_file_location("study_analysis", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["study_analysis"] = mod
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "OUT", tmp_path)
    monkeypatch.setattr(mod, "ITEMS", tmp_path / "items.csv.gz")
    (tmp_path / "checkpoints.yaml").write_text("checkpoints: []\n")
    return mod


def plant(sa, far_drop: float, far_gain: float = 10.0, grpo_gain: float = 10.0) -> None:
    """Base right on 40% of every suite; each arm flips items right->wrong (drop) on every non-target suite and
    wrong->right on the target (gain), by fixed fractions growing with the step; 3 seeds per arm."""
    rng = np.random.default_rng(0)
    rows = []
    n = {s: 200 for s in [sa.TARGET, *sa.HEADLINE]}
    base = {s: (rng.random(k) < 0.4).astype(float) for s, k in n.items()}
    for s, x in base.items():
        rows += [(sa.BASE, "base", sa.BASE, 0, s, f"{s}-{i}", v) for i, v in enumerate(x)]
    for arm, drop, gain in (("sft-far", far_drop, far_gain), ("grpo", 0.0, grpo_gain)):
        for seed in range(3):
            run = f"{arm}-lr1e-4-s{seed}"
            for step in sa.STEPS:
                frac = step / 24
                for s, x in base.items():
                    c = x.copy()
                    if s == sa.TARGET:
                        wrong = np.flatnonzero(c == 0)
                        c[wrong[: int(round(gain / 100 * len(c) * frac))]] = 1
                    else:
                        right = np.flatnonzero(c == 1)
                        c[right[: int(round(drop / 100 * len(c) * frac))]] = 0
                    cid = run if step == 24 else f"{run}-step{step}"
                    rows += [(cid, arm, run, step, s, f"{s}-{i}", v) for i, v in enumerate(c)]
    with gzip.open(sa.ITEMS, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["checkpoint", "arm", "run", "step", "suite", "item", "score"])
        w.writerows(rows)


def test_planted_drop_is_found_at_matched_gain(sa) -> None:
    plant(sa, far_drop=8.0)
    text = sa.analyse()
    assert "| sft-far | 3 | +10.0" in text and "Decision at the middle level (STUDY.md's rule): **supports**." in text
    # the planted drop is 8 points on every non-target suite at step 24; at gain 5 (half the way) it is 4
    assert "| 5.0 | +4.0 | +0.0 |" in text
    # every arm at the same levels (descriptive): at gain 5.0, sft-far's drop is Q1's +4.0 and grpo's is 0
    every = text.split("## Drop at matched gain, every arm")[1].split("## Q2")[0]
    rows = {r.split(" | ")[0].strip("| "): r.split(" | ")[1:] for r in every.splitlines() if r.startswith("| ")}
    assert rows["arm"][1] == "gain 5.0" and rows["sft-far"][1].startswith("+4.0 [")
    assert rows["grpo"][1].startswith("+0.0 [+0.0, +0.0]")


def test_no_planted_difference_cannot_tell(sa) -> None:
    plant(sa, far_drop=0.0)
    assert "**cannot tell**" in sa.analyse()


def test_no_gain_no_matched_level(sa) -> None:
    plant(sa, far_drop=8.0, grpo_gain=0.0)
    assert "**No matched gain**" in sa.analyse()
    assert np.isnan(sa.read_trajectory(5.0, np.array([1.0, 2.0]), np.array([0.5, 1.0])))  # never extrapolated
