"""Terminal tables (rich) for scores and comparisons. Pure: no torch.

forgetbench compare a.fake.json b.fake.json --engine fake --suites arithmetic
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from harness.types import Comparison, SuiteResult


def _pp(x: float | None, ci: tuple[float, float] | None = None, signed: bool = True) -> str:
    if x is None:
        return "—"
    s = f"{x:+.1f}" if signed else f"{x:.1f}"
    return f"{s} [{ci[0]:+.1f}, {ci[1]:+.1f}]" if ci else s


def print_scores(console: Console, results: Mapping[str, Mapping[str, SuiteResult]]) -> None:
    suites = sorted({s for r in results.values() for s in r})
    table = Table("checkpoint", *suites, title="score (points, 0-100)")
    for cid, res in results.items():
        table.add_row(cid, *[f"{res[s].mean * 100:.1f} (n={len(res[s].scores)})" if s in res else "" for s in suites])
    console.print(table)


def print_comparison(console: Console, comp: Comparison) -> None:
    """Scores per suite, then gain/drop with 95% CIs and per-suite deltas (q = BH-adjusted p)."""
    scores = Table("checkpoint", *comp.suites, title=f"scores (points); base = {comp.base}")
    for cid, row in comp.scores.items():
        scores.add_row(cid, *[f"{row.get(s, float('nan')):.1f}" for s in comp.suites])
    console.print(scores)
    if not comp.summaries:
        return
    table = Table(
        "checkpoint",
        "method",
        "gain [95% CI]",
        "drop [95% CI]",
        *comp.suites,
        "pareto",
        title="vs base: Δ points [95% CI]; * = target suite; forgotten/learned items",
    )
    for s in comp.summaries:
        cells = []
        for d in s.deltas:
            colour = "green" if d.ci_low > 0 else "red" if d.ci_high < 0 else "white"
            mark = "*" if d.is_target else ""
            cells.append(
                f"[{colour}]{mark}{_pp(d.delta, (d.ci_low, d.ci_high))}[/] q={d.q_value:.2g} "
                f"−{d.forgotten}/+{d.learned}"
            )
        pareto = (
            ("dominated by " + ", ".join(s.dominated_by))
            if s.dominated_by
            else ("frontier" if s.gain is not None else "")
        )
        table.add_row(s.checkpoint, s.method, _pp(s.gain, s.gain_ci), _pp(s.drop, s.drop_ci), *cells, pareto)
    console.print(table)
    for s in comp.summaries:
        for note in s.notes:
            console.print(f"[dim]{s.checkpoint}: {note}[/]")
    for w in comp.meta.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
