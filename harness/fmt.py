"""How a number reads: the one formatter of a value in points with its CI, used by the table, the report, the
gate's markdown and the leaderboard, so "+1.2 [-0.3, +2.7]" reads the same everywhere.

    python -c "from harness.fmt import pp; print(pp(-0.0, (-1.24, 2.0)))"
"""

from __future__ import annotations

from collections.abc import Sequence


def pp(x: float | None, ci: Sequence[float] | None = None, signed: bool = True) -> str:
    """`x` in points to one decimal with its CI; "—" when there is no value. -0.0 prints as +0.0: a drop
    of "-0.0" would read like a gain."""
    if x is None:
        return "—"
    s = f"{x + 0.0:+.1f}" if signed else f"{x + 0.0:.1f}"
    return s + (f" [{ci[0] + 0.0:+.1f}, {ci[1] + 0.0:+.1f}]" if ci else "")
