"""Render a Comparison: a self-contained HTML report, results.json and results.parquet. Pure: no torch.

The report: summary, method against method (+ the paper's ordering), drop at matched gain, per-suite table
(with minimum detectable drop and noise floor), heatmap, frontier (with the noise band), drop vs KL.

The HTML opens offline (plotly.js inlined once, no CDN). Model output is untrusted: jinja2 autoescapes
every value, and figure data goes into the page as JSON with `<`, `>` and `&` escaped, so a completion
containing `</script><script>...` stays text.

    forgetbench report reports/compare-<hash>        # re-render a compare dir from stored records
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from harness.fmt import pp as _ci
from harness.types import SCHEMA_VERSION, CheckpointSummary, Comparison

TEMPLATES = Path(__file__).parent / "templates"


def _atomic_write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return path


@cache
def plotly_js() -> str:
    """plotly.js source, for inlining once per page."""
    from plotly.offline import get_plotlyjs

    return get_plotlyjs()


def script_json(obj: Any) -> Markup:
    """JSON safe inside a <script> element: no `</script>`, no HTML entities can break out."""
    text = json.dumps(obj, sort_keys=True, default=str, allow_nan=False)
    text = text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    return Markup(text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _finite(x: float | None) -> float | None:
    return None if x is None or x != x else round(float(x), 4)


# -- figures (plain plotly JSON; drawn by the inlined plotly.js) ------------------------------------------


def heatmap_figure(comp: Comparison) -> dict[str, Any]:
    """Per-suite delta vs base (points), checkpoints x suites; base-only: the scores themselves."""
    suites = list(comp.suites)
    if comp.summaries:
        rows = [s.checkpoint for s in comp.summaries]
        by = {(d.checkpoint, d.suite): d for s in comp.summaries for d in s.deltas}
        z = [[_finite(by[(r, s)].delta) if (r, s) in by else None for s in suites] for r in rows]
        text = [
            [
                f"{by[(r, s)].delta:+.1f} [{by[(r, s)].ci_low:+.1f}, {by[(r, s)].ci_high:+.1f}]"
                + (" *" if by[(r, s)].is_target else "")
                if (r, s) in by
                else ""
                for s in suites
            ]
            for r in rows
        ]
        span = max([abs(v) for row in z for v in row if v is not None] + [1.0])
        trace = {
            "type": "heatmap",
            "x": suites,
            "y": rows,
            "z": z,
            "text": text,
            "texttemplate": "%{text}",
            "hovertemplate": "%{y} on %{x}: %{text} points<extra></extra>",
            "colorscale": [[0, "#b3261e"], [0.5, "#f7f7f7"], [1, "#0a7a2f"]],  # red = lost, green = gained
            "zmin": -span,
            "zmax": span,
            "colorbar": {"title": {"text": "Δ points"}},
        }
        title = f"Δ score vs {comp.base} (points, 95% CI; * = target suite)"
    else:
        rows = list(comp.scores)
        z = [[_finite(comp.scores[r].get(s)) for s in suites] for r in rows]
        trace = {
            "type": "heatmap",
            "x": suites,
            "y": rows,
            "z": z,
            "texttemplate": "%{z:.1f}",
            "colorscale": "Viridis",
            "zmin": 0,
            "zmax": 100,
            "colorbar": {"title": {"text": "score"}},
        }
        title = "score (points, 0-100)"
    layout = {
        "title": {"text": title},
        "height": 160 + 48 * len(rows),
        "margin": {"l": 140, "r": 20, "t": 50, "b": 80},
        "yaxis": {"autorange": "reversed", "type": "category"},
        "xaxis": {"type": "category"},
    }
    return {"data": [trace], "layout": layout}


def frontier_figure(comp: Comparison) -> dict[str, Any] | None:
    """Gain (up) vs drop (down is better): each checkpoint with its CIs, the base at (0, 0)."""
    pts = [s for s in comp.summaries if s.gain is not None and s.drop is not None]
    if not pts:
        return None
    traces: list[dict[str, Any]] = []
    for dominated in (False, True):
        group = [s for s in pts if bool(s.dominated_by) == dominated]
        if not group:
            continue
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": "dominated" if dominated else "on the frontier",
                "x": [_finite(s.drop) for s in group],
                "y": [_finite(s.gain) for s in group],
                "text": [s.checkpoint for s in group],
                "customdata": [s.method for s in group],
                "textposition": "top center",
                "marker": {"size": 12, "symbol": "x" if dominated else "circle"},
                "error_x": error_bars([s.drop for s in group], [s.drop_ci for s in group]),
                "error_y": error_bars([s.gain for s in group], [s.gain_ci for s in group]),
                "hovertemplate": "%{text} (%{customdata})<br>gain %{y:.1f}, drop %{x:.1f}<extra></extra>",
            }
        )
    # One frontier per target (checkpoints trained on the same suites; gains on different targets do not
    # compare): it joins the group's non-dominated points, the base (0, 0) included unless one dominates it.
    groups: dict[frozenset[str], list[CheckpointSummary]] = {}
    for s in pts:
        groups.setdefault(frozenset(s.trained_on), []).append(s)
    for target, group in sorted(groups.items(), key=lambda kv: sorted(kv[0])):
        frontier = [(s.drop, s.gain) for s in group if not s.dominated_by]
        if not any(g >= 0 and d <= 0 and (g > 0 or d < 0) for s in group for d, g in [(s.drop, s.gain)]):
            frontier.append((0.0, 0.0))
        frontier.sort()
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "frontier" if len(groups) == 1 else f"frontier ({', '.join(sorted(target))})",
                "x": [_finite(d) for d, _ in frontier],
                "y": [_finite(g) for _, g in frontier],
                "line": {"dash": "dot", "color": "#888"},
                "hoverinfo": "skip",
            }
        )
    traces.append(
        {
            "type": "scatter",
            "mode": "markers+text",
            "name": f"base ({comp.base})",
            "x": [0.0],
            "y": [0.0],
            "text": [comp.base],
            "textposition": "bottom center",
            "marker": {"size": 12, "symbol": "diamond", "color": "#444"},
        }
    )
    band = comp.meta.get("noise_band")
    shapes = []
    if band:  # what "no change" looks like: the base scored twice, mean over all suites, drop and gain alike
        shapes.append(
            {
                "type": "rect",
                "x0": band[0],
                "x1": band[1],
                "y0": -band[1],
                "y1": -band[0],
                "fillcolor": "rgba(120, 120, 120, 0.18)",
                "line": {"width": 0},
                "layer": "below",
            }
        )
        traces.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": "noise floor (base scored twice, 95% CI)",
                "x": [None],
                "y": [None],
                "line": {"color": "rgba(120, 120, 120, 0.5)", "width": 8},
            }
        )
    layout = {
        "shapes": shapes,
        "title": {"text": "gain on target suites vs drop on the others (points; up and left is better)"},
        "xaxis": {"title": {"text": "drop (points, positive = forgetting)"}, "zeroline": True},
        "yaxis": {"title": {"text": "gain (points)"}, "zeroline": True},
        "height": 460,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
    }
    return {"data": traces, "layout": layout}


def kl_figure(comp: Comparison) -> dict[str, Any] | None:
    """Drop against KL(base || checkpoint) on the target prompts, one point per checkpoint (RL's Razor)."""
    drops = {s.checkpoint: s.drop for s in comp.summaries}
    pts = [k for k in comp.kl if drops.get(k.checkpoint) is not None]
    if not pts:
        return None
    rho = comp.kl_spearman
    trace = {
        "type": "scatter",
        "mode": "markers+text",
        "x": [_finite(k.kl_base_ckpt) for k in pts],
        "y": [_finite(drops[k.checkpoint]) for k in pts],
        "text": [k.checkpoint for k in pts],
        "textposition": "top center",
        "marker": {"size": 11},
        "hovertemplate": "%{text}: KL %{x:.3g} nats, drop %{y:.1f}<extra></extra>",
    }
    title = "drop vs KL(base ‖ checkpoint) on target prompts" + (
        f" (Spearman ρ = {rho:+.2f}, {len(pts)} checkpoints)" if rho is not None else ""
    )
    layout = {
        "title": {"text": title},
        "xaxis": {"title": {"text": "KL(base ‖ checkpoint), nats per sequence"}},
        "yaxis": {"title": {"text": "drop (points)"}, "zeroline": True},
        "height": 400,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
    }
    return {"data": [trace], "layout": layout}


def error_bars(values: list[float | None], cis: list[tuple[float, float] | None]) -> dict[str, Any]:
    """Asymmetric plotly error bars from (value, CI) pairs; no CI draws none."""
    plus = [_finite(ci[1] - v) if ci and v is not None else 0 for v, ci in zip(values, cis, strict=True)]
    minus = [_finite(v - ci[0]) if ci and v is not None else 0 for v, ci in zip(values, cis, strict=True)]
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1}


# -- tables -----------------------------------------------------------------------------------------------


def _data_versions(meta: Mapping[str, Any]) -> dict[str, str]:
    """suite -> data version from a comparison's meta (outputs before the one-name rename say "suite_versions")."""
    return dict(meta.get("data_versions") or meta.get("suite_versions") or {})


def summary_rows(comp: Comparison) -> list[dict[str, Any]]:
    rows = []
    for s in comp.summaries:
        rows.append(
            {
                "checkpoint": s.checkpoint,
                "method": s.method,
                "trained_on": ", ".join(s.trained_on) or "—",
                "gain": _ci(s.gain, s.gain_ci),
                "drop": _ci(s.drop, s.drop_ci),
                "gain_sign": _sign(s.gain_ci),
                "drop_sign": -_sign(s.drop_ci),
                "forgotten": sum(d.forgotten for d in s.deltas if not d.is_target),
                "learned": sum(d.learned for d in s.deltas if d.is_target),
                "pareto": _pareto(s),
                "notes": list(s.notes),
            }
        )
    return rows


def _sign(ci: tuple[float, float] | None) -> int:
    """+1 when the CI is above zero, -1 below, 0 when it covers zero (not distinguishable)."""
    if not ci:
        return 0
    return 1 if ci[0] > 0 else -1 if ci[1] < 0 else 0


def _pareto(s: CheckpointSummary) -> str:
    if s.gain is None or s.drop is None:
        return "—"
    return "dominated by " + ", ".join(s.dominated_by) if s.dominated_by else "frontier"


def suite_rows(comp: Comparison, areas: Mapping[str, str]) -> list[dict[str, Any]]:
    """One row per suite: base score, then per checkpoint score, delta [CI], q, forgotten/learned."""
    by = {(d.checkpoint, d.suite): d for s in comp.summaries for d in s.deltas}
    power, noise = {p.suite: p for p in comp.power}, {f.suite: f for f in comp.noise}
    rows = []
    for suite in comp.suites:
        cells = []
        for s in comp.summaries:
            d = by.get((s.checkpoint, suite))
            if d is None:
                cells.append({"text": "—", "delta": "", "sign": 0, "target": False, "detail": ""})
                continue
            cells.append(
                {
                    "text": f"{d.score:.1f}",
                    "delta": f"{d.delta:+.1f} [{d.ci_low:+.1f}, {d.ci_high:+.1f}]",
                    "sign": _sign((d.ci_low, d.ci_high)),
                    "target": d.is_target,
                    "detail": f"q={d.q_value:.2g}  −{d.forgotten}/+{d.learned}  n={d.n}",
                }
            )
        base = comp.scores.get(comp.base, {}).get(suite)
        pw, nf = power.get(suite), noise.get(suite)
        rows.append(
            {
                "mdd": "" if pw is None else "—" if pw.mdd is None else f"{pw.mdd:.1f}",
                "mdd_detail": "" if pw is None else f"{pw.model}, {pw.spread_source}",
                "noise": "" if nf is None else f"{nf.delta:+.1f} [{nf.ci_low:+.1f}, {nf.ci_high:+.1f}]",
                "noise_detail": "" if nf is None else f"{nf.flips} flips; {nf.change}",
                "suite": suite,
                "area": areas.get(suite, ""),
                "version": _data_versions(comp.meta).get(suite, ""),
                "base": "—" if base is None else f"{base:.1f}",
                "cells": cells,
            }
        )
    return rows


# -- writers ----------------------------------------------------------------------------------------------


def render_html(comp: Comparison, path: Path, config: Mapping[str, Any] | None = None) -> Path:
    """Write the report page; returns its path."""
    areas = {d.suite: d.area for s in comp.summaries for d in s.deltas} | dict(comp.meta.get("areas", {}))
    figures = {"heatmap": heatmap_figure(comp)}
    frontier = frontier_figure(comp)
    if frontier:
        figures["frontier"] = frontier
    kl = kl_figure(comp)
    if kl:
        figures["kl"] = kl
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)
    html = env.get_template("report.html.j2").render(
        comp=comp,
        summary=summary_rows(comp),
        suites=suite_rows(comp, areas),
        pairs=[
            {
                **p.__dict__,
                "drop": _ci(p.drop_diff, p.drop_ci),
                "gain": _ci(p.gain_diff, p.gain_ci),
                "sign": _sign(p.drop_ci),
            }
            for p in comp.pairs
        ],  # fmt: skip
        matched=[{**m.__dict__, "text": _ci(m.drop, m.drop_ci)} for m in comp.matched_gain],
        power_note=comp.power[0] if comp.power else None,
        noise_change=comp.noise[0].change if comp.noise else None,
        candidates=[s.checkpoint for s in comp.summaries],
        forgotten=comp.forgotten,
        forgotten_suites=sorted({f.suite for f in comp.forgotten}),
        figures=script_json(figures),
        meta=comp.meta,
        config=config or {},
        plotlyjs=Markup(plotly_js().replace("</script", "<\\/script")),
    )
    return _atomic_write(path, html.encode())


def write_json(comp: Comparison, path: Path, config: Mapping[str, Any] | None = None) -> Path:
    """results.json: the whole Comparison (schema-versioned) plus the compare config."""
    obj = comp.to_dict() | {"schema": SCHEMA_VERSION, "config": dict(config or {})}
    return _atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())


def results_frame(comp: Comparison) -> pa.Table:
    """One row per (checkpoint, suite): scores, delta and CI, q, flips; the base has its scores only (the
    other columns null). An Arrow table: the store reads Arrow already, and pandas costs 0.3 s to import."""
    rows: list[dict[str, Any]] = []
    for suite in comp.suites:
        rows.append(
            {
                "checkpoint": comp.base,
                "suite": suite,
                "is_base": True,
                "is_target": False,
                "score": comp.scores.get(comp.base, {}).get(suite),
            }
        )
    for s in comp.summaries:
        for d in s.deltas:
            rows.append(
                {
                    "checkpoint": s.checkpoint,
                    "method": s.method,
                    "suite": d.suite,
                    "area": d.area,
                    "is_base": False,
                    "is_target": d.is_target,
                    "n": d.n,
                    "base_score": d.base_score,
                    "score": d.score,
                    "delta": d.delta,
                    "ci_low": d.ci_low,
                    "ci_high": d.ci_high,
                    "p_value": d.p_value,
                    "q_value": d.q_value,
                    "forgotten": d.forgotten,
                    "learned": d.learned,
                    "gain": s.gain,
                    "drop": s.drop,
                }
            )
    versions = _data_versions(comp.meta)
    columns = list(dict.fromkeys(k for r in rows for k in r))
    table = {c: [r.get(c) for r in rows] for c in columns}
    table["data_version"] = [versions.get(r["suite"]) for r in rows]
    table["schema"] = [SCHEMA_VERSION] * len(rows)
    return pa.table(table)


def write_parquet(comp: Comparison, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    pq.write_table(results_frame(comp), tmp)
    os.replace(tmp, path)
    return path
