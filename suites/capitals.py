"""capitals: "What is the capital of X?" for every country with a capital in `countryinfo` (knowledge).

Source: the `countryinfo` package (MIT), its bundled country data; the package version is part of the
suite version because the data may change with it. Split: eval only (all countries that name a capital,
sorted by name). Scoring: the capital's name appears as whole words in the answer (case- and
accent-insensitive; alternative spellings from the data accepted).

    forgetbench eval embedded:smollm2-135m-instruct --suites capitals --limit 8
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import PackageNotFoundError, version

from harness.scoring import mentions
from harness.suites import Suite, SuiteError
from harness.types import Decoding, Item

try:
    _VERSION = f"1+countryinfo{version('countryinfo')}"
except PackageNotFoundError:
    _VERSION = "1"


@cache
def _items() -> tuple[Item, ...]:
    try:
        from countryinfo import all_countries
    except ImportError as e:
        raise SuiteError("suite capitals needs the countryinfo package: pip install countryinfo") from e
    rows = []
    for c in all_countries():
        capital, name = c.capital(), c.name()
        if isinstance(capital, list):  # a few entries hold a list (e.g. Vatican City)
            capital = capital[0] if capital else None
        if not capital or not name:
            continue
        rows.append((name.title(), capital))
    rows.sort()
    return tuple(Item(f"cap-{i:04d}", {"country": n, "capital": cap}) for i, (n, cap) in enumerate(rows))


class Capitals(Suite):
    name = "capitals"
    version = _VERSION
    area = "knowledge"
    description = "Capital city of each country (countryinfo data)"
    decoding = Decoding(max_new_tokens=48)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite capitals has only an eval split")
        return list(_items())

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [
            {
                "role": "user",
                "content": f"What is the capital of {item.data['country']}? Answer in one sentence.",
            }
        ]

    def score(self, item: Item, completion: str) -> float:
        return float(mentions(completion, [item.data["capital"]]))

    def reference(self, item: Item) -> str:
        return f"The capital of {item.data['country']} is {item.data['capital']}."

    def wrong(self, item: Item) -> str:
        return "I am not sure which city that is."


SUITE = Capitals()
