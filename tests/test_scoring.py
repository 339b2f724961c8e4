"""Scorer tables: Countdown's safe AST checker, boxed extraction, numbers, text matching; adversarial inputs."""

from __future__ import annotations

import time

import pytest

from harness.scoring import (
    countdown_correct,
    countdown_value,
    last_boxed,
    last_number,
    mentions,
    numbers_equal,
)

N, T = [3, 5, 7], 22  # (3 * 5) + 7


@pytest.mark.parametrize(
    ("completion", "ok"),
    [
        ("\\boxed{3 * 5 + 7}", True),
        ("so \\boxed{(3*5)+7}", True),
        ("\\boxed{7 + 5 * 3}", True),
        ("\\boxed{3 \\times 5 + 7}", False),  # the paper's checker: LaTeX is a syntax error (lenient: 1)
        ("first \\boxed{1} then \\boxed{3*5+7}", True),  # the last box counts
        ("\\boxed{3*5+7} then \\boxed{1}", False),
        ("\\boxed{3*5+7 = 22}", False),  # paper: a trailing '= y' is invalid
        ("\\boxed{3*5+7+0}", False),  # extra number
        ("\\boxed{3*5}", False),  # number unused
        ("\\boxed{3*5+7.0}", False),  # float literal
        ("\\boxed{-(3-5*7)-10}", False),  # unary minus
        ("\\boxed{3**5+7}", False),  # power not allowed
        ("\\boxed{5*5+7-3}", False),  # 5 used twice, 3 once... multiset differs
        ("3*5+7", True),  # no box: the whole output is the expression
        ("The answer is 3*5+7", False),
        ("\\boxed{__import__('os').system('true')}", False),
        ("\\boxed{(3).__class__}", False),
        ("\\boxed{", False),
        ("", False),
    ],
)
def test_countdown_table(completion: str, ok: bool) -> None:
    assert countdown_correct(completion, N, T) is ok


@pytest.mark.parametrize(
    ("completion", "paper", "lenient"),
    [
        ("\\boxed{(5 \\times 3) + 2}", False, True),  # the example: 0 under the paper's checker
        ("\\boxed{(5 * 3) + 2}", True, True),
        ("\\boxed{5 \\cdot 3 + 2}", False, True),
        ("\\boxed{(30 \\div 2) + 2 - 5 + 5}", False, False),  # numbers differ: no rewrite rescues it
        ("\\boxed{(10 \\div 2) * 3 + 2}", False, False),  # 10 and 2 are not the puzzle's numbers
        ("\\boxed{5 \\times 3 + 2 = 17}", False, False),  # '= y' is invalid either way
        ("\\boxed{5 x 3 + 2}", False, False),
    ],
)
def test_countdown_paper_vs_lenient(completion: str, paper: bool, lenient: bool) -> None:
    from harness.suites import get_suite
    from harness.types import Item

    assert countdown_correct(completion, [5, 3, 2], 17) is paper
    assert countdown_correct(completion, [5, 3, 2], 17, lenient=True) is lenient
    item = Item("x", {"numbers": [5, 3, 2], "target": 17, "solution": "(5 * 3) + 2"})
    assert get_suite("countdown").score(item, completion) == float(paper)  # the default is the paper's rule
    assert get_suite("countdown:lenient").score(item, completion) == float(lenient)


def test_countdown_lenient_division() -> None:
    assert countdown_correct("\\boxed{(8 \\div 4) + 20}", [8, 4, 20], 22, lenient=True)
    assert not countdown_correct("\\boxed{(8 \\div 4) + 20}", [8, 4, 20], 22)


def test_countdown_division_must_be_exact() -> None:
    assert countdown_correct("\\boxed{(8 / 4) + 20}", [8, 4, 20], 22)
    assert not countdown_correct("\\boxed{(7 / 2) * 4 + 8}", [7, 2, 4, 8], 22)  # 3.5 intermediate
    assert not countdown_correct("\\boxed{7 / (5 - 5) + 22}", [7, 5, 5, 22], 22)
    assert countdown_value("(8 // 4) + 20", [8, 4, 20]) == 22


@pytest.mark.parametrize(
    "evil",
    [
        "\\boxed{" + "(" * 5000 + "3" + ")" * 5000 + "}",
        "\\boxed{" + "9**" * 2000 + "9}",
        "\\boxed{" + "{" * 20000 + "}" * 20000 + "}",
        "x" * 1_000_000,
        "\\boxed{" + "1+" * 500_000 + "1}",
        "\\boxed{(lambda: 1)()}",
    ],
)
def test_adversarial_outputs_are_bounded(evil: str) -> None:
    t = time.perf_counter()
    assert not countdown_correct(evil, N, T)
    last_number(evil)
    mentions(evil, ["Paris"])
    assert time.perf_counter() - t < 2.0


@pytest.mark.parametrize(
    ("text", "boxed"),
    [
        ("\\boxed{\\frac{\\sqrt{3}}{2}}", "\\frac{\\sqrt{3}}{2}"),
        ("a \\boxed{1} b \\boxed{2}", "2"),
        ("none", None),
        ("\\boxed{ 5 }", "5"),
        ("\\boxed{x} \\boxed{unclosed", "x"),
    ],
)
def test_last_boxed(text: str, boxed: str | None) -> None:
    assert last_boxed(text) == boxed


@pytest.mark.parametrize(
    ("text", "gold", "ok"),
    [
        ("so 17 + 25 = 42", 42, True),
        ("\\boxed{1,234}", 1234, True),
        ("-7 is it", -7, True),
        ("\\boxed{42} but 43", 42, True),
        ("42 or 43", 42, False),
        ("no number", 1, False),
        ("2.50", 2.5, True),
    ],
)
def test_numbers(text: str, gold: int, ok: bool) -> None:
    assert numbers_equal(last_number(text), gold) is ok


@pytest.mark.parametrize(
    ("text", "answers", "ok"),
    [
        ("The capital is Paris.", ["Paris"], True),
        ("São Tomé", ["Sao Tome"], True),
        ("Parisian food", ["Paris"], False),
        ("It is ALUMINIUM", ["aluminum", "aluminium"], True),
        ("", ["Paris"], False),
    ],
)
def test_mentions(text: str, answers: list[str], ok: bool) -> None:
    assert mentions(text, answers) is ok
