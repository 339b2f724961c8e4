"""`forgetbench simulate`: runs harness.simulate.gaussians, prints a rich table, writes a self-contained HTML page.

The numbers come from harness.simulate.gaussians (pure numerics, which never imports this module); this module
runs them (`run_and_render`, the body of the typer command) and draws them. The page inlines plotly.js
once (no CDN) so it opens offline, and jinja2 autoescapes everything that is not a figure.

    forgetbench simulate --seeds 5 && xdg-open reports/simulate.html
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup
from plotly.offline import get_plotlyjs
from plotly.subplots import make_subplots
from rich import box
from rich.console import Console
from rich.table import Table

from harness.fsio import atomic_write
from harness.simulate.gaussians import (
    TARGET_NEW,
    TARGET_OLD,
    RunResult,
    RunSpec,
    SummaryRow,
    normal_pdf,
    run_all,
    summary_rows,
    to_json,
)

# The paper's colour code: forward KL red -> yellow over time, reverse KL blue -> purple.
_GRADIENTS = {
    "forward_kl": ((255, 0, 0), (255, 215, 0)),
    "reverse_kl": ((0, 150, 199), (90, 24, 154)),
}
_LINE = {"forward_kl": "#d62728", "reverse_kl": "#1f77b4"}
_LABEL = {"forward_kl": "Forward KL (SFT)", "reverse_kl": "Reverse KL (RL)"}
_TEMPLATES = Path(__file__).parent.parent / "templates"


def _fmt(x: float | None, digits: int = 3) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _pm(mean: float | None, std: float | None) -> str:
    return "-" if mean is None or std is None else f"{mean:.3f} ± {std:.3f}"


_SHORT = {"forward_kl": "FKL", "reverse_kl": "RKL", "bimodal": "bi", "unimodal": "uni"}


def _row_cells(row: SummaryRow) -> dict[str, str]:
    """One summary row as display strings; shared by the terminal table and the HTML table."""
    return {
        "setting": row.setting,
        "method": row.method,
        "lr": f"{row.lr:g}",
        "target_mean": f"{row.target_mean:g}",
        "reached": f"{row.n_reached}/{row.n_seeds}",
        "step": _fmt(row.step_at_threshold_mean, 1),
        "drop_at": _pm(row.drop_at_threshold_mean, row.drop_at_threshold_std),
        "paper": _fmt(row.paper_drop_at_threshold, 2),
        "final_gain": _pm(row.final_gain_mean, row.final_gain_std),
        "final_drop": _pm(row.final_drop_mean, row.final_drop_std),
    }


_COLUMNS = (
    ("setting", "setting"),
    ("method", "method"),
    ("lr", "lr"),
    ("target_mean", "target mean"),
    ("reached", "reached gain≥thr"),
    ("step", "step at thr"),
    ("drop_at", "drop at thr"),
    ("paper", "paper drop"),
    ("final_gain", "final gain"),
    ("final_drop", "final drop"),
)


def print_table(rows: Sequence[SummaryRow], console: Console | None = None) -> None:
    """Seed-averaged results, main panels first, then the target-distance sweep; fits 80 columns."""
    console = console or Console()
    thr = rows[0].gain_threshold if rows else 0.9
    for group, title in (("main", "Mixture of Gaussians"), ("sweep", "Target-distance sweep (bi-modal q)")):
        table = Table(
            title=f"{title}: drop at first gain ≥ {thr:g}",
            caption="FKL/RKL = forward/reverse KL; drop > 0 = forgetting; gain, drop: at the last step",
            box=box.SIMPLE_HEAD,
            pad_edge=False,
        )
        for header in ("q", "method", "lr", "μ_T", "hit", "step", "drop@thr", "paper", "gain", "drop"):
            table.add_column(header, justify="left" if header in ("q", "method") else "right", no_wrap=True)
        for row in rows:
            if row.group != group:
                continue
            table.add_row(
                _SHORT[row.setting],
                _SHORT[row.method],
                f"{row.lr:g}",
                f"{row.target_mean:g}",
                f"{row.n_reached}/{row.n_seeds}",
                _fmt(row.step_at_threshold_mean, 0),
                _pm(row.drop_at_threshold_mean, row.drop_at_threshold_std),
                _fmt(row.paper_drop_at_threshold, 2),
                _fmt(row.final_gain_mean, 2),
                _fmt(row.final_drop_mean, 2),
            )
        if table.row_count:
            console.print(table)


def _colour(method: str, t: float) -> str:
    start, end = _GRADIENTS[method]
    t = t**0.7  # the paper's easing: early snapshots differ more, so spread their colours
    r, g, b = (round(a + (z - a) * t) for a, z in zip(start, end, strict=True))
    return f"rgb({r},{g},{b})"


def _target_density(xs: np.ndarray, target_mean: float) -> np.ndarray:
    w1, m1, s1 = TARGET_OLD
    w2, _, s2 = TARGET_NEW
    return w1 * normal_pdf(xs, m1, s1) + w2 * normal_pdf(xs, target_mean, s2)


def _title(spec: RunSpec) -> str:
    return f"{_LABEL[spec.method]}, lr {spec.lr:g}"


def density_figure(runs: Sequence[list[RunResult]], title: str) -> go.Figure:
    """q(x) every 10 steps up to the gain threshold (seed 0), over the dashed target p(x)."""
    fig = make_subplots(rows=1, cols=len(runs), subplot_titles=[_title(r[0].spec) for r in runs])
    for col, seeds in enumerate(runs, start=1):
        run = seeds[0]
        setting = run.spec.setting
        xs = np.linspace(setting.x_min, setting.x_max, setting.n_x)
        last = run.snapshot_steps[-1]
        for step, density in zip(run.snapshot_steps, run.snapshots, strict=True):
            fig.add_trace(
                go.Scatter(
                    x=xs,
                    y=density,
                    mode="lines",
                    showlegend=False,
                    name=f"step {step}",
                    line={"color": _colour(run.spec.method, step / max(last, 1)), "width": 2},
                ),
                row=1,
                col=col,
            )
        fig.add_trace(
            go.Scatter(
                x=xs,
                y=_target_density(xs, run.spec.target_mean),
                mode="lines",
                name="target p(x)",
                showlegend=col == 1,
                line={"color": "black", "dash": "dash", "width": 2},
            ),
            row=1,
            col=col,
        )
        idx = (run.step_at_threshold or setting.num_iters) - 1
        reached = "" if run.step_at_threshold else " (threshold not reached)"
        fig.add_annotation(
            text=f"step {idx + 1}{reached}<br>Drop={run.drop[idx]:.2f}  Gain={run.gain[idx]:.2f}",
            xref="x domain" if col == 1 else f"x{col} domain",
            yref="y domain" if col == 1 else f"y{col} domain",
            x=0.02,
            y=0.98,
            showarrow=False,
            align="left",
            xanchor="left",
            yanchor="top",
        )
    fig.update_yaxes(range=[0, 0.62], title_text="density")
    fig.update_xaxes(title_text="x")
    fig.update_layout(title=title, height=380, margin={"t": 80})
    return fig


def curves_figure(panels: Sequence[tuple[str, Sequence[list[RunResult]]]], title: str) -> go.Figure:
    """Seed-mean gain (solid) and drop (dashed) per step; a marker where the threshold is first met."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=[name for name, _ in panels])
    thr = panels[0][1][0][0].gain_threshold
    for col, (_, runs) in enumerate(panels, start=1):
        for seeds in runs:
            spec = seeds[0].spec
            steps = np.arange(1, spec.setting.num_iters + 1)
            gain = np.mean([r.gain for r in seeds], axis=0)
            drop = np.mean([r.drop for r in seeds], axis=0)
            name = _title(spec)
            # The bi-modal panel has two SFT runs: draw the low-lr one lighter so they stay apart.
            colour = "#ff9896" if spec.method == "forward_kl" and spec.lr < 0.05 else _LINE[spec.method]
            for series, label, dash in ((gain, "gain", "solid"), (drop, "drop", "dash")):
                fig.add_trace(
                    go.Scatter(
                        x=steps,
                        y=series,
                        mode="lines",
                        name=f"{name}: {label}",
                        legendgroup=name,
                        line={"color": colour, "dash": dash},
                        showlegend=col == 1,
                    ),
                    row=1,
                    col=col,
                )
            hit = np.flatnonzero(gain >= thr)
            if hit.size:
                fig.add_trace(
                    go.Scatter(
                        x=[hit[0] + 1],
                        y=[drop[hit[0]]],
                        mode="markers",
                        legendgroup=name,
                        showlegend=False,
                        marker={"color": colour, "size": 9, "symbol": "x"},
                        hovertext=f"{name}: mean gain reaches {thr:g} here",
                    ),
                    row=1,
                    col=col,
                )
        fig.add_hline(y=thr, line={"color": "grey", "dash": "dot", "width": 1}, row=1, col=col)
    fig.update_xaxes(title_text="step")
    fig.update_yaxes(title_text="gain / drop", range=[-0.05, 1.05])
    fig.update_layout(title=title, height=420, margin={"t": 80}, legend={"orientation": "h", "y": -0.25})
    return fig


def _fig_html(fig: go.Figure, div_id: str) -> Markup:
    # A fixed div id keeps the page byte-stable across runs; plotly.js itself is inlined once, elsewhere.
    return Markup(fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id))


def render_html(results: dict[RunSpec, list[RunResult]], rows: Sequence[SummaryRow]) -> str:
    """The whole page as one string."""
    main = [runs for spec, runs in results.items() if spec.group == "main"]
    bimodal = [runs for runs in main if runs[0].spec.setting.name == "bimodal"]
    unimodal = [runs for runs in main if runs[0].spec.setting.name == "unimodal"]
    sweep_means = sorted({s.target_mean for s in results if s.group == "sweep"})
    sweep_panels = [
        (f"target mean {m:g}", [r for s, r in results.items() if s.group == "sweep" and s.target_mean == m])
        for m in sweep_means
    ]
    curve_panels = [(name, r) for name, r in (("bi-modal", bimodal), ("uni-modal", unimodal)) if r]
    figures: list[tuple[str, Markup]] = []  # (section heading, figure); groups that were not run are left out
    if bimodal:
        fig = density_figure(bimodal, "Bi-modal policy (seed 0)")
        figures.append(("Bi-modal q: density over time", _fig_html(fig, "sim-bimodal-density")))
    if unimodal:
        fig = density_figure(unimodal, "Uni-modal policy (seed 0)")
        figures.append(("Uni-modal q: density over time", _fig_html(fig, "sim-unimodal-density")))
    if curve_panels:
        fig = curves_figure(curve_panels, "Gain / drop per step (seed mean)")
        figures.append(("Gain and drop per step", _fig_html(fig, "sim-curves")))
    if sweep_panels:
        fig = curves_figure(sweep_panels, "Bi-modal, target mode moved (seed mean)")
        figures.append(("Target-distance sweep", _fig_html(fig, "sim-sweep")))
    seeds = rows[0].n_seeds if rows else 0
    env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=True)
    return env.get_template("simulate.html.j2").render(
        plotlyjs=Markup(get_plotlyjs()),
        columns=[header for _, header in _COLUMNS],
        main_rows=[[_row_cells(r)[k] for k, _ in _COLUMNS] for r in rows if r.group == "main"],
        sweep_rows=[[_row_cells(r)[k] for k, _ in _COLUMNS] for r in rows if r.group == "sweep"],
        per_seed=[(f"{r.setting} {r.method} lr {r.lr:g} mean {r.target_mean:g}", r.per_seed) for r in rows],
        figures=figures,
        seeds=seeds,
        threshold=rows[0].gain_threshold if rows else 0.9,
    )


def write_html(results: dict[RunSpec, list[RunResult]], rows: Sequence[SummaryRow], out: Path) -> Path:
    """Render and write atomically (temp file + rename), so a killed run never leaves half a page."""
    html = render_html(results, rows)
    atomic_write(out, html)
    return out


def run_and_render(
    seeds: int = 5, out: Path = Path("reports/simulate.html"), as_json: bool = False, threshold: float = 0.9
) -> int:
    """Run everything, print the table (or JSON only), write the HTML page; the exit code is returned."""
    if seeds < 1:
        print(f"simulate: --seeds must be >= 1, got {seeds}", file=sys.stderr)
        return 2
    if not 0.0 < threshold <= 1.0:
        print(
            f"simulate: --threshold must be in (0, 1] (gain is an overlap difference), got {threshold}",
            file=sys.stderr,
        )
        return 2
    results = run_all(seeds, threshold)
    rows = summary_rows(results)
    write_html(results, rows, Path(out))
    if as_json:
        sys.stdout.write(to_json(rows, seeds, threshold) + "\n")
    else:
        print_table(rows)
        print(f"wrote {out}")
    return 0
