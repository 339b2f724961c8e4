"""Terminal tables (rich) for scores and comparisons (with power, noise floor, method against method, matched
gain, KL). Pure: no torch.

forgetbench compare a.fake.json b.fake.json --engine fake --suites arithmetic
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.console import Console
from rich.table import Table

from harness.fmt import pp as _pp
from harness.types import Comparison, SuitePower, SuiteResult


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
    power = {p.suite: p for p in comp.power}
    noise = {f.suite: f for f in comp.noise}
    extra = (["MDD"] if power else []) + (["noise floor"] if noise else [])
    table = Table("suite", comp.base, *extra, *cands, title=title)
    for suite in comp.suites:
        side = [_mdd(power[suite]) if suite in power else ""] if power else []
        if noise:
            f = noise.get(suite)
            side.append(f"{_pp(f.delta, (f.ci_low, f.ci_high))}\n[dim]{f.flips} flips[/]" if f else "")
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
        table.add_row(suite, f"{comp.scores.get(comp.base, {}).get(suite, float('nan')):.1f}", *side, *cells)
    console.print(table)
    if power:
        p0 = comp.power[0]
        console.print(
            f"[dim]MDD = minimum detectable drop (points) at this n and base score, paired, alpha {p0.alpha:g}, "
            f"{p0.power:.0%} power (— = not even a drop to 0).[/]"
        )
    if noise:
        console.print(
            "[dim]Noise floor = the base scored again under a change that should not matter "
            f"({comp.noise[0].change}): Δ inside it is what no change looks like.[/]"
        )
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
    print_pairs(console, comp)
    for s in comp.summaries:
        for note in s.notes:
            console.print(f"[dim]{s.checkpoint}: {note}[/]")
    for note in comp.meta.get("notes", []):
        console.print(f"[dim]{note}[/]")
    for w in comp.meta.get("warnings", []):
        console.print(f"[yellow]warning:[/] {w}")


def _mdd(p: SuitePower) -> str:
    return "—" if p.mdd is None else f"{p.mdd:.1f}"


def print_pairs(console: Console, comp: Comparison) -> None:
    """Method against method, the paper's ordering, drop at matched gain, the KL predictor (where present)."""
    if comp.pairs:
        t = Table("a", "b", "Δ drop (a − b) [95% CI]", "p", "Δ gain [95% CI]", title="method against method")
        for p in comp.pairs:
            t.add_row(
                f"{p.a} ({p.method_a})",
                f"{p.b} ({p.method_b})",
                _pp(p.drop_diff, p.drop_ci),
                "—" if p.drop_p is None else f"{p.drop_p:.2g}",
                _pp(p.gain_diff, p.gain_ci),
            )
        console.print(t)
        for p in comp.pairs:
            console.print(f"  {p.verdict}", highlight=False)
    if comp.ordering.get("relations"):
        console.print(comp.ordering["sentence"], highlight=False)
    if comp.matched_gain:
        t = Table("trained on", "method", "gain level", "drop [95% CI]", "curve points", title="drop at matched gain")
        for m in comp.matched_gain:
            t.add_row(
                ", ".join(m.trained_on), m.method, f"{m.gain:.1f}", _pp(m.drop, m.drop_ci), ", ".join(m.checkpoints)
            )
        console.print(t)
    if comp.kl:
        drops = {s.checkpoint: s.drop for s in comp.summaries}
        t = Table(
            "checkpoint", "KL(base‖ckpt)", "KL(ckpt‖base)", "drop", "samples", title="KL on target prompts (nats)"
        )
        for k in comp.kl:
            rev = "—" if k.kl_ckpt_base is None else f"{k.kl_ckpt_base:.3g}"
            t.add_row(k.checkpoint, f"{k.kl_base_ckpt:.3g}", rev, _pp(drops.get(k.checkpoint)), str(k.n_samples))
        console.print(t)
        rho = comp.kl_spearman
        console.print(f"Spearman(drop, KL(base‖ckpt)) = {'—' if rho is None else f'{rho:+.2f}'} over {len(comp.kl)}")
