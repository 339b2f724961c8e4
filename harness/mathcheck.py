r"""Math answer checking shared by the math suites: answer extraction, the paper's exact-string Minerva rule,
and math-verify equivalence behind size guards. Pure (no model), bounded time per item, no eval() of model
output: the only eval on the way is sympy building a number from a digits-only token of latex2sympy2's lexer.

Two modes (`MODES`):
- "math-verify" (default): the answer is the last \boxed{} (braces matched at any depth), else the last
  $...$, else the last number. It is correct if its Minerva-normalised string equals the gold's, or if
  math-verify (`LatexExtractionConfig` only: LaTeX -> sympy through latex2sympy2's grammar; its
  `ExprExtractionConfig` would hand text to sympy's eval-based `parse_expr`) proves the two equal.
  Parsed answers that could make sympy slow are not compared (they fall back to the string rule): values
  over MAX_BITS bits (power towers, 10^(10^10), 99999999!), sums/products/integrals/limits, more than
  MAX_NODES nodes, over MAX_TERMS monomials once expanded, or a non-rational base raised past
  MAX_SYMBOLIC_EXP ((x+y+z)^200 takes ~45 s to compare, sin(x)^1000 minutes). The guards are not enough
  (a nested `\sin(\sin(...))` answer parses for minutes), so math-verify runs in a worker process
  (`harness.deadline`) from whatever thread scores: past DEADLINE_S seconds the worker is killed and the
  answer scores 0 with the reason "timeout" (`check` returns it; `answers_match` logs it). Inside the worker
  (a main thread) math-verify's own alarms still stop each parse/comparison after TIMEOUT_S seconds, as they
  did in the main thread before.
- "minerva": the paper's rule exactly (paper.md section 1.5): pre-normalise (\dfrac -> \frac, drop
  \left/\right), extract with the paper's regexes (last \boxed{} with one level of nested braces, else
  last $...$, else last number, else the whole text), apply Lewkowycz et al. (2022) appendix-D
  `normalize_final_answer` to prediction and gold, compare strings exactly.

Extracted answers longer than MAX_ANSWER characters are wrong in both modes (no real answer is that long,
and the paper's regexes are quadratic on long lines); only the last MAX_SCAN characters of a completion
are read.

    python -m pytest tests/test_mathcheck.py -q
"""

from __future__ import annotations

import logging
import math
import re
import threading
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from harness.deadline import TIMEOUT, Worker
from harness.scoring import MAX_SCAN, last_boxed

_log = logging.getLogger(__name__)

MODES = ("math-verify", "minerva")
MAX_ANSWER = 1000  # characters of an extracted answer
MAX_NODES = 200  # sympy nodes of a parsed answer given to math-verify
MAX_BITS = 1 << 17  # upper bound on log2 |value| of any number math-verify may build (~40k digits)
MAX_TERMS = 64  # upper bound on the monomials of an answer once expanded
MAX_SYMBOLIC_EXP = 32  # largest exponent of a non-rational base (x, sqrt(2), sin(x), ...)
TIMEOUT_S = 1  # math-verify's own alarm in the worker, per parse and per comparison (as before the worker)
DEADLINE_S = 10.0  # CPU seconds of the worker for one (answer, gold) check (wall clock: 6x); past it: 0

# -- the paper's rule: Minerva normalisation (Lewkowycz et al. 2022, appendix D) ---------------------
_SUBSTITUTIONS = (
    ("an ", ""), ("a ", ""), (".$", "$"), ("\\$", ""), ("\\ ", ""), (" ", ""), ("mbox", "text"),
    (",\\text{and}", ","), ("\\text{and}", ","), ("\\text{m}", "\\text{}"),
)  # fmt: skip
_REMOVED = (
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots", "sue",
    "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters", "meals",
    "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}",
    "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", "\\mathrm{th}", "^\\circ", "^{\\circ}", "\\;",
    ",\\!", "{,}", '"', "\\dots",
)  # fmt: skip
_UNWRAP = (
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), "$\\3$"),
    (re.compile(r"(\\text\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\overline\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\boxed\{)(.*)(\})"), "\\2"),
)
_FRAC_SHORT = re.compile(r"(frac)([^{])(.)")
_SQRT_SHORT = re.compile(r"(sqrt)([^{])")

# The paper's extraction regexes (MATHDataset.parse_output_text).
_PAPER_BOXED = re.compile(r"\\boxed{((?:[^{}]|{[^{}]*})*)}")
_PAPER_DOLLARS = re.compile(r"\$([^$]+)\$")
_PAPER_NUMBER = re.compile(r"(?:^|[^\d])(\d+(?:\.\d+)?|\.\d+)(?:[^\d]|$)")


def minerva_normalise(answer: str) -> str:
    """Appendix-D `normalize_final_answer`: last `=` side, substitutions, unit words, unwrapping, shorthand."""
    answer = answer.split("=")[-1]
    for before, after in _SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expr in _REMOVED:
        answer = answer.replace(expr, "")
    for pattern, repl in _UNWRAP:
        answer = pattern.sub(repl, answer)
    answer = _FRAC_SHORT.sub("frac{\\2}{\\3}", answer)
    answer = _SQRT_SHORT.sub("sqrt{\\2}", answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():  # 100,000 -> 100000
        answer = answer.replace(",", "")
    return answer


def paper_prenormalise(text: str) -> str:
    r"""The paper's `_parse`: \dfrac -> \frac and no \left/\right (its `\pi` replacement is a no-op)."""
    return text.replace("\\dfrac", "\\frac").replace("\\left", "").replace("\\right", "")


def paper_extract(text: str) -> str:
    r"""The paper's answer parser: last \boxed{} (one nesting level), else last $..$, else last number, else all."""
    text = paper_prenormalise(text[-MAX_SCAN:])
    for pattern in (_PAPER_BOXED, _PAPER_DOLLARS, _PAPER_NUMBER):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return text


def paper_found(text: str) -> str | None:
    """What `paper_extract` finds with one of its patterns; None where it falls back to the whole text."""
    text = paper_prenormalise(text[-MAX_SCAN:])
    for pattern in (_PAPER_BOXED, _PAPER_DOLLARS, _PAPER_NUMBER):
        found = pattern.findall(text)
        if found:
            return found[-1].strip()
    return None


def minerva_key(answer: str) -> str | None:
    """What the paper compares: pre-normalised Minerva normal form; None for an over-long answer."""
    if len(answer) > MAX_ANSWER:
        return None
    return paper_prenormalise(minerva_normalise(answer))


def minerva_equal(completion: str, gold: str) -> bool:
    """The paper's rule: exact equality of the normalised extracted prediction and the normalised gold."""
    pred = minerva_key(paper_extract(completion))
    return pred is not None and pred == minerva_key(paper_prenormalise(gold))


# -- robust extraction --------------------------------------------------------------------------------


_DOLLARS = re.compile(rf"\$([^$]{{1,{MAX_ANSWER}}})\$")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?|-?\.\d+")


def extract_answer(text: str) -> str | None:
    r"""Last \boxed{} (any depth), else last $...$, else last number (commas kept); None if none."""
    text = text[-MAX_SCAN:]
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed
    found = _DOLLARS.findall(text)
    if found and found[-1].strip():
        return found[-1].strip()
    numbers = _NUMBER.findall(text)
    return numbers[-1].rstrip(",") if numbers else None


# -- math-verify behind guards ------------------------------------------------------------------------
def checker_version() -> str:
    """math-verify's version (part of a suite's version: its equivalences can change between releases)."""
    try:
        return f"math-verify{version('math-verify')}"
    except PackageNotFoundError:
        return "math-verify-missing"


_INF = (float("inf"), float("inf"))


def _size(expr: Any, budget: list[int]) -> tuple[float, float]:
    """Upper bounds (log2 |value|, monomials after expansion) of a parsed answer; inf when unbounded.

    Symbols count as small numbers: the bounds are on what sympy might build while comparing. A power of a
    non-rational base (symbols, roots, functions) may have an exponent of at most MAX_SYMBOLIC_EXP: sympy
    expands or trig-simplifies such powers term by term, e.g. (x+y+z)^200 takes ~45 s, sin(x)^1000 minutes.
    """
    import sympy
    from sympy.matrices import MatrixBase

    budget[0] -= 1
    if budget[0] < 0:
        return _INF
    if isinstance(expr, MatrixBase):
        parts = [_size(e, budget) for e in expr]
        return max((b for b, _ in parts), default=1.0), sum(t for _, t in parts)
    if not isinstance(expr, sympy.Basic):
        return 1.0, 1.0
    if isinstance(expr, sympy.Integer):
        return float(max(int(expr).bit_length(), 1)), 1.0
    if isinstance(expr, sympy.Rational):
        return float(max(int(expr.p).bit_length(), int(expr.q).bit_length(), 1)), 1.0
    if isinstance(expr, sympy.Float):
        return 64.0, 1.0  # bounded precision; exponent size does not make arithmetic slow
    if not expr.args:
        return 2.0, 1.0  # symbols, pi, E, I, infinity, ...
    if isinstance(expr, sympy.Pow):
        (base, terms), (exp, _) = _size(expr.base, budget), _size(expr.exp, budget)
        # |exponent| <= 2**exp: a tower (exponent itself huge) is unbounded for our purpose.
        if exp > 40:
            return _INF
        if isinstance(expr.base, sympy.Rational):
            return base * 2.0**exp, 1.0
        if 2.0**exp > MAX_SYMBOLIC_EXP or terms > MAX_TERMS:
            return _INF
        n = int(2.0**exp)
        return base * 2.0**exp, float(math.comb(n + int(terms) - 1, int(terms) - 1))
    if isinstance(expr, (sympy.factorial, sympy.factorial2, sympy.subfactorial, sympy.gamma)):
        n = _size(expr.args[0], budget)[0]
        return _INF if n > 40 else (2.0**n * n, 1.0)
    if isinstance(expr, (sympy.binomial, sympy.RisingFactorial, sympy.FallingFactorial)):
        n = sum(_size(a, budget)[0] for a in expr.args)
        return _INF if n > 40 else (2.0**n * n, 1.0)
    if isinstance(expr, (sympy.Sum, sympy.Product, sympy.Integral, sympy.Limit, sympy.Derivative)):
        return _INF  # sympy would evaluate them term by term or symbolically: unbounded time
    parts = [_size(a, budget) for a in expr.args]
    bits = [b for b, _ in parts]
    if isinstance(expr, sympy.Mul):
        return sum(bits), math.prod(t for _, t in parts)
    if isinstance(expr, sympy.Add):
        return max(bits) + len(bits), sum(t for _, t in parts)
    # functions, tuples, sets, relations: a little growth per argument, monomials of the largest argument
    return max(bits) + len(bits), max(t for _, t in parts)


def _safe(expr: Any) -> bool:
    """True when sympy can work on `expr` without building huge numbers or walking a huge tree."""
    try:
        bits, terms = _size(expr, [MAX_NODES])
    except (RecursionError, TypeError, ValueError, AttributeError, OverflowError):
        return False
    return bits <= MAX_BITS and terms <= MAX_TERMS


def _timeout() -> int | None:
    # math-verify's alarms (signal.alarm) work only in a main thread: always so in the deadline worker.
    return TIMEOUT_S if threading.current_thread() is threading.main_thread() else None


def _depth_ok(answer: str) -> bool:
    depth = 0
    for ch in answer:
        depth += ch in "{[("
        depth -= ch in "}])"
        if depth > 40:
            return False
    return True


@lru_cache(maxsize=4096)
def _parsed(answer: str) -> tuple[Any, ...]:
    """math-verify's parse of one answer (LaTeX only), keeping only the expressions that pass the guards."""
    if len(answer) > MAX_ANSWER or not _depth_ok(answer):
        return ()
    from math_verify import LatexExtractionConfig, parse

    try:
        found = parse(
            "\\boxed{" + answer + "}",
            extraction_config=[LatexExtractionConfig(boxed_match_priority=0)],
            parsing_timeout=_timeout(),
        )
    except Exception:  # math-verify raises on odd input only with raise_on_error; be safe anyway
        return ()
    return tuple(x for x in found if isinstance(x, str) or _safe(x))


def verify_in_process(pred: str, gold: str) -> bool:
    """math-verify equivalence of two extracted answers (False when either cannot be parsed safely).

    Unbounded off the main thread (no alarms there): callers go through `verify_equal`, which runs this in
    the worker process under a deadline.
    """
    g, p = _parsed(gold), _parsed(pred)
    if not any(not isinstance(x, str) for x in p) or not g:
        return False
    from math_verify import verify

    try:
        return bool(verify(list(g), list(p), timeout_seconds=_timeout()))
    except Exception:
        return False


def warm_up() -> None:
    """Import math-verify and sympy and build the LaTeX parser (a fraction, a tuple): the deadline worker does
    this before taking its first answer, outside any deadline; a cold parse cut by an alarm is not kept."""
    verify_in_process("\\frac{1}{2}", "0.5")
    verify_in_process("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)")
    _parsed.cache_clear()


_worker = Worker("harness.mathcheck:verify_in_process")


def verify_equal(pred: str, gold: str, deadline_s: float | None = None) -> bool | None:
    """verify_in_process in the deadline worker process: True/False, or None when it ran past the deadline
    (DEADLINE_S unless given), in any thread. Results are memoised per (pred, gold)."""
    deadline = DEADLINE_S if deadline_s is None else deadline_s
    return _verify_cached(pred, gold, deadline)


@lru_cache(maxsize=4096)
def _verify_cached(pred: str, gold: str, deadline_s: float) -> bool | None:
    result = _worker.call([pred, gold], deadline_s)
    return None if result is TIMEOUT else bool(result)


def mode_version(mode: str) -> str:
    """The scoring part of a math suite's version."""
    return checker_version() if mode == "math-verify" else "minerva"


@dataclass(frozen=True)
class Verdict:
    """A math score with why: `reason` says which rule decided (a timeout scores 0 and says so)."""

    correct: bool
    reason: str


def check(completion: str, gold: str, mode: str = "math-verify") -> Verdict:
    """The completion's final answer against `gold` (an extracted gold answer) under `mode`, with the reason."""
    if mode == "minerva":
        ok = minerva_equal(completion, gold)
        return Verdict(ok, "minerva: normalised strings " + ("equal" if ok else "differ"))
    if mode != "math-verify":
        raise ValueError(f"unknown math scoring mode {mode!r}; choose one of {', '.join(MODES)}")
    pred = extract_answer(completion)
    if pred is None:
        return Verdict(False, "no answer found")
    if len(pred) > MAX_ANSWER:
        return Verdict(False, f"answer longer than {MAX_ANSWER} characters")
    key = minerva_key(pred)
    if key is not None and key == minerva_key(gold):
        return Verdict(True, "normalised strings equal")
    ok = verify_equal(pred, gold)
    if ok is None:
        return Verdict(False, f"timeout: math-verify used over {DEADLINE_S:g} CPU-s; scored 0")
    return Verdict(ok, "math-verify: " + ("equivalent" if ok else "not equivalent"))


def answers_match(completion: str, gold: str, mode: str = "math-verify") -> bool:
    """Is the completion's final answer equal to `gold` (an extracted gold answer) under `mode`?"""
    verdict = check(completion, gold, mode)
    if verdict.reason.startswith("timeout"):
        _log.warning("math scoring: %s (answer %.60r)", verdict.reason, extract_answer(completion))
    return verdict.correct
