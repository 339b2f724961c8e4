"""Replicate groups: checkpoints of one recipe that differ only in their training seed, so that method against
method compares methods and not single training runs. Pure (numpy, no torch).

A group is named by the registry's `group:` field (or `compare --group` for paths); otherwise checkpoints
sharing base, method, trained_on and every hparam but `seed` form one (only those that record a seed: a
checkpoint without one is a group of its own). Per group, gain and drop come from a two-level paired
bootstrap: each resample draws the seeds with replacement, then uses the item resample every checkpoint
shares (compare.boot_indices), so group against group stays paired on items. The seed spread per suite is
the noise floor where replicates exist; `step_floor` is the hook for adjacent steps of one run.

    python -m pytest tests/test_groups.py -q
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from harness.types import SuiteFloor, SuiteResult, stable_hash

if TYPE_CHECKING:
    from harness.types import Checkpoint

Z95 = 1.959963984540054
# hparams that are not the recipe: the seed, and what a run measured about itself (an RL run's steps without
# learning signal differ from seed to seed and must not split its replicates)
NOT_RECIPE = frozenset({"seed", "no_signal_steps"})


def _shared_name(ids: Sequence[str]) -> str:
    """The members' common prefix, cut back to whole name parts: sft-lr1e-4-s0/s1/s2 -> sft-lr1e-4 (not ...-s)."""
    prefix = os.path.commonprefix(list(ids))
    if any(len(i) > len(prefix) and i[len(prefix)] not in "-_." for i in ids):
        cut = max(prefix.rfind(c) for c in "-_.")  # the prefix ends inside a part (the seed's "s"): drop that part
        prefix = prefix[:cut] if cut > 0 else prefix
    return prefix.rstrip("-_.") or ids[0]


def assign(ckpts: Sequence[Checkpoint]) -> dict[str, str]:
    """checkpoint id -> group name for the candidates: explicit `group` first, else derived from the recipe."""
    keys: dict[str, str] = {}
    members: dict[str, list[str]] = {}
    for c in ckpts:
        if c.group:
            key = "explicit:" + c.group
        elif "seed" in c.hparams:
            recipe = {k: v for k, v in c.hparams.items() if k not in NOT_RECIPE}
            key = "recipe:" + stable_hash([c.base, c.method, sorted(c.trained_on), recipe])
        else:
            key = "single:" + c.id
        keys[c.id] = key
        members.setdefault(key, []).append(c.id)
    names: dict[str, str] = {}
    for key, ids in members.items():
        if key.startswith("explicit:"):
            names[key] = key.split(":", 1)[1]
        elif len(ids) == 1:
            names[key] = ids[0]
        else:
            names[key] = f"{_shared_name(ids)} ({len(ids)} seeds)"
    return {cid: names[key] for cid, key in keys.items()}


def two_level(members: Sequence[str], boot: Mapping[str, np.ndarray], seed: int, name: str) -> np.ndarray:
    """Bootstrap of the group mean: per resample r, draw len(members) seeds with replacement and average
    their item-resample-r values (boot[m][r] was computed on the indices every checkpoint shares)."""
    stack = np.stack([boot[m] for m in members])  # (k, n_boot)
    k, n_boot = stack.shape
    if k == 1:
        return stack[0]
    sub = int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "little")
    pick = np.random.default_rng([seed, sub, 7]).integers(0, k, size=(n_boot, k))
    return stack[pick, np.arange(n_boot)[:, None]].mean(axis=1)


def bootstrap_p(boot: np.ndarray) -> float:
    """Two-sided bootstrap p-value of "the difference is 0": twice the smaller tail at 0, at least 1/(B+1)."""
    if boot.size == 0:
        return 1.0
    tail = min(float(np.mean(boot <= 0)), float(np.mean(boot >= 0)))
    return float(min(1.0, max(2 * tail, 1 / (boot.size + 1))))


def seed_floor(scores: Mapping[str, Mapping[str, float]], groups: Mapping[str, Sequence[str]]) -> list[SuiteFloor]:
    """Per suite, the pooled within-group sd of the score (points) over groups with >= 2 seeds; the band is
    +-1.96 sqrt(2) sd: what two seeds of one recipe differ by (95%), the floor under a method difference."""
    reps = {g: m for g, m in groups.items() if len(m) >= 2}
    if not reps:
        return []
    suites = sorted({s for ms in reps.values() for c in ms for s in scores.get(c, {})})
    out = []
    for s in suites:
        ss, dof, used = 0.0, 0, 0
        for ms in reps.values():
            x = np.array([scores[c][s] for c in ms if s in scores.get(c, {})])
            if x.size >= 2:
                ss += float(np.sum((x - x.mean()) ** 2))
                dof += x.size - 1
                used += 1
        if not dof:
            continue
        sd = math.sqrt(ss / dof)
        half = Z95 * math.sqrt(2) * sd
        out.append(SuiteFloor(s, "seed", used, sd, -half, half,
                              f"pooled sd over {used} group(s), {dof} degree(s) of freedom"))  # fmt: skip
    return out


def step_floor(steps: Sequence[Mapping[str, SuiteResult]]) -> list[SuiteFloor]:
    """The hook for adjacent checkpoints of ONE run (step k vs step k+1, in step order): per suite, the root
    mean square of the adjacent changes (points), paired on items. It includes the run's real progress, so it
    is an upper bound on step-to-step noise; the band is +-1.96 rms."""
    if len(steps) < 2:
        return []
    out = []
    for s in steps[0]:
        deltas = []
        for a, b in zip(steps, steps[1:], strict=False):
            if s not in a or s not in b:
                continue
            pos = {i: k for k, i in enumerate(b[s].item_ids)}
            if set(pos) != set(a[s].item_ids):
                raise ValueError(f"suite {s}: adjacent steps measured different items")
            x = np.asarray(a[s].scores, float)
            y = np.asarray(b[s].scores, float)[[pos[i] for i in a[s].item_ids]]
            deltas.append(float((y - x).mean() * 100))
        if not deltas:
            continue
        rms = math.sqrt(float(np.mean(np.square(deltas))))
        out.append(SuiteFloor(s, "steps", len(deltas), rms, -Z95 * rms, Z95 * rms,
                              f"rms change between {len(deltas)} adjacent step pair(s) of one run (includes "
                              "its progress: an upper bound)"))  # fmt: skip
    return out
