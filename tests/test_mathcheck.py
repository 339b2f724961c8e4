r"""harness.mathcheck, table-driven: Minerva normalisation, the paper's parser, robust extraction, math-verify
equivalence, and adversarial model outputs (huge numbers, deep nesting, dunders, 1 MB) in bounded time.

    python -m pytest tests/test_mathcheck.py -q
"""

from __future__ import annotations

import builtins
import random
import re
import threading
import time
from pathlib import Path

import pytest

from harness import mathcheck
from harness.mathcheck import (
    answers_match,
    extract_answer,
    last_boxed,
    minerva_equal,
    minerva_normalise,
    paper_extract,
)


@pytest.fixture(scope="module", autouse=True)
def _worker_started() -> None:
    # math-verify runs in a deadline worker process: start it (imports, parser) before any timed check
    mathcheck._verify_cached.cache_clear()
    assert mathcheck.check("\\boxed{0.5}", "\\frac12").correct


MB = "All work and no play makes Jack a dull boy. " * 23_000  # ~1 MB, no digits

NORMALISE = [  # Lewkowycz et al. appendix D, worked by hand
    ("\\$32", "32"),
    ("10 \\text{ cm}", "10"),
    ("1,000", "1000"),
    ("x = 5", "5"),
    ("\\frac12", "\\frac{1}{2}"),
    ("\\sqrt2", "\\sqrt{2}"),
    ("\\boxed{7}", "7"),
    ("90^\\circ", "90"),
    ("\\text{(C)}", "(C)"),
    ("$\\frac{1}{2}$", "\\frac{1}{2}"),
    ("5 dollars", "5"),
    ("(1, 2)", "(1,2)"),
]


@pytest.mark.parametrize(("raw", "normal"), NORMALISE)
def test_minerva_normalise(raw: str, normal: str) -> None:
    assert minerva_normalise(raw) == normal


PAPER_EXTRACT = [
    ("so \\boxed{5} and then \\boxed{7}.", "7"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),  # one nesting level: found
    ("$\\boxed{\\frac{\\sqrt{3}}{2}}$", "\\boxed{\\frac{\\sqrt{3}}{2}}"),  # two levels: the regex misses it
    ("we get $x=3$ hence", "x=3"),
    ("it is 12 or 13.5 apples", "13.5"),
    ("no answer here", "no answer here"),
    ("\\dfrac{1}{2} \\left( \\right)", "2"),  # pre-normalised first, then the last number
]


@pytest.mark.parametrize(("text", "answer"), PAPER_EXTRACT)
def test_paper_extract(text: str, answer: str) -> None:
    assert paper_extract(text) == answer


EXTRACT = [
    ("so \\boxed{\\frac{\\sqrt{3}}{2}}.", "\\frac{\\sqrt{3}}{2}"),  # any depth
    ("\\boxed{1} then \\boxed{2", "1"),  # the last box that closes
    ("the answer is $x^2$.", "x^2"),
    ("She pays 1,250 dollars.", "1,250"),
    ("-3.5 is it", "-3.5"),
    ("nothing", None),
]


@pytest.mark.parametrize(("text", "answer"), EXTRACT)
def test_extract_answer(text: str, answer: str | None) -> None:
    assert extract_answer(text) == answer


MATCH = [  # (completion, gold, math-verify, minerva)
    ("\\boxed{5}", "5", True, True),
    ("The answer is 18.", "18", True, True),
    ("\\boxed{14/3}", "\\frac{14}{3}", True, False),
    ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", True, True),
    ("\\boxed{0.5}", "\\frac12", True, False),
    ("\\boxed{\\frac{\\sqrt{2}}{2}}", "\\frac{1}{\\sqrt{2}}", True, False),
    ("\\boxed{(3, \\pi/2)}", "\\left( 3, \\frac{\\pi}{2} \\right)", True, False),
    ("\\boxed{2,125}", "2125", True, True),
    ("\\boxed{x = 7}", "7", True, True),
    ("\\boxed{10\\%}", "10", True, False),
    (
        "\\boxed{\\begin{pmatrix} 1/3 \\\\ -2 \\end{pmatrix}}",
        "\\begin{pmatrix} \\frac13 \\\\ -2 \\end{pmatrix}",
        True,
        False,
    ),
    ("\\boxed{6}", "5", False, False),
    ("\\boxed{3.0001}", "3", False, False),
    ("\\boxed{x+1}", "x-1", False, False),
    ("I do not know.", "5", False, False),
    ("", "5", False, False),
]


@pytest.mark.parametrize(("completion", "gold", "verify", "minerva"), MATCH)
def test_answers_match_both_modes(completion: str, gold: str, verify: bool, minerva: bool) -> None:
    assert answers_match(completion, gold, "math-verify") is verify
    assert answers_match(completion, gold, "minerva") is minerva
    assert minerva_equal(completion, gold) is minerva


def test_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError):
        answers_match("\\boxed{1}", "1", "exact")


def test_last_boxed_agrees_with_scoring_and_is_linear() -> None:
    def reference(text: str) -> str | None:  # the obvious quadratic scan, as an oracle
        start = text.rfind("\\boxed{")
        while start >= 0:
            depth, i = 0, start + len("\\boxed")
            for j in range(i, len(text)):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    return text[i + 1 : j].strip()
            start = text.rfind("\\boxed{", 0, start)
        return None

    rng = random.Random(0)
    tokens = ["\\boxed{", "{", "}", "a", "1", " ", "\\boxed", "\\frac{"]
    for _ in range(20_000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 12)))
        assert last_boxed(text) == reference(text), text
    start = time.perf_counter()
    assert last_boxed("\\boxed{" * 100_000) is None  # linear: the oracle's rescans would take minutes
    assert time.perf_counter() - start < 1


ADVERSARIAL = [
    "\\boxed{9**9**9**9}",
    "\\boxed{10^{10^{10^{10}}}}",
    "$9^{9^{9^9}}$",
    "\\boxed{(10^{9999})^{9999}}",
    "\\boxed{2^{9999999999}}",
    "\\boxed{99999999!}",
    "\\boxed{\\binom{10^{9}}{5\\cdot 10^{8}}}",
    "\\boxed{\\prod_{i=1}^{10^{9}} i}",
    "\\boxed{\\sum_{i=1}^{10^{12}} i^2}",
    "\\boxed{\\int_0^{10^{10}} x^{10^{10}} dx}",
    "\\boxed{\\Gamma(10^{20})}",
    "\\boxed{(x+y+z)^{200}}",
    "\\boxed{\\sin(x)^{1000}+\\cos(x)^{1000}}",
    "\\boxed{(1+\\sqrt{2})^{4000}}",
    "\\boxed{" + "(" * 5000 + "1" + ")" * 5000 + "}",
    "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}",
    "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}",
    "\\boxed{" + "9" * 100_000 + "}",
    "$" + "1+" * 50_000 + "1$",
    "\\boxed{__import__('os').system('touch {marker}')}",
    "\\boxed{x.__class__.__mro__[1].__subclasses__()}",
    "\\boxed{().__class__.__bases__[0].__subclasses__()}",
    "$__import__('os').system('touch {marker}')$",
    MB,
    "1" * 1_000_000,
    "\\boxed{" * 100_000,
    "$" * 1_000_000,
    " " * 1_000_000 + "x",
    "{" * 500_000 + "}" * 500_000,
]


def _adversarial(marker: Path) -> list[str]:
    return [c.replace("{marker}", str(marker)) for c in ADVERSARIAL]


@pytest.mark.parametrize("mode", mathcheck.MODES)
def test_adversarial_outputs_are_wrong_fast_and_inert(mode: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    for completion in _adversarial(marker):
        for gold in ("5", "\\frac{\\sqrt{3}}{2}"):
            start = time.perf_counter()
            assert answers_match(completion, gold, mode) is False
            assert time.perf_counter() - start < 2, (mode, completion[:60])
    assert not marker.exists()
    assert answers_match(MB + "\\boxed{5}", "5", mode) is True  # the answer at the end of 1 MB is still read


def test_adversarial_outputs_off_the_main_thread(tmp_path: Path) -> None:
    # math-verify's alarms only work in the main thread: here the size guards alone must bound the time.
    worst: list[float] = []

    def run() -> None:
        for completion in _adversarial(tmp_path / "pwned"):
            start = time.perf_counter()
            answers_match(completion, "x+1")
            worst.append(time.perf_counter() - start)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(60)
    assert not thread.is_alive() and len(worst) == len(ADVERSARIAL)
    assert max(worst) < 2


def test_model_output_never_reaches_eval(monkeypatch: pytest.MonkeyPatch) -> None:
    # Our code has no eval. latex2sympy2 turns each NUMBER token of its LaTeX lexer into sympy.Number(text),
    # which sympy parses with eval: allow exactly that, a digits-only literal, and nothing else.
    # math-verify runs in the deadline worker; run the same code in this process so the spy can see it
    monkeypatch.setattr(mathcheck, "verify_equal", lambda p, g: mathcheck.verify_in_process(p, g))
    answers_match("\\boxed{1}", "2")  # imports done (namedtuple uses eval at import time)
    mathcheck._parsed.cache_clear()
    seen: list[str] = []
    real_eval = builtins.eval

    def spy(code: object, *args: object) -> object:
        seen.append(str(code))
        return real_eval(code, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(builtins, "eval", spy)
    marker = Path("/nonexistent/pwned")
    for completion, gold, _, _ in MATCH:
        answers_match(completion, gold)
    for completion in _adversarial(marker)[:23]:
        answers_match(completion, "5")
    literal = re.compile(r"^(Integer|Float) \('?[0-9.]+'? \)$")
    assert seen and all(literal.match(code) for code in seen), [c for c in seen if not literal.match(c)][:5]


NESTED_SIN = "\\boxed{" + "\\sin(" * 15 + "x" + ")" * 15 + "}"  # parsed for minutes: > 120 s in a thread


def test_deadline_bounds_scoring_off_the_main_thread(monkeypatch: pytest.MonkeyPatch) -> None:
    # signal.alarm cannot stop a thread: the worker process is killed at the deadline and the answer scores 0
    monkeypatch.setattr(mathcheck, "DEADLINE_S", 1.0)
    mathcheck._verify_cached.cache_clear()
    assert answers_match("\\boxed{0.5}", "\\frac12")  # the worker is up (its start is outside any deadline)
    got: list[mathcheck.Verdict] = []
    thread = threading.Thread(target=lambda: got.append(mathcheck.check(NESTED_SIN, "\\sin(x)")), daemon=True)
    start = time.perf_counter()
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "scoring hung past its deadline"
    assert time.perf_counter() - start < 30
    # stopped by the worker's deadline, or by math-verify's own alarm (it works there: the worker's main thread)
    assert len(got) == 1 and not got[0].correct
    assert got[0].reason in ("timeout: math-verify used over 1 CPU-s; scored 0", "math-verify: not equivalent")
    mathcheck._verify_cached.cache_clear()
    assert mathcheck.check("\\boxed{0.5}", "\\frac12").correct  # a fresh worker takes the next answer


@pytest.mark.parametrize("process", [True, False])
def test_deadline_worker_returns_timeout_in_time(process: bool) -> None:
    # child process (killed at the deadline), or, where none can start, a thread abandoned at the deadline
    from harness.deadline import TIMEOUT, Worker

    w = Worker("time:sleep")
    w._broken = not process
    assert w.call([0], 30) is None
    start = time.perf_counter()
    assert w.call([3], 0.2) is TIMEOUT  # sleeping uses no CPU: the wall-clock cap (6 x 0.2 s) ends it
    assert time.perf_counter() - start < 2.5
    assert w.call([0], 30) is None  # and the next call is served
    w.close()
