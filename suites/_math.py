"""Shared base of the math suites (gsm8k, math500): the prompt, the two scorer modes and the versions.

Scorer options: `math-verify` (default: math-verify behind size guards; its version is in the scorer
version) or `minerva` (the paper's Minerva normalisation), e.g. `--suites gsm8k:minerva`. Neither touches
the data version: switching rescores stored completions. Data options: `package` (default), `hub`,
`data=PATH` (suites/_olmo.py), e.g. `--suites gsm8k:hub+minerva`; they change the data version.

Not a suite itself (discovery skips files starting with "_").
"""

from __future__ import annotations

import logging
from typing import ClassVar

from harness.mathcheck import answers_match, check, checker_version, extract_answer, paper_found
from harness.suites import Option, Suite
from harness.types import Item, Score
from suites._olmo import OLMO_SOURCES, source_version

PROMPT = "{problem}\n\nReason about the problem, derive your answer, and wrap your final answer in $\\boxed{{ }}$."


class MathSuite(Suite):
    """Items carry the problem under `problem_key` and the gold under "answer". Scoring mode: an option
    (`math-verify` default, or the paper's `minerva`); `GSM8K("minerva")` is the same as `gsm8k:minerva`."""

    area = "math"
    version = "1"
    problem_key: ClassVar[str] = "problem"
    options = (
        Option("math-verify", "scorer", "math-verify behind size guards (default)", "mode", default=True),
        Option("minerva", "scorer", "the paper's Minerva normalisation, exact string match", "mode"),
        *OLMO_SOURCES,
    )

    def __init__(self, mode: str | None = None) -> None:
        self.chosen = (mode,) if mode else ()
        if mode:
            self.with_options(self.chosen)  # validates

    @property
    def mode(self) -> str:
        return self.pick("mode")

    def data_source(self) -> str:
        return source_version(self.source())

    def scorer_parts(self) -> tuple[str, ...]:
        return (checker_version(),) if self.mode == "math-verify" else ()

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": PROMPT.format(problem=item.data[self.problem_key])}]

    parses = True

    def score(self, item: Item, completion: str) -> float:
        return float(answers_match(completion, item.data["answer"], self.mode))

    def parse(self, item: Item, completion: str) -> str | None:
        """The mode's extracted answer; the paper's rule falls back to the whole text, which is no answer."""
        return extract_answer(completion) if self.mode == "math-verify" else paper_found(completion)

    def scored(self, item: Item, completion: str) -> Score:
        verdict = check(completion, item.data["answer"], self.mode)
        if verdict.reason.startswith("timeout"):  # logged as answers_match (score) logs it
            logging.getLogger("harness.mathcheck").warning("math scoring: %s", verdict.reason)
        return Score(float(verdict.correct), self.parse(item, completion), verdict.reason)

    def reference(self, item: Item) -> str:
        return f"The final answer is $\\boxed{{{item.data['answer']}}}$."
