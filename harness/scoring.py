"""Pure extractors and matchers shared by suites. Never eval(): model output is parsed, with size limits.

python -m pytest tests/test_scoring.py -q
"""

from __future__ import annotations

import ast
import re
import unicodedata
from collections import Counter
from fractions import Fraction

MAX_SCAN = 200_000  # characters of a completion we look at: a 1 MB output costs no more than this
MAX_EXPR = 200  # characters in a Countdown expression
MAX_NODES = 64  # AST nodes in a Countdown expression


_BRACE = re.compile(r"\\boxed\{|[{}]")


def last_boxed(text: str) -> str | None:
    r"""Content of the last \boxed{...} that closes (braces matched at any depth); None if there is none.

    One pass with a stack: linear even on "\boxed{" * 100_000 (rescanning from every unclosed box is not).
    """
    text = text[-MAX_SCAN:]
    stack: list[tuple[int, bool]] = []  # (index after the "{", opened by \boxed)
    best: tuple[int, int] | None = None
    for m in _BRACE.finditer(text):
        if m.group() == "}":
            if stack:
                start, boxed = stack.pop()
                if boxed and (best is None or start > best[0]):
                    best = (start, m.start())
        else:
            stack.append((m.end(), m.group() != "{"))
    return text[best[0] : best[1]].strip() if best else None


_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _value(node: ast.AST, leaves: list[int]) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) is int:
        leaves.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp):
        a, b = _value(node.left, leaves), _value(node.right, leaves)
        if type(node.op) in _OPS:
            return _OPS[type(node.op)](a, b)
        if isinstance(node.op, ast.Div | ast.FloorDiv):
            # Countdown's rule: division must be exact (no remainder) and never by zero.
            if b == 0 or (a / b).denominator != 1:
                raise ValueError("inexact division")
            return a / b
    raise ValueError(f"disallowed syntax: {type(node).__name__}")


LATEX_OPS = (("\\times", "*"), ("\\cdot", "*"), ("\\div", "/"))  # what lenient mode rewrites


def countdown_value(expr: str, numbers: list[int], lenient: bool = False) -> Fraction | None:
    """Value of a Countdown expression that uses every number exactly once, else None.

    Only integer literals and binary + - * / (exact) are allowed: no unary minus, names, calls,
    attributes, powers or floats, so no input can run code or build a huge number. That is the paper's
    checker; `lenient` first rewrites LaTeX's \\times, \\cdot (as *) and \\div (as /), which the paper's
    checker rejects as a syntax error.
    """
    if lenient:
        for latex, op in LATEX_OPS:
            expr = expr.replace(latex, op)
    if len(expr) > MAX_EXPR:
        return None
    try:
        tree = ast.parse(expr.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        return None
    leaves: list[int] = []
    try:
        value = _value(tree.body, leaves)
    except (ValueError, ZeroDivisionError, RecursionError):
        return None
    return value if Counter(leaves) == Counter(numbers) else None


def countdown_correct(completion: str, numbers: list[int], target: int, lenient: bool = False) -> bool:
    r"""Paper rule: last \boxed{} (else the whole output) is a valid expression equal to the target.

    `lenient` also accepts LaTeX operators (see countdown_value); not the paper's rule."""
    expr = last_boxed(completion)
    value = countdown_value(expr if expr is not None else completion[-MAX_SCAN:], numbers, lenient)
    return value is not None and value == target and 0 <= target <= 99


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def last_number(text: str) -> str | None:
    r"""The answer number: the last \boxed{} if it holds one, else the last number in the text."""
    text = text[-MAX_SCAN:]
    boxed = last_boxed(text)
    source = boxed if boxed is not None and _NUMBER.search(boxed) else text
    found = _NUMBER.findall(source)
    return found[-1].replace(",", "") if found else None


def numbers_equal(pred: str | None, gold: int | float | str) -> bool:
    if pred is None:
        return False
    try:
        return Fraction(pred) == Fraction(str(gold))
    except (ValueError, ZeroDivisionError):
        return False


def normalise_text(s: str) -> str:
    """Lower-case, strip accents and punctuation, collapse spaces: 'São Tomé!' -> 'sao tome'."""
    s = unicodedata.normalize("NFKD", s[:MAX_SCAN])
    s = "".join(ch for ch in s if not unicodedata.combining(ch)).lower()
    s = re.sub(r"[^\w\s]", " ", s)
    return re.sub(r"\s+", " ", s).strip()


def mentions(completion: str, answers: list[str]) -> bool:
    """True when any accepted answer appears as whole words in the completion (accent/case-insensitive)."""
    text = f" {normalise_text(completion)} "
    return any(f" {normalise_text(a)} " in text for a in answers if normalise_text(a))
