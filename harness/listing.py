"""The `forgetbench suites` listing: one line per suite at any terminal width.

Suite names are never cut; the other cells are cut to fit, ending in "…" (the description first, as the
widest). When even minimal cells do not fit, the least needed columns (options, then scorer version) are
left out, and the caption says so. Rich's own column shrinking can drop a column to nothing, so the
widths are computed here and given to rich exactly.

    forgetbench suites --no-counts
"""

from __future__ import annotations

from rich import box
from rich.table import Table

from harness.suites import all_suites, suite_families, unavailable_suites

HEADERS = ("suite", "kind", "area", "data", "scorer", "options", "items", "description")
MIN_WIDTH = {"kind": 8, "area": 11, "data": 10, "scorer": 10, "options": 10, "items": 5, "description": 15}
DROP_ORDER = ("options", "scorer")  # left out, in this order, when the terminal is too narrow
GAP = 2  # characters between two columns


def suite_rows(counts: bool = True) -> list[tuple[str, ...]]:
    """The listing's rows: unavailable suites (with the reason), suites, then families (`lmeval:<task>`)."""
    rows = [(name, "", "", "", "", "", "unavailable", why) for name, why in sorted(unavailable_suites().items())]
    for name, s in sorted(all_suites().items()):
        try:
            size = str(len(s.load())) if counts else "-"
        except Exception as e:  # a suite whose data is absent still lists, with the reason
            size = "needs hub data" if s.needs_hub else f"unavailable ({str(e).splitlines()[0][:40]})"
        opts = "|".join(o.name for o in s.options)
        rows.append((name, s.kind, s.area, s.data_version, s.scorer_version, opts, size, s.description))
    for family in sorted(suite_families()):
        rows.append((f"{family}:<task>", "", "", "", "", "<task>", "-", "one suite per task, named by the option"))
    return rows


def fit(rows: list[tuple[str, ...]], width: int) -> tuple[list[str], list[int]]:
    """The columns to show and their widths so a line fits `width` (names always whole)."""
    cols = list(HEADERS)
    while True:
        natural = [max(len(h), *(len(r[HEADERS.index(h)]) for r in rows)) for h in cols]
        widths = list(natural)
        room = width - GAP * (len(cols) - 1)
        while sum(widths) > room:
            k = max(range(1, len(cols)), key=lambda i: widths[i] - MIN_WIDTH[cols[i]])
            if widths[k] <= MIN_WIDTH[cols[k]]:
                break
            widths[k] -= 1
        dropped = [c for c in DROP_ORDER if c in cols]
        if sum(widths) <= room or not dropped:
            return cols, widths
        cols.remove(dropped[0])


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def suites_table(width: int, counts: bool = True) -> Table:
    """The listing as a rich Table for a console `width` columns wide."""
    rows = suite_rows(counts)
    cols, widths = fit(rows, width)
    hidden = [c for c in HEADERS if c not in cols]
    caption = f"{', '.join(hidden)} left out: a wider terminal shows them" if hidden else None
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=0, caption=caption)
    last = len(cols) - 1
    # No rich padding (it counts against a column's width and then cuts again): a gap is the box's one-space
    # column separator plus one space we add to every cell but the last column's.
    for k, (h, w) in enumerate(zip(cols, widths, strict=True)):
        table.add_column(h, width=w + (k < last), no_wrap=True)
    for r in rows:
        cells = [_cut(r[HEADERS.index(h)], w) for h, w in zip(cols, widths, strict=True)]
        table.add_row(*(c.ljust(w + 1) if k < last else c for k, (c, w) in enumerate(zip(cells, widths, strict=True))))
    return table
