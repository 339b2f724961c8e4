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
`mmlu:lenient,gsm8k:minerva,countdown`. An option is a switch (`hub`, `lenient`) or `key=value`
(`gsm8k:data=/data/gsm8k.jsonl`; a value may not contain "+" or ","). `parse_suites` / `get_suite`
validate it. Options, never environment variables, change what a suite measures: the data source
(`hub`, `data=PATH`, whose content hash enters the data version), the judge and its backend (scorer
version), lm-eval's task folder (`lmeval:<task>+include=DIR`, both versions).

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
from pathlib import Path
from typing import Any, ClassVar, Literal

from harness.data import PackageFile, content_tag
from harness.errors import ForgetbenchError
from harness.fsio import did_you_mean
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
    "FORGETBENCH_MMLU": "--suites mmlu:hub or mmlu:data=PATH",
    "FORGETBENCH_GSM8K": "--suites gsm8k:hub or gsm8k:data=PATH",
    "FORGETBENCH_MATH500": "--suites math500:hub or math500:data=PATH",
    "FORGETBENCH_ARC_CHALLENGE": "--suites arc_challenge:hub or arc_challenge:data=PATH",
    "FORGETBENCH_HELLASWAG": "--suites hellaswag:hub or hellaswag:data=PATH",
    "FORGETBENCH_WINOGRANDE": "--suites winogrande:hub or winogrande:data=PATH",
    "FORGETBENCH_IFEVAL_RLVR": "--suites ifeval_rlvr:hub or ifeval_rlvr:data=PATH",
    "FORGETBENCH_WILDJAILBREAK": "--suites wildjailbreak:data=PATH",
    "FORGETBENCH_WILDGUARDTEST": "--suites wildguardtest:data=PATH",
    "FORGETBENCH_WILDGUARD_ENGINE": "--suites harmbench:wildguard-vllm",
    "FORGETBENCH_LMEVAL_INCLUDE": "--suites lmeval:<task>+include=DIR",
}


@dataclass(frozen=True)
class Option:
    """One suite option. `part` says which version it belongs to; options sharing a `group` exclude each
    other (a mode switch), and the group's `default` option adds nothing to any version. `stamp` False:
    the suite's own version parts already say it (a judge's ident, a file's content hash), so the name is
    not added again. `value` names what a `key=value` option takes (`data=PATH`); "" for a switch."""

    name: str
    part: Literal["data", "scorer"]
    help: str
    group: str = ""
    default: bool = False
    stamp: bool = True
    value: str = ""

    @property
    def label(self) -> str:
        """How the option is written: `lenient`, `data=PATH`."""
        return f"{self.name}={self.value}" if self.value else self.name


@dataclass(frozen=True)
class Source:
    """Where a suite's items come from (the `source` option group): the suite's own default (`kind` =
    "package", "generated" or "hub"), the hub, or a local file in the hub schema ("file"). `tag` is its part
    of the data version; for a file, a hash of its content (a path says nothing about what the model sees)."""

    kind: str
    tag: str
    path: str = ""


SOURCE_GROUP = "source"
PATH_VALUES = ("PATH", "DIR")  # an option whose value is a file or folder: recorded as an absolute path
LOCAL_FORMATS = ".jsonl/.json/.parquet/.tsv/.csv"


def source_options(default: str, what: str, hub: bool = True) -> tuple[Option, ...]:
    """The data-source switch: the suite's `default` source (described by `what`), `hub` (unless the default
    is the hub) and `data=PATH`, a local copy in the hub dataset's schema. All change the data version."""
    out = [Option(default, "data", f"{what} (default)", SOURCE_GROUP, default=True, stamp=False)]
    if hub:
        out.append(Option("hub", "data", "the hub dataset (needs `datasets`, the network)", SOURCE_GROUP, stamp=False))
    local = f"a local copy in the hub schema ({LOCAL_FORMATS}); its content hash is in the data version"
    out.append(Option("data", "data", local, SOURCE_GROUP, stamp=False, value="PATH"))
    return tuple(out)


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
        """Where the items came from when that varies (the `source` options), else ""; in the data version."""
        return self.source().tag if any(o.group == SOURCE_GROUP for o in self.options) else ""

    def scorer_parts(self) -> tuple[str, ...]:
        """What the scorer depends on beyond `scorer`: checker package versions, the judge's ident."""
        return ()

    def _by_name(self) -> dict[str, Option]:
        return {o.name: o for o in self.options}

    def _parts(self, part: str) -> list[str]:
        by_name = self._by_name()
        out = []
        for chosen in self.chosen:
            o = by_name[chosen.partition("=")[0]]
            if o.part == part and not o.default and o.stamp:
                out.append(chosen)
        return out

    @property
    def data_version(self) -> str:
        """Keys the stored records: what the model is shown (items, prompt, data options, data source)."""
        return "+".join(p for p in (self.version, self.data_source(), *self._parts("data")) if p)

    @property
    def scorer_version(self) -> str:
        """Checked by the comparator, never a record key: how completions become scores."""
        return "+".join(p for p in (self.scorer, *self.scorer_parts(), *self._parts("scorer")) if p)

    def pick(self, group: str) -> str:
        """The chosen option of an exclusive group, else the group's default."""
        names = [o.name for o in self.options if o.group == group]
        picked = [n for n in (c.partition("=")[0] for c in self.chosen) if n in names]
        if picked:
            return picked[0]
        return next(o.name for o in self.options if o.group == group and o.default)

    def option_value(self, name: str) -> str | None:
        """The value of a chosen `name=value` option, None when it was not chosen."""
        return next((v for n, _, v in (c.partition("=") for c in self.chosen) if n == name), None)

    def source(self) -> Source:
        """The chosen data source (suites that declare `source_options`), resolved once per suite instance:
        a local file is hashed when the spec is resolved, and that hash is what the data version says. A
        missing file is a SuiteError naming the spec."""
        if "_source" in self.__dict__:
            return self.__dict__["_source"]
        kind = self.pick(SOURCE_GROUP)
        if kind != "data":
            return Source(kind, kind)
        value = self.option_value("data") or ""
        path = Path(value)
        if not path.is_file():
            raise SuiteError(f"suite spec {self.spec!r}: data={value} is not a file")
        src = self.__dict__["_source"] = Source("file", content_tag(path), str(path))
        return src

    def with_options(self, options: tuple[str, ...] | list[str]) -> Suite:
        """A copy of this suite with the options set; SuiteError (one line, the spec) for a bad one."""
        spec = f"{self.name}:{'+'.join(options)}"
        by_name = self._by_name()
        known = ", ".join(o.label for o in self.options) or "none"
        names, chosen = [], []
        for raw in options:
            name, eq, value = raw.partition("=")
            if name not in by_name:
                hint = did_you_mean(name, by_name)
                raise SuiteError(
                    f"suite spec {spec!r}: unknown option {name!r}{hint} for {self.name} (options: {known})"
                )
            o = by_name[name]
            if o.value and not value:
                raise SuiteError(f"suite spec {spec!r}: option {name!r} takes a value ({o.label})")
            if not o.value and eq:
                raise SuiteError(f"suite spec {spec!r}: option {name!r} takes no value (options: {known})")
            if o.value in PATH_VALUES:  # recorded absolute, so `report` re-resolves it from any folder
                raw = f"{name}={Path(value).expanduser().resolve()}"
            names.append(name)
            chosen.append(raw)
        if len(set(names)) != len(names):
            raise SuiteError(f"suite spec {spec!r}: an option is given twice")
        groups = [by_name[n].group for n in names if by_name[n].group]
        if len(set(groups)) != len(groups):
            raise SuiteError(f"suite spec {spec!r}: options of one group exclude each other")
        out = copy.copy(self)
        out.__dict__.pop("_source", None)  # resolved afresh for these options
        out.chosen = tuple(chosen)
        _ = out.data_version  # a bad data option (a missing file) is an error now, before any model runs
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
            "options": [o.label for o in self.options],
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
        hint = did_you_mean(name, [*suites, *families])
        raise SuiteError(f"unknown suite {name!r}{hint} in spec {spec!r}; known: {known}")
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


def train_items(suite: Suite, limit: int | None = None) -> list[Item]:
    """The train split's first `limit` items (what `train` and `data-score suite:` use); a one-line error when the
    suite has none."""
    try:
        items = load_items(suite, limit, split="train")
    except (SuiteError, KeyError, ValueError) as e:
        raise SuiteError(f"suite {suite.name} has no train split: {e}") from None
    if not items:
        raise SuiteError(f"suite {suite.name}: the train split is empty")
    return items
