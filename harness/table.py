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
    """Per-suite scores and deltas (suites as rows, so ten suites still fit a terminal), then gain/drop with
    95% CIs and the Pareto status per checkpoint. q = BH-adjusted p; −forgotten/+learned item counts."""
    cands = [s.checkpoint for s in comp.summaries]
    by = {(d.checkpoint, d.suite): d for s in comp.summaries for d in s.deltas}
    title = f"scores (points); base = {comp.base}" + ("; Δ vs base [95% CI], * = target suite" if cands else "")
    table = Table("suite", comp.base, *cands, title=title)
    for suite in comp.suites:
        cells = []
        for cid in cands:
            d = by.get((cid, suite))
            if d is None:
                cells.append("")
                continue
            colour = "green" if d.ci_low > 0 else "red" if d.ci_high < 0 else "white"
            mark = "*" if d.is_target else ""
            cells.append(
                f"{d.score:.1f} [{colour}]{mark}{_pp(d.delta, (d.ci_low, d.ci_high))}[/]\n"
                f"[dim]q={d.q_value:.2g} −{d.forgotten}/+{d.learned}[/]"
            )
        table.add_row(suite, f"{comp.scores.get(comp.base, {}).get(suite, float('nan')):.1f}", *cells)
    console.print(table)
    if not comp.summaries:
        return
    summary = Table("checkpoint", "method", "trained on", "gain [95% CI]", "drop [95% CI]", "pareto", title="vs base")
    for s in comp.summaries:
        pareto = (
            ("dominated by " + ", ".join(s.dominated_by))
            if s.dominated_by
            else ("frontier" if s.gain is not None else "")
        )
        summary.add_row(
            s.checkpoint, s.method, ", ".join(s.trained_on), _pp(s.gain, s.gain_ci), _pp(s.drop, s.drop_ci), pareto
        )
    console.print(summary)
    for s in comp.summaries:
        for note in s.notes:
            console.print(f"[dim]{s.checkpoint}: {note}[/]")
    for w in comp.meta.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")
