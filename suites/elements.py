"""elements: chemical element names from symbols and atomic numbers (knowledge).

Source: the `periodictable` package (public domain), 118 elements; two questions each ("Which element
has the symbol Fe?", "Which element has atomic number 26?") = 236 items, eval only. The package
version is part of the suite version. Scoring: the element's name (US or UK spelling) appears as whole
words in the answer, case-insensitive.

    forgetbench eval embedded:smollm2-135m-instruct --suites elements --limit 8
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from harness.scoring import mentions
from harness.suites import Suite, SuiteError
from harness.types import Decoding, Item

UK = {"aluminum": "aluminium", "cesium": "caesium", "sulfur": "sulphur"}

try:
    _VERSION = f"1+periodictable{version('periodictable')}"
except PackageNotFoundError:
    _VERSION = "1"


@cache
def _items() -> tuple[Item, ...]:
    try:
        import periodictable
    except ImportError as e:
        raise SuiteError("suite elements needs the periodictable package: pip install periodictable") from e
    out = []
    for el in periodictable.elements:
        if el.number == 0:  # the package's neutron pseudo-element
            continue
        names = [el.name] + ([UK[el.name]] if el.name in UK else [])
        out.append(Item(f"el-sym-{el.number:03d}", {"ask": f"has the chemical symbol {el.symbol}", "names": names}))
        out.append(Item(f"el-num-{el.number:03d}", {"ask": f"has atomic number {el.number}", "names": names}))
    return tuple(out)


class Elements(Suite):
    name = "elements"
    version = _VERSION
    area = "knowledge"
    description = "Element name from its symbol or atomic number (periodictable data)"
    decoding = Decoding(max_new_tokens=48)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite elements has only an eval split")
        return list(_items())

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Which chemical element {item.data['ask']}? Answer in one sentence."}]

    def score(self, item: Item, completion: str) -> float:
        return float(mentions(completion, item.data["names"]))

    def reference(self, item: Item) -> str:
        return f"That element is {item.data['names'][0]}."

    def wrong(self, item: Item) -> str:
        return "I am not sure which element that is."


SUITE = Elements()
