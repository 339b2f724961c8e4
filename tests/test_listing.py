"""`forgetbench suites` fits a terminal: names whole, one line per suite, long cells cut with an ellipsis."""

from __future__ import annotations

import pytest
from rich.cells import cell_len
from rich.console import Console

from harness.listing import HEADERS, fit, suite_rows, suites_table
from harness.suites import all_suites


@pytest.mark.parametrize("width", [80, 100, 200])
def test_listing_fits_the_terminal_with_whole_names(width: int) -> None:
    console = Console(width=width, record=True, color_system=None)
    console.print(suites_table(width, counts=False))
    lines = console.export_text().splitlines()
    assert all(cell_len(line) <= width for line in lines)
    names = [*sorted(all_suites()), "lmeval:<task>"]
    starts = [line.split(" ", 1)[0] for line in lines]
    for name in names:
        assert starts.count(name) == 1, name  # whole, on exactly one line
    body = [line for line in lines if line.split(" ", 1)[0] in names]
    assert len(body) == len(names)  # one line per suite: nothing wrapped
    mmlu = next(line for line in body if line.startswith("mmlu "))
    if width == 80:
        assert mmlu.rstrip().endswith("…")  # the description is cut, not wrapped
    if width == 200:
        assert "paper|lenient" in mmlu and "scorer" in lines[0]


def test_narrow_terminals_leave_out_options_then_scorer() -> None:
    rows = suite_rows(counts=False)
    wide, _ = fit(rows, 300)
    assert wide == list(HEADERS)
    narrow, widths = fit(rows, 80)
    assert "options" not in narrow and "scorer" not in narrow and narrow[0] == "suite"
    assert widths[0] == max(len(r[0]) for r in rows)  # the name column is never shrunk
    assert sum(widths) + 2 * (len(widths) - 1) <= 80
