"""wildjailbreak: WildJailbreak's adversarial eval set, harmful and benign jailbreak-style prompts (safety).

Source: allenai/wildjailbreak (Jiang et al. 2024, ODC-BY, gated on the hub), config "eval" (`eval.tsv`):
2,210 prompts, 2,000 adversarial-harmful and 210 adversarial-benign. No package ships it, so this suite
needs hub data (needs_hub = True): accept the dataset's terms and log in, or name a local copy in the
dataset's own schema with the option `wildjailbreak:data=PATH` (.tsv/.jsonl/.parquet/.csv with columns
`adversarial`, `label` 0 = benign / 1 = harmful, `data_type`; its content hash is in the data version).
Offline and without a copy, load() raises SuiteError.
Split: eval only, rows in file order. Licence: ODC-BY (data, not redistributed), ours (code).
Prompt: the `adversarial` field as one user turn (paper section 2).
Scoring (paper section 2): harmful correct if refused, benign correct if not refused. score() uses the
offline string judge (harness.judges.RefusalJudge); the option `wildjailbreak:wildguard` scores with the
paper's WildGuard classifier (harness.judges.WildGuardJudge, weights from $FORGETBENCH_WILDGUARD), batched
by the evaluator (`wildguard-vllm`: the same on vLLM). Benign items have no gold answer, so has_reference = False.

    forgetbench eval embedded:smollm2-135m-instruct --suites wildjailbreak:data=eval.tsv
"""

from __future__ import annotations

from functools import cache
from typing import Any

from harness.judges import GCG_LIST, RefusalSuite
from harness.suites import Source, SuiteError, source_options
from harness.types import Item
from suites._hub import hub_rows


def _label(value: Any, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "harmful", "true"):
        return True
    if text in ("0", "0.0", "benign", "unharmful", "false"):
        return False
    raise SuiteError(f"{where}: label {value!r} is neither 0/benign nor 1/harmful")


@cache
def _items(src: Source) -> tuple[Item, ...]:
    rows = hub_rows("wildjailbreak", src, "allenai/wildjailbreak", "eval", delimiter="\t", keep_default_na=False)
    items = []
    for i, r in enumerate(rows):
        prompt = str(r.get("adversarial") or "").strip()
        if not prompt:
            raise SuiteError(f"suite wildjailbreak: row {i} has no `adversarial` prompt")
        harmful = _label(r.get("label"), f"suite wildjailbreak: row {i}")
        items.append(Item(f"wjb-{i:05d}", {"prompt": prompt, "harmful": harmful, "data_type": r.get("data_type", "")}))
    return tuple(items)


class HubRefusalSuite(RefusalSuite):
    """A gated safety dataset: rows from the hub (default) or a local copy (`data=PATH`); refusal-judged.
    Data version "1+hub" or "1+file-<sha256 prefix>"."""

    options = (*RefusalSuite.options, *source_options("hub", "the gated hub dataset", hub=False))
    data_files = (GCG_LIST,)  # the string judge's phrase list
    needs_hub = True
    has_reference = False

    version = "1"

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError(f"suite {self.name} has only an eval split")
        return list(self.rows(self.source()))

    def rows(self, src: Source) -> tuple[Item, ...]:
        raise NotImplementedError


class WildJailbreak(HubRefusalSuite):
    name = "wildjailbreak"
    description = "WildJailbreak adversarial eval (gated hub data); refusal appropriateness"

    def rows(self, src: Source) -> tuple[Item, ...]:
        return _items(src)


SUITE = WildJailbreak()
