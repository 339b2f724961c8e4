"""Render a timeline (harness/timeline.py): track.html (plotly inlined, autoescaped; model text never reaches
the page unescaped) and results.json, written as one unit by harness/track.py through outputs.commit. Pure.

    forgetbench track runs/sft runs/grpo --base base --engine fake --out reports/track-demo
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from harness.report import TEMPLATES, _atomic_write, error_bars, plotly_js, script_json
from harness.types import SCHEMA_VERSION

_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")


def _runs(tl: Mapping[str, Any]) -> list[str]:
    return list(dict.fromkeys(p["run"] for p in tl["points"]))


def _curve(
    tl: Mapping[str, Any], what: str, title: str, max_drop: float | None = None, by: str = "run"
) -> dict[str, Any]:
    """`what` against step, one line per run (by="run") or per replicate group's mean (by="group")."""
    rows = tl["points"] if by == "run" else tl.get("methods", [])
    data = []
    for k, name in enumerate(dict.fromkeys(p[by] for p in rows)):
        pts = [p for p in rows if p[by] == name and p[what] is not None]
        if not pts:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "x": [p["step"] for p in pts],
                "y": [p[what] for p in pts],
                "text": [p.get("path") or ", ".join(p["runs"]) for p in pts],
                "error_y": error_bars([p[what] for p in pts], [p[f"{what}_ci"] for p in pts]),
                "line": {"color": _COLOURS[k % len(_COLOURS)]},
            }
        )
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 0, "y1": 0, "line": {"color": "#999"}}]
    if max_drop is not None and what == "drop":
        shapes.append(
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "y0": max_drop,
                "y1": max_drop,
                "line": {"color": "#b3261e", "dash": "dot"},
            }  # fmt: skip
        )
    layout = {"title": {"text": title}, "xaxis": {"title": {"text": "step"}}, "yaxis": {"title": {"text": "points"}}}
    return {"data": data, "layout": layout | {"shapes": shapes, "height": 380}}


def _frontier(tl: Mapping[str, Any]) -> dict[str, Any]:
    """Drop against gain, each run a path through its steps: runs compared at matched gain, not matched step."""
    data = []
    for k, run in enumerate(_runs(tl)):
        pts = [p for p in tl["points"] if p["run"] == run and p["gain"] is not None and p["drop"] is not None]
        if not pts:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers+text",
                "name": run,
                "x": [p["gain"] for p in pts],
                "y": [p["drop"] for p in pts],
                "text": [str(p["step"]) for p in pts],
                "textposition": "top center",
                "error_x": error_bars([p["gain"] for p in pts], [p["gain_ci"] for p in pts]),
                "error_y": error_bars([p["drop"] for p in pts], [p["drop_ci"] for p in pts]),
                "line": {"color": _COLOURS[k % len(_COLOURS)]},
            }
        )
    axes = {"xaxis": {"title": {"text": "gain"}}, "yaxis": {"title": {"text": "drop"}}}
    return {"data": data, "layout": {"title": {"text": "drop against gain (labels: step)"}, "height": 420} | axes}


def _suite_curves(tl: Mapping[str, Any]) -> dict[str, Any]:
    data = []
    runs = _runs(tl)
    dashes = ("solid", "dash", "dot", "dashdot")
    for k, suite in enumerate(tl["suites"]):
        for j, run in enumerate(runs):
            pts = [p for p in tl["points"] if p["run"] == run]
            vals = [p["suites"][suite]["delta"] for p in pts]
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": f"{suite} ({run})" + (" target" if pts and pts[0]["suites"][suite]["target"] else ""),
                    "x": [p["step"] for p in pts],
                    "y": vals,
                    "error_y": error_bars(vals, [p["suites"][suite]["ci"] for p in pts]),
                    "line": {"color": _COLOURS[k % len(_COLOURS)], "dash": dashes[j % len(dashes)]},
                }
            )
    layout = {"title": {"text": "per-suite change vs the base (score − base, points)"}, "height": 440}
    return {"data": data, "layout": layout | {"xaxis": {"title": {"text": "step"}}}}


def _turnover_figure(tl: Mapping[str, Any]) -> dict[str, Any]:
    data = []
    for run, t in tl["turnover"].items():
        rows = t["by_step"]
        x = [r["step"] for r in rows]
        data.append({"type": "bar", "name": f"{run}: first forgotten, never recovered", "x": x,
                     "y": [-r["never_recovered"] for r in rows]})  # fmt: skip
        data.append({"type": "bar", "name": f"{run}: first forgotten, recovered later", "x": x,
                     "y": [-r["recovered_later"] for r in rows]})  # fmt: skip
        data.append({"type": "bar", "name": f"{run}: first learned", "x": x, "y": [r["learned"] for r in rows]})
    layout = {"title": {"text": "item turnover (items, by the step they first changed)"}, "barmode": "relative"}
    return {"data": data, "layout": layout | {"height": 380, "xaxis": {"title": {"text": "step"}}}}


def _ci(x: float | None, ci: list[float] | None) -> str:
    if x is None:
        return "—"
    return f"{x:+.1f}" + (f" [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else "")


def render_html(tl: Mapping[str, Any], path: Path, config: Mapping[str, Any]) -> Path:
    max_drop = config.get("max_drop")
    figures = {
        "gain": _curve(tl, "gain", "gain on target suites vs step (95% paired CI)"),
        "drop": _curve(
            tl, "drop", "drop on the informative non-target suites vs step (95% paired CI; > 0 = forgetting)", max_drop
        ),
        "frontier": _frontier(tl),
        "suites": _suite_curves(tl),
        "turnover": _turnover_figure(tl),
    }
    if tl.get("methods"):
        figures["method-gain"] = _curve(tl, "gain", "method gain vs step (mean over seeds; 95% CI: seeds, then items)",
                                        by="group")  # fmt: skip
        figures["method-drop"] = _curve(
            tl, "drop", "method drop vs step (mean over seeds; 95% CI: seeds, then items)", max_drop, by="group"
        )
    methods = [
        {**m, "gain_text": _ci(m["gain"], m["gain_ci"]), "drop_text": _ci(m["drop"], m["drop_ci"])}
        for m in tl.get("methods", [])
    ]
    rows = [
        {
            **p,
            "gain_text": _ci(p["gain"], p["gain_ci"]),
            "drop_text": _ci(p["drop"], p["drop_ci"]),
            "drop_all_text": _ci(p.get("drop_all"), p.get("drop_all_ci")),
        }
        for p in tl["points"]
    ]
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)
    html = env.get_template("track.html.j2").render(
        tl=tl,
        rows=rows,
        methods=methods,
        runs=_runs(tl),
        config=config,
        max_drop=max_drop,
        figures=script_json(figures),
        plotlyjs=Markup(plotly_js().replace("</script", "<\\/script")),
    )
    return _atomic_write(path, html.encode())


def write_json(tl: Mapping[str, Any], path: Path, config: Mapping[str, Any]) -> Path:
    obj = {"schema": SCHEMA_VERSION, "kind": "track", "timeline": dict(tl), "config": dict(config)}
    return _atomic_write(path, json.dumps(obj, indent=1, sort_keys=True, default=str).encode())
