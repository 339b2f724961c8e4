"""Shared base of the math suites (gsm8k, math500): the prompt, the two scorer modes and the version.

Not a suite itself (discovery skips files starting with "_").
"""

from __future__ import annotations

from typing import ClassVar

from harness.mathcheck import answers_match, mode_from_env, mode_version
from harness.suites import Suite, SuiteError
from harness.types import Item
from suites._olmo import source_version

PROMPT = "{problem}\n\nReason about the problem, derive your answer, and wrap your final answer in $\\boxed{{ }}$."


class MathSuite(Suite):
    """Items carry the problem under `problem_key` and the gold under "answer". Scoring mode: the
    constructor's, else FORGETBENCH_MATH_SCORER ("math-verify" default, or the paper's "minerva")."""

    area = "math"
    source_env: ClassVar[str]  # FORGETBENCH_<SUITE>: the data source (package, hub, or a local file)
    problem_key: ClassVar[str] = "problem"

    def __init__(self, mode: str | None = None) -> None:
        self._mode = mode  # None: FORGETBENCH_MATH_SCORER decides, read when asked

    @property
    def mode(self) -> str:
        try:
            return mode_from_env(self._mode)
        except ValueError as e:
            raise SuiteError(f"suite {self.name}: {e}") from None

    @property
    def version(self) -> str:  # type: ignore[override]
        return f"1+{source_version(self.source_env)}+{mode_version(self.mode)}"

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": PROMPT.format(problem=item.data[self.problem_key])}]

    def score(self, item: Item, completion: str) -> float:
        return float(answers_match(completion, item.data["answer"], self.mode))

    def reference(self, item: Item) -> str:
        return f"The final answer is $\\boxed{{{item.data['answer']}}}$."
