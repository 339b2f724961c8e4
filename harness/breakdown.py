"""Format vs content, and per-category deltas: what a drop is made of. Pure (numpy, no torch).

A suite with an answer parser (Suite.parses: mmlu, gsm8k, math500, countdown, addsub, arithmetic) stores,
per completion, the answer its scorer read (None = none found). From that:
- per checkpoint and suite, the fraction of completions with no parseable answer;
- each forgotten item (right under the base, wrong under the checkpoint) is *format* when the checkpoint's
  completion has no answer the scorer can read, and *content* when it has one and it is wrong. A model that
  stopped writing "The answer is X" has not forgotten the answer.
A suite whose scores carry parts (Score.parts: MMLU's subject group per item, IFEval's strict follow per
instruction id) gets paired deltas per category: the same units under the base and the checkpoint, a
percentile bootstrap CI over the units of that category (fixed seed).

    python -m pytest tests/test_format_content.py -q
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

import numpy as np

from harness.types import CategoryDelta, FormatSplit, SuiteResult

FORMAT, CONTENT = "format", "content"


def has_answers(res: SuiteResult) -> bool:
    """True when the result carries the answers its parser read (older results and non-parsing suites don't)."""
    return res.parses and len(res.answers) == len(res.scores)


def no_answer_rate(res: SuiteResult) -> float | None:
    """Fraction (0-1) of the completions with no parseable answer; None when the suite has no parser."""
    if not has_answers(res) or not res.answers:
        return None
    return sum(a is None for a in res.answers) / len(res.answers)


def cause(res: SuiteResult, k: int) -> str:
    """Why item k of a parsing suite is wrong: "format" (no answer found) or "content"; "" without a parser."""
    if not has_answers(res):
        return ""
    return FORMAT if res.answers[k] is None else CONTENT


def format_split(base: SuiteResult, cand: SuiteResult) -> FormatSplit | None:
    """No-answer rates of both and the format/content split of the candidate's forgotten items; None when
    either result lacks parsed answers."""
    if not (has_answers(base) and has_answers(cand)):
        return None
    pos = {i: k for k, i in enumerate(cand.item_ids)}
    fmt = content = 0
    for kb, item_id in enumerate(base.item_ids):
        kc = pos[item_id]
        if base.scores[kb] >= 0.5 and cand.scores[kc] < 0.5:
            if cand.answers[kc] is None:
                fmt += 1
            else:
                content += 1
    return FormatSplit(
        checkpoint=cand.checkpoint,
        suite=cand.suite,
        n=len(cand.scores),
        no_answer=no_answer_rate(cand) or 0.0,
        base_no_answer=no_answer_rate(base) or 0.0,
        forgotten=fmt + content,
        format=fmt,
        content=content,
    )


def _units(res: SuiteResult) -> dict[str, dict[tuple[str, int], float]]:
    """category -> {(item id, occurrence in the item): value}: the paired units of each category."""
    out: dict[str, dict[tuple[str, int], float]] = {}
    if len(res.parts) != len(res.item_ids):
        return out
    for item_id, parts in zip(res.item_ids, res.parts, strict=True):
        seen: dict[str, int] = {}
        for category, value in parts:
            j = seen[category] = seen.get(category, -1) + 1
            out.setdefault(category, {})[(item_id, j)] = float(value)
    return out


def _rng(seed: int, suite: str, category: str) -> np.random.Generator:
    sub = int.from_bytes(hashlib.sha256(f"{suite}/{category}".encode()).digest()[:4], "little")
    return np.random.default_rng([seed, sub])


def category_deltas(base: SuiteResult, cand: SuiteResult, n_boot: int = 1000, seed: int = 0) -> list[CategoryDelta]:
    """Paired delta of each category (sorted by name), points, with a 95% percentile bootstrap CI over its
    units; [] when the suite's scores have no parts."""
    b_units, c_units = _units(base), _units(cand)
    out = []
    for category in sorted(b_units):
        keys = sorted(set(b_units[category]) & set(c_units.get(category, {})))
        if not keys:
            continue
        b = np.array([b_units[category][k] for k in keys])
        c = np.array([c_units[category][k] for k in keys])
        d = c - b
        idx = _rng(seed, base.suite, category).integers(0, d.size, size=(n_boot, d.size))
        boot = d[idx].mean(axis=1) * 100
        out.append(
            CategoryDelta(
                checkpoint=cand.checkpoint,
                suite=cand.suite,
                category=category,
                n=int(d.size),
                base_score=float(b.mean() * 100),
                score=float(c.mean() * 100),
                delta=float(d.mean() * 100),
                ci_low=float(np.percentile(boot, 2.5)),
                ci_high=float(np.percentile(boot, 97.5)),
            )
        )
    return out


def breakdown(
    results: Mapping[str, Mapping[str, SuiteResult]],
    base: str,
    candidates: Sequence[str],
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[list[FormatSplit], list[CategoryDelta]]:
    """Format splits and category deltas of every candidate on every suite it shares with the base."""
    formats: list[FormatSplit] = []
    categories: list[CategoryDelta] = []
    for cid in candidates:
        for suite, b_res in results[base].items():
            c_res = results.get(cid, {}).get(suite)
            if c_res is None:
                continue
            split = format_split(b_res, c_res)
            if split is not None:
                formats.append(split)
            categories += category_deltas(b_res, c_res, n_boot, seed)
    return formats, categories
