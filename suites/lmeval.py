"""lmeval: any lm-evaluation-harness task as a suite, zero-shot, where lm-eval and the task's data are present.

A family of suites: the option names the task, `--suites lmeval:arc_easy,lmeval:hellaswag`; the suite's
name is that spec (`lmeval:arc_easy`, also what `trained_on` says). The module defines `suite_for`, not
`SUITE`, so the contract test and `all_suites()` skip it; without lm-eval installed, asking for a task is
a SuiteError (`pip install lm-eval`). The option `include=DIR` adds a folder of task YAMLs (lm-eval's
`include_path`, e.g. tasks over local files): `--suites lmeval:my_task+include=tasks/`. Such a folder
defines the prompt, the data and the metric, so a hash of every file in it is in both versions
(`+include-<sha256 prefix>`; data files it names outside the folder are not hashed).
In code: `make_suite(name, include_path)`, or `LMEvalSuite(task, name)` around a task object.
Source and licence: the task's own dataset (its lm-eval YAML names it; licences vary per task), loaded by
lm-eval through `datasets` from the hub cache or local files; offline without a copy, load() raises
SuiteError naming the task. Split: eval = the task's test docs, else its validation docs, in their order.
Mapping (ConfigurableTask interface):
- prompt: the task's description (when a plain string) + `doc_to_text(doc)`, as one user turn; no few-shot.
- output_type multiple_choice -> kind "choice": continuations = `doc_to_choice(doc)` without lm-eval's
  target delimiter (our continuation follows the assistant header); gold = `doc_to_target(doc)` (an index,
  a choice text, or a list of indices); score 1 if the picked text is a gold choice.
- output_type generate_until -> kind "generate": decoding from `generation_kwargs` (max_gen_toks, `until`
  as stop strings, greedy); score = the task's first metric from `process_results(doc, [filtered])`,
  after the completion passes through the task's first filter pipeline (e.g. gsm8k's "strict-match");
  the reference is `doc_to_target(doc)`, or the first of a few renderings of it ("#### X", "The answer is
  X.") that the task's own filter and metric accept.
- loglikelihood / rolling tasks, multiple-input tasks (e.g. lm-eval's winogrande) and groups: SuiteError.
Versions: data "1+lm-eval<version>" (its templates render the prompt), scorer "1+lm-eval<version>" (its
filters and metrics score), each followed by the include folder's hash when one is given.

    forgetbench eval embedded:smollm2-135m-instruct --suites lmeval:arc_easy --limit 8
"""

from __future__ import annotations

from functools import cached_property
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.data import content_tag
from harness.suites import Suite, SuiteError
from harness.types import Decoding, Item

KINDS = {"multiple_choice": "choice", "generate_until": "generate"}


def lm_eval_version() -> str:
    try:
        return f"lm-eval{version('lm-eval')}"
    except PackageNotFoundError:
        return "lm-eval-missing"


def load_task(name: str, include_path: str | None = None) -> Any:
    """The lm-eval task object named `name` (its dataset is loaded now, by lm-eval)."""
    try:
        from lm_eval.tasks import TaskManager
    except ImportError as e:
        raise SuiteError(f"suite lmeval needs lm-eval (pip install lm-eval): {e}") from None
    try:
        manager = TaskManager(include_path=include_path)
        if hasattr(manager, "load"):  # lm-eval >= 0.4.10: flat {"tasks": {...}, "groups": {...}}
            loaded = manager.load(name)
            found = dict(loaded["tasks"]) if not loaded.get("groups") else {}
        else:
            from lm_eval.tasks import get_task_dict

            found = dict(get_task_dict([name], manager))
    except Exception as e:
        raise SuiteError(f"suite lmeval: task {name!r} could not be loaded: {type(e).__name__}: {e}") from None
    tasks = [t for t in found.values() if hasattr(t, "OUTPUT_TYPE")]
    if len(found) != 1 or len(tasks) != 1:
        raise SuiteError(f"suite lmeval: {name!r} is a group or unknown; name one task")
    return tasks[0]


class LMEvalSuite(Suite):
    """One lm-eval task seen through the Suite API (see the module docstring for the mapping)."""

    name = "lmeval"
    version = "1"
    area = "reasoning"  # lm-eval tasks carry no area; override per instance where known
    description = "an lm-eval task by name (lmeval:<task>), zero-shot"

    def __init__(self, task: Any = None, task_name: str = "", include_path: str | None = None) -> None:
        include = str(Path(include_path).expanduser().resolve()) if include_path else None
        if include and not Path(include).is_dir():
            raise SuiteError(f"suite spec 'lmeval:{task_name}+include={include_path}': {include} is not a folder")
        self._task, self.task_name, self._include = task, task_name, include
        self.name = f"lmeval:{task_name}"  # type: ignore[misc]  # one suite per task: results key by name

    @property
    def spec(self) -> str:  # type: ignore[override]
        return f"{self.name}+include={self._include}" if self._include else self.name

    @cached_property
    def _include_tag(self) -> tuple[str, ...]:
        """The include folder's content hash, taken once per suite (when its versions are first asked)."""
        return (content_tag(Path(self._include), "include"),) if self._include else ()

    @cached_property
    def task(self) -> Any:
        task = self._task if self._task is not None else load_task(self.task_name, self._include)
        if task.OUTPUT_TYPE not in KINDS:
            raise SuiteError(f"suite lmeval: {self.task_name}: output_type {task.OUTPUT_TYPE!r} is not supported")
        if getattr(task, "multiple_input", False):
            raise SuiteError(f"suite lmeval: {self.task_name}: multiple-input tasks are not supported")
        return task

    @property
    def kind(self) -> str:  # type: ignore[override]
        return KINDS[self.task.OUTPUT_TYPE]

    def data_source(self) -> str:
        return "+".join((lm_eval_version(), *self._include_tag))

    def scorer_parts(self) -> tuple[str, ...]:
        return (lm_eval_version(), *self._include_tag)

    @property
    def decoding(self) -> Decoding:  # type: ignore[override]
        kwargs = dict(getattr(self.task.config, "generation_kwargs", None) or {})
        until = kwargs.get("until") or []
        stop = (until,) if isinstance(until, str) else tuple(until)
        return Decoding(max_new_tokens=int(kwargs.get("max_gen_toks", 256)), stop=stop)

    # -- data ---------------------------------------------------------------------------------------
    @cached_property
    def _items(self) -> tuple[Item, ...]:
        try:
            docs = list(self.task.eval_docs)
        except SuiteError:
            raise
        except Exception as e:
            raise SuiteError(f"suite lmeval: {self.task_name}: no eval docs: {type(e).__name__}: {e}") from None
        return tuple(Item(f"lmeval-{self.task_name}-{i:05d}", {"doc": doc}) for i, doc in enumerate(docs))

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite lmeval has only an eval split (the task's test, else validation, docs)")
        return list(self._items)

    def prompt(self, item: Item) -> list[dict[str, str]]:
        description = getattr(self.task.config, "description", None)
        text = str(self.task.doc_to_text(item.data["doc"]))
        if isinstance(description, str) and description.strip() and "{{" not in description:
            text = f"{description.strip()}\n\n{text}"
        return [{"role": "user", "content": text}]

    def choices(self, item: Item) -> list[str]:
        return [str(c) for c in self.task.doc_to_choice(item.data["doc"])]

    def _gold_choices(self, item: Item) -> list[str]:
        choices, gold = self.choices(item), self.task.doc_to_target(item.data["doc"])
        golds = gold if isinstance(gold, list) else [gold]
        out = [choices[g] if isinstance(g, int) and 0 <= g < len(choices) else str(g) for g in golds]
        return [g for g in out if g in choices]

    # -- scoring ------------------------------------------------------------------------------------
    def _filtered(self, item: Item, completion: str) -> Any:
        """The completion after the task's first filter pipeline (lm-eval scores filtered responses)."""
        ensembles = getattr(self.task, "_filters", None) or []
        resps: Any = [[completion]]
        for make in ensembles[0].filters if ensembles else ():
            resps = list(make().apply(resps, [item.data["doc"]]))
        out = resps[0]
        return out[0] if isinstance(out, list) else out

    def _metric(self) -> str | None:
        metrics = getattr(self.task.config, "metric_list", None) or []
        return metrics[0].get("metric") if metrics and isinstance(metrics[0], dict) else None

    def score(self, item: Item, completion: str) -> float:
        if self.kind == "choice":
            return float(completion.strip() in {g.strip() for g in self._gold_choices(item)})
        results = self.task.process_results(item.data["doc"], [self._filtered(item, completion)])
        metric = self._metric() or next(iter(results), None)
        value = results.get(metric) if metric is not None else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SuiteError(f"suite lmeval: {self.task_name}: metric {metric!r} gives no per-item number ({value!r})")
        return min(max(float(value), 0.0), 1.0)

    def reference(self, item: Item) -> str:
        if self.kind == "choice":
            golds = self._gold_choices(item)
            if not golds:
                raise SuiteError(f"suite lmeval: {self.task_name}/{item.id}: gold is not among the choices")
            return golds[0]
        target = self.task.doc_to_target(item.data["doc"])
        target = str(target[0] if isinstance(target, list) else target)
        # The task's filter may want a format around the answer (gsm8k's strict-match wants "#### 5"): the
        # first rendering its own filter and metric accept.
        renderings = (target, f"#### {target}", f"The answer is {target}.", f"The final answer is {target}")
        return next((r for r in renderings if self.score(item, r) == 1.0), target)

    def wrong(self, item: Item) -> str:
        if self.kind == "choice":
            golds = {g.strip() for g in self._gold_choices(item)}
            return next((c for c in self.choices(item) if c.strip() not in golds), "")
        return "I do not know."


def make_suite(task_name: str, include_path: str | None = None) -> LMEvalSuite:
    """A suite for one lm-eval task by name; the task (and its data) is loaded on first use."""
    return LMEvalSuite(task_name=task_name, include_path=include_path)


def suite_for(options: tuple[str, ...]) -> LMEvalSuite:
    """`lmeval:<task>[+include=DIR]`: the suite for one task (harness.suites.get_suite calls this)."""
    spec = f"lmeval:{'+'.join(options)}"
    tasks = [o for o in options if "=" not in o]
    settings = [o.partition("=") for o in options if "=" in o]
    for key, _, value in settings:
        if key != "include" or not value:
            raise SuiteError(
                f"suite spec {spec!r}: unknown option {key + '=' + value!r} for lmeval (options: <task>, include=DIR)"
            )
    if len(settings) > 1:
        raise SuiteError(f"suite spec {spec!r}: include= is given twice")
    if len(tasks) != 1:
        raise SuiteError(f"suite spec {spec!r}: name exactly one lm-eval task (lmeval:<task>[+include=DIR])")
    try:
        import lm_eval  # noqa: F401
    except ImportError as e:
        raise SuiteError(f"suite lmeval:{tasks[0]} needs lm-eval (pip install lm-eval): {e}") from None
    return make_suite(tasks[0], settings[0][2] if settings else None)
