"""The study's primary analysis (reports/paper-demo/STUDY.md), recomputable without a model.

    .venv/bin/python scripts/study_analysis.py export    # per-item scores from the store -> items.csv.gz
    .venv/bin/python scripts/study_analysis.py analyse   # Q1, Q2, Q3 from items.csv.gz -> ANALYSIS.md

`export` needs the study's checkpoints and their stored records (this machine, after scripts/paper_demo.sh);
`analyse` needs only the committed reports/paper-demo/items.csv.gz and checkpoints.yaml (numpy, no torch).
Every checkpoint is paired with the base item by item; a resample draws each suite's items once (shared by all
checkpoints, as compare does) and, per arm, its seeds with replacement (the two-level bootstrap of STUDY.md).
"""

from __future__ import annotations

import csv
import gzip
import math
import sys
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import yaml

from harness.decisions import holm, read_curve  # Holm; compare's matched-gain reading (the sensitivity check)
from harness.groups import bootstrap_p
from harness.stats import percentile_ci

OUT = Path("reports/paper-demo")
ITEMS = OUT / "items.csv.gz"
BASE = "smollm2-135m"
TARGET = "addsub"
# Amendment 1: the headline drop's 7 informative suites, and the secondary drop's 3 (declared before any score)
HEADLINE = ["capitals", "elements", "hellaswag", "ifeval_rlvr", "gsm8k", "harmbench", "donotanswer"]
SECONDARY = ["capitals", "hellaswag", "ifeval_rlvr"]
REPORTED = ["mmlu", "mmlu:lenient"]  # at chance: reported, never in the drop
ARMS = ["sft-far", "sft-own", "self-sft", "iter-sft", "grpo"]
FINAL = dict(addsub=200, capitals=250, elements=236, mmlu=50, hellaswag=300, ifeval_rlvr=150, gsm8k=50)
FINAL |= {"harmbench": 60, "donotanswer": 60, "mmlu:lenient": 50}
TRAJ = {s: 30 for s in HEADLINE} | {TARGET: 100}
STEPS = (8, 16, 24)  # every run saves at 8 and 16; 24 is its final checkpoint
N_BOOT, SEED = 2000, 0


def study_entries() -> list[dict]:
    """The registry's base and every checkpoint of the chosen-rate runs (arm-lrLR-sSEED[-stepN])."""
    doc = yaml.safe_load((OUT / "checkpoints.yaml").read_text())
    chosen = {}
    for row in (OUT / "sweep" / "chosen.tsv").read_text().splitlines()[1:]:
        arm, lr, _, mark = row.split("\t")
        if mark == "*":
            chosen[arm] = lr
    out = []
    for c in doc["checkpoints"]:
        if c["id"] == BASE:
            out.append(c | {"arm": "base", "run": BASE, "step": 0})
            continue
        run = c["id"].split("-step")[0]
        arm = run.rsplit("-lr", 1)[0]
        if arm in chosen and run.startswith(f"{arm}-lr{chosen[arm]}-s"):
            step = int(c["id"].split("-step")[1]) if "-step" in c["id"] else 24
            out.append(c | {"arm": arm, "run": run, "step": step})
    return out


def export() -> None:
    from harness.checkpoints.registry import Registry
    from harness.commandline import eval_config
    from harness.evaluate import MissingRecordsError, evaluate
    from harness.suites import get_suite

    reg = Registry.load(OUT / "checkpoints.yaml")
    rows = []
    for e in study_entries():
        limits = FINAL if e["step"] in (0, 24) else TRAJ
        ck = reg.resolve(e["id"])
        for suite, n in limits.items():
            cfg = eval_config("hf", n, max_new_tokens=96)
            try:
                res = evaluate(reg, [ck], [get_suite(suite)], cfg, cached_only=True)[ck.id]
            except MissingRecordsError:
                print(f"not evaluated (left out): {e['id']} {suite}", file=sys.stderr)
                continue
            (r,) = res.values()
            rows += [
                (e["id"], e["arm"], e["run"], e["step"], suite, i, s) for i, s in zip(r.item_ids, r.scores, strict=True)
            ]
    with gzip.open(ITEMS, "wt", newline="") as f:
        w = csv.writer(f)
        w.writerow(["checkpoint", "arm", "run", "step", "suite", "item", "score"])
        w.writerows(rows)
    print(f"{len(rows)} item scores -> {ITEMS}")


def load() -> tuple[dict, dict]:
    """scores[(checkpoint, suite)] = array in the base's item order; meta[checkpoint] = (arm, run, step)."""
    raw: dict[tuple[str, str], dict[str, float]] = defaultdict(dict)
    meta = {}
    with gzip.open(ITEMS, "rt") as f:
        for r in csv.DictReader(f):
            raw[(r["checkpoint"], r["suite"])][r["item"]] = float(r["score"])
            meta[r["checkpoint"]] = (r["arm"], r["run"], int(r["step"]))
    order = {s: list(raw[(BASE, s)]) for (c, s) in raw if c == BASE}
    scores = {}
    for (c, s), by_item in raw.items():
        ids = [i for i in order[s] if i in by_item]
        assert len(ids) == len(by_item), f"{c} {s}: items the base lacks"
        scores[(c, s)] = np.array([by_item[i] for i in ids])
    return scores, meta


class Study:
    """Per-checkpoint gain and drop and their item resamples; arms' seed-level resamples on top."""

    def __init__(self, scores: dict, meta: dict) -> None:
        self.scores, self.meta = scores, meta
        rng = np.random.default_rng(SEED)
        suites = {s for _, s in scores}
        # shared item indices per (suite, item count): every checkpoint with that many items uses the same draw
        self.idx = {}
        for s in sorted(suites):
            for n in sorted({len(v) for (c, t), v in scores.items() if t == s}):
                self.idx[(s, n)] = rng.integers(0, n, size=(N_BOOT, n))
        self.seed_rng = np.random.default_rng(SEED + 1)

    def delta(self, ckpt: str, suite: str) -> tuple[float, np.ndarray]:
        """(score - base) in points and its N_BOOT paired resamples."""
        c = self.scores[(ckpt, suite)]
        d = (c - self.scores[(BASE, suite)][: len(c)]) * 100
        return float(d.mean()), d[self.idx[(suite, len(c))]].mean(axis=1)

    def gain(self, ckpt: str) -> tuple[float, np.ndarray]:
        return self.delta(ckpt, TARGET)

    def drop(self, ckpt: str, suites: list[str] = HEADLINE) -> tuple[float, np.ndarray]:
        parts = [self.delta(ckpt, s) for s in suites]
        return -float(np.mean([p for p, _ in parts])), -np.mean([b for _, b in parts], axis=0)

    def runs(self, arm: str) -> list[str]:
        return sorted({r for c, (a, r, _) in self.meta.items() if a == arm})

    def complete(self, arm: str) -> bool:
        """Every checkpoint of the arm has the target and every headline suite (a partial export leaves it out)."""
        ckpts = [c for c, (a, _, _) in self.meta.items() if a == arm]
        steps_ok = all({s for c, (a, r2, s) in self.meta.items() if r2 == r} == set(STEPS) for r in self.runs(arm))
        return bool(ckpts) and steps_ok and all((c, s) in self.scores for c in ckpts for s in [TARGET, *HEADLINE])

    def ckpt(self, run: str, step: int) -> str:
        return next(c for c, (_, r, s) in self.meta.items() if r == run and s == step)

    def seed_draws(self, arm: str) -> np.ndarray:
        """(N_BOOT, n_seeds) run indices drawn with replacement: the seed level of the two-level bootstrap."""
        n = len(self.runs(arm))
        return self.seed_rng.integers(0, n, size=(N_BOOT, n))

    def arm_point(self, arm: str, step: int, what: str, draws: np.ndarray, suites: list[str] = HEADLINE):
        """An arm's mean over seeds of gain or drop at `step`: point estimate and two-level resamples."""
        vals = [self.gain(self.ckpt(r, step)) if what == "gain" else self.drop(self.ckpt(r, step), suites)
                for r in self.runs(arm)]  # fmt: skip
        point = float(np.mean([v for v, _ in vals]))
        boots = np.stack([b for _, b in vals], axis=1)  # (N_BOOT, n_seeds)
        return point, np.take_along_axis(boots, draws, axis=1).mean(axis=1)


def ci(b: np.ndarray) -> tuple[float, float]:
    return percentile_ci(b[np.isfinite(b)])  # unreadable (nan) resamples are counted apart, never read


def p_two_sided(b: np.ndarray) -> float:
    return bootstrap_p(b[np.isfinite(b)])  # compare's bootstrap p; unreadable (nan) resamples left out


def read_trajectory(level: float, gains: np.ndarray, drops: np.ndarray) -> float:
    """The drop where the run's path (base at (0, 0), then its steps in order) first reaches `level` gain; nan
    when it never does (never extrapolated). Not decisions.read_curve: that one reads unordered checkpoints
    (an lr sweep) on a line through the base and the positive-gain points, so a run that first loses its target
    and then recovers would be read on a line none of its checkpoints lies on."""
    g, d = np.concatenate([[0.0], gains]), np.concatenate([[0.0], drops])
    for k in range(1, len(g)):
        lo, hi = g[k - 1], g[k]
        if (lo - level) * (hi - level) <= 0 and hi != lo:
            return float(d[k - 1] + (d[k] - d[k - 1]) * (level - lo) / (hi - lo))
    return math.nan


Reader = Callable[[float, np.ndarray, np.ndarray], float]


def read_resamples(reader: Reader, level: float, c: tuple[np.ndarray, ...]) -> np.ndarray:
    """`reader` (read_trajectory or read_curve) at `level` on each of a curve's N_BOOT resampled paths."""
    return np.array([reader(level, c[1][r], c[3][r]) for r in range(N_BOOT)])


def fmt(x: float, lo: float, hi: float) -> str:
    return f"{x:+.1f} [{lo:+.1f}, {hi:+.1f}]"


def analyse() -> str:
    st = Study(*load())
    steps = sorted({s for _, _, s in st.meta.values() if s > 0})
    draws = {a: st.seed_draws(a) for a in ARMS if st.complete(a)}
    arms = list(draws)
    lines = ["# Study analysis (generated by `scripts/study_analysis.py analyse` from items.csv.gz)", ""]
    lines += [f"{N_BOOT} two-level paired resamples (seeds, then items shared by all checkpoints), seed {SEED}. "
              "Points (0-100); drop > 0 = forgetting.", ""]  # fmt: skip
    # per arm, final checkpoints
    lines += ["## Final checkpoints (step 24), per arm", ""]
    lines += ["| arm | seeds | gain (addsub) | drop (7 suites) | secondary drop (3) | "
              + " | ".join(REPORTED) + " |", "|---|---|---|---|---|" + "---|" * len(REPORTED)]  # fmt: skip
    finals = {}
    for a in arms:
        g, gb = st.arm_point(a, 24, "gain", draws[a])
        d, db = st.arm_point(a, 24, "drop", draws[a])
        d2, d2b = st.arm_point(a, 24, "drop", draws[a], SECONDARY)
        finals[a] = (g, gb, d, db)
        rep = []
        for s in REPORTED:
            vals = [st.delta(st.ckpt(r, 24), s)[0] for r in st.runs(a) if (st.ckpt(r, 24), s) in st.scores]
            rep.append(f"{np.mean(vals):+.1f}" if vals else "—")
        lines.append(f"| {a} | {len(st.runs(a))} | {fmt(g, *ci(gb))} | {fmt(d, *ci(db))} | {fmt(d2, *ci(d2b))} | "
                     + " | ".join(rep) + " |")  # fmt: skip
    lines += ["", "MMLU columns: score - base (strict; lenient re-scores the same generations), not a drop.", ""]
    # per-run rows
    lines += ["## Every run", "", "| run | step | gain | drop (7) | data score (nats/token) |", "|---|---|---|---|---|"]
    reg = {c["id"]: c for c in yaml.safe_load((OUT / "checkpoints.yaml").read_text())["checkpoints"]}
    for a in arms:
        for r in st.runs(a):
            for s in steps:
                c = st.ckpt(r, s)
                g, gb = st.gain(c)
                d, db = st.drop(c)
                ds = (reg.get(c, {}).get("data_score") or {}).get("mean_nll")
                lines.append(f"| {r} | {s} | {fmt(g, *ci(gb))} | {fmt(d, *ci(db))} | {'' if ds is None else ds} |")
    lines += [""]
    lines += q1(st, draws, steps) + every_arm_matched(st, draws, steps) + q2(st, reg) + q3(finals)
    return "\n".join(lines) + "\n"


def q1(st: Study, draws: dict, steps: list[int]) -> list[str]:
    """drop(sft-far) - drop(grpo) at matched gain on the arms' mean trajectories through the base."""
    out = ["## Q1: drop(sft-far) - drop(grpo) at matched gain", ""]
    curves = {a: curve(st, a, draws[a], steps) for a in ("sft-far", "grpo")}
    top = min(float(curves[a][0].max()) for a in curves)
    dfin = curves["sft-far"][2][-1] - curves["grpo"][2][-1]
    bfin = curves["sft-far"][3][:, -1] - curves["grpo"][3][:, -1]
    reached = ", ".join(f"{a} {curves[a][0].max():+.1f}" for a in curves)
    out.append(f"Highest mean gain reached: {reached}.")
    if top <= 0:
        out += ["", "**No matched gain**: an arm never gains on its mean trajectory, so the declared reading has no "
                "common level. Decision (STUDY.md): cannot tell at matched gain.",
                "", f"Unmatched, at step 24: drop(sft-far) - drop(grpo) = {fmt(dfin, *ci(bfin))} "
                f"(p = {p_two_sided(bfin):.3g}).", ""]  # fmt: skip
        return out
    out += ["", "| gain level | drop(sft-far) | drop(grpo) | difference [95% CI] | unreadable resamples |",
            "|---|---|---|---|---|"]  # fmt: skip
    verdicts = []
    for k in (1, 2, 3):
        level = top * k / 4
        pts = {a: read_trajectory(level, c[0], c[2]) for a, c in curves.items()}
        bs = {a: read_resamples(read_trajectory, level, c) for a, c in curves.items()}
        diff = bs["sft-far"] - bs["grpo"]
        lo, hi = ci(diff)
        verdicts.append("supports" if lo > 0 else "contradicts" if hi < 0 else "cannot tell")
        out.append(f"| {level:.1f} | {pts['sft-far']:+.1f} | {pts['grpo']:+.1f} | "
                   f"{fmt(pts['sft-far'] - pts['grpo'], lo, hi)} | {int(np.isnan(diff).sum())} |")  # fmt: skip
    mid = top / 2  # the same middle level, read as compare reads checkpoints (decisions.read_curve)
    cp = {a: read_curve(mid, c[0], c[2]) for a, c in curves.items()}
    cb = {a: read_resamples(read_curve, mid, c) for a, c in curves.items()}
    cdiff = cb["sft-far"] - cb["grpo"]
    out += ["", f"Decision at the middle level (STUDY.md's rule): **{verdicts[1]}**.",
            f"Sensitivity: compare's reading (a line through the base and the positive-gain points, step order "
            f"ignored) at {mid:.1f}: {fmt(cp['sft-far'] - cp['grpo'], *ci(cdiff))} "
            f"({int(np.isnan(cdiff).sum())} unreadable).",
            f"Unmatched, at step 24: {fmt(dfin, *ci(bfin))} (p = {p_two_sided(bfin):.3g}).", ""]  # fmt: skip
    return out


def curve(st: Study, arm: str, draws: np.ndarray, steps: list[int]) -> tuple[np.ndarray, ...]:
    """An arm's mean (gain, drop) trajectory over its seeds: points and (N_BOOT, steps) two-level resamples."""
    gs = [st.arm_point(arm, s, "gain", draws) for s in steps]
    ds = [st.arm_point(arm, s, "drop", draws) for s in steps]
    return (np.array([g for g, _ in gs]), np.stack([b for _, b in gs], 1),
            np.array([d for d, _ in ds]), np.stack([b for _, b in ds], 1))  # fmt: skip


def every_arm_matched(st: Study, draws: dict, steps: list[int]) -> list[str]:
    """Each arm's drop at gain levels every arm's mean trajectory reaches, read as Q1 reads (descriptive: the
    declared decision is Q1's pair; this puts the other arms on the same footing)."""
    curves = {a: curve(st, a, draws[a], steps) for a in draws}
    top = min(float(c[0].max()) for c in curves.values())
    out = ["## Drop at matched gain, every arm (descriptive, read as Q1)", ""]
    if top <= 0:
        return out + ["An arm never gains on its mean trajectory: no level every arm reaches.", ""]
    levels = [top * k / 4 for k in (1, 2, 3)]
    out += [f"Levels: quarters of {top:.1f}, the lowest highest-mean-gain among the arms. Cells: drop [95% CI] "
            "(resamples that never reach the level are left out and counted).", "",
            "| arm | " + " | ".join(f"gain {x:.1f}" for x in levels) + " |",
            "|---|" + "---|" * len(levels)]  # fmt: skip
    for a, c in curves.items():
        cells = []
        for level in levels:
            pt = read_trajectory(level, c[0], c[2])
            bs = read_resamples(read_trajectory, level, c)
            cells.append(f"{fmt(pt, *ci(bs))} ({int(np.isnan(bs).sum())} unread)")
        out.append(f"| {a} | " + " | ".join(cells) + " |")
    return out + [""]


def q2(st: Study, reg: dict) -> list[str]:
    """OLS slope of final drop against the run's data off-policy score, runs resampled within arms + items."""
    out = ["## Q2: drop against the training data's off-policy score", ""]
    xs, ys, bs, arm_of = [], [], [], []
    for a in [a for a in ARMS if st.complete(a)]:
        for r in st.runs(a):
            c = st.ckpt(r, 24)
            ds = (reg.get(c, {}).get("data_score") or {}).get("mean_nll")
            if ds is None:
                out.append(f"- {r}: no data score recorded (left out of the fit)")
                continue
            d, db = st.drop(c)
            xs.append(float(ds)), ys.append(d), bs.append(db), arm_of.append(a)
    if len(set(xs)) < 2:
        return out + ["", "Fewer than two distinct data scores: no slope.", ""]
    x, y, b = np.array(xs), np.array(ys), np.stack(bs, 1)
    slope = float(np.polyfit(x, y, 1)[0])
    rng = np.random.default_rng(SEED + 2)
    groups = {a: [i for i, t in enumerate(arm_of) if t == a] for a in dict.fromkeys(arm_of)}
    sb = []
    for r in range(N_BOOT):
        pick = [int(rng.choice(ix)) for ix in groups.values() for _ in ix]
        xr = x[pick]
        sb.append(np.polyfit(xr, b[r, pick], 1)[0] if np.ptp(xr) > 0 else np.nan)
    lo, hi = ci(np.array(sb))
    verdict = "supports the mechanism" if lo > 0 else "against it" if hi < 0 else "cannot tell"
    out += [f"{len(x)} runs; slope = {fmt(slope, lo, hi)} drop points per nat/token: **{verdict}**.", ""]
    return out


def q3(finals: dict) -> list[str]:
    """The paper's relations at step 24, Holm-adjusted as one family."""
    rel = [("grpo", "sft-far", "GRPO forgets less than SFT (paper §3)"),
           ("iter-sft", "sft-far", "Iterative-SFT forgets less than SFT (paper §4)")]  # fmt: skip
    rows = []
    for a, b, text in rel:
        if a in finals and b in finals:
            diff = finals[a][3] - finals[b][3]
            rows.append((text, finals[a][2] - finals[b][2], diff, p_two_sided(diff)))
    adj = holm([r[3] for r in rows])
    out = ["## Q3: the paper's relations (step 24, Holm over the family)", "",
           "| relation | drop difference [95% CI] | p | Holm p | verdict |", "|---|---|---|---|---|"]  # fmt: skip
    for (text, d, diff, p), pa in zip(rows, adj, strict=True):
        v = ("confirms" if d < 0 else "refutes") if pa <= 0.05 else "cannot tell"
        out.append(f"| {text} | {fmt(d, *ci(diff))} | {p:.3g} | {pa:.3g} | {v} |")
    return out + [""]


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "analyse"
    if cmd == "export":
        export()
    elif cmd == "analyse":
        text = analyse()
        (OUT / "ANALYSIS.md").write_text(text)
        print(text)
    else:
        sys.exit(f"study_analysis.py: unknown command {cmd!r} (export | analyse)")
