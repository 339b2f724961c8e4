"""Evaluate checkpoints on suites: the ONLY stage that loads a model, through an Engine.

Plan (checkpoint x suite x decoding) -> look up the store -> claim what is missing (a concurrent run on the
store waits, then re-reads) -> pool every missing request of a checkpoint across suites -> length-sort ->
batch -> engine -> one atomic part file per batch -> SuiteResults.
Records are found by one RecordKey (harness/types.py: fingerprint, suite, data version, decoding, engine; the
prompt hash checked per item), built once per task; scores are computed from the stored completions with
the suite's current scorer (stamped as scorer_version), so a scorer switch or upgrade never regenerates.
A second run finds everything in the store and never imports torch.

    forgetbench eval embedded:smollm2-135m-instruct --suites countdown --limit 8
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from harness.checkpoints.registry import Checkpoint, Registry
from harness.checkpoints.weights import fingerprint, materialise
from harness.engines import Engine, engine_ident, make_engine
from harness.errors import ForgetbenchError
from harness.store import Store, StoreError
from harness.suites import Suite, load_items
from harness.types import Completion, Decoding, Item, Record, RecordKey, SuiteResult, stable_hash


class MissingRecordsError(ForgetbenchError):
    """cached_only was asked and the store lacks records (names the checkpoint)."""


@dataclass(frozen=True)
class EvalConfig:
    """How to evaluate. Saved next to every comparison it produces."""

    engine: str = "hf"  # fake | hf | vllm
    dtype: str | None = None  # None = float32 (part of the cache key); "bfloat16" on GPU
    batch_size: int = 32  # prompts per engine call = records per part file
    limit: int | None = None  # first N items of every suite (suites keep a fixed order)
    limits: dict = field(default_factory=dict, hash=False)  # suite name -> first N items, overriding `limit`
    max_new_tokens: int | None = None  # cap every suite's own generation length at this (None = the suites')
    runs_dir: Path | str = Path("reports/runs")  # a path or an fsspec URL (s3://, gs://, memory://...)
    engine_options: dict = field(default_factory=dict, hash=False)

    def limit_for(self, suite: str) -> int | None:
        """How many items of `suite` to evaluate: its own limit when given, else the global one."""
        return self.limits.get(suite, self.limit)


@dataclass
class _Task:
    ckpt: Checkpoint
    fp: str
    suite: Suite
    items: list[Item]
    hashes: list[str]
    decoding: Decoding
    key: RecordKey
    cached: dict[str, Record] = field(default_factory=dict)

    def missing(self) -> list[int]:
        return [i for i, it in enumerate(self.items) if not self.key.reuses(self.cached.get(it.id), self.hashes[i])]


def decoding_for(suite: Suite, cfg: EvalConfig) -> Decoding:
    """The suite's decoding, its length capped at cfg.max_new_tokens. A cap, not an override: a short-answer
    suite (capitals: 48) keeps its own length while long-form suites are cut to the budget."""
    if not cfg.max_new_tokens:
        return suite.decoding
    return replace(suite.decoding, max_new_tokens=min(cfg.max_new_tokens, suite.decoding.max_new_tokens))


def prompt_hash(suite: Suite, item: Item, ckpt: Checkpoint) -> str:
    """What the model sees: the suite's messages, plus our system turn when the checkpoint asks for one."""
    base = suite.prompt_hash(item)
    return base if ckpt.system_prompt is None else stable_hash([base, ckpt.system_prompt])


def evaluate(
    registry: Registry,
    checkpoints: Iterable[Checkpoint],
    suites: Iterable[Suite],
    cfg: EvalConfig,
    engine: Engine | None = None,
    console: Console | None = None,
    cached_only: bool = False,
) -> dict[str, dict[str, SuiteResult]]:
    """Results by checkpoint id, then suite name. Evaluates only what the store lacks.

    cached_only: raise MissingRecordsError instead of loading a model (report re-rendering, gate).
    """
    console = console or Console(stderr=True)
    store = Store(cfg.runs_dir)
    ident = engine.ident if engine is not None else engine_ident(cfg.engine, cfg.dtype)
    suites = list(suites)
    items = {s.name: load_items(s, cfg.limit_for(s.name)) for s in suites}
    results: dict[str, dict[str, SuiteResult]] = {}
    owned = engine is None
    claim = ExitStack()  # the record groups of the checkpoint being evaluated (see Store.claim)
    try:
        for ckpt in checkpoints:
            fp = fingerprint(ckpt)
            store.note_checkpoint(fp, ckpt.to_dict() | {"fingerprint": fp})
            tasks = []
            for s in suites:
                hashes = [prompt_hash(s, it, ckpt) for it in items[s.name]]
                dec = decoding_for(s, cfg)
                key = RecordKey.of(fp, s, dec, ident)
                tasks.append(_Task(ckpt, fp, s, items[s.name], hashes, dec, key, store.load(key)))
            todo = sum(len(t.missing()) for t in tasks)
            if todo and cached_only:
                raise MissingRecordsError(f"checkpoint {ckpt.id}: {todo} item(s) not in the store {cfg.runs_dir}")
            if todo:  # claim, then re-read: a concurrent run on this store may have evaluated them meanwhile
                keys = [t.key for t in tasks]
                claim.enter_context(store.claim(keys, on_wait=lambda msg: console.print(msg, highlight=False)))
                for t in tasks:
                    t.cached = store.load(t.key)
                todo = sum(len(t.missing()) for t in tasks)
            if todo:
                if engine is None:
                    engine = make_engine(
                        cfg.engine, **({"dtype": cfg.dtype} if cfg.dtype else {}), **cfg.engine_options
                    )
                    if cfg.engine != "fake":
                        engine.batch_size = cfg.batch_size
                engine.load(materialise(ckpt, registry.lineage(ckpt)))
                if engine.ident != ident:
                    raise RuntimeError(f"engine reports {engine.ident}, planned {ident}: cache key would lie")
                _run(engine, tasks, store, cfg.batch_size, todo, ckpt.id, console)
            results[ckpt.id] = {t.suite.name: _result(t, store) for t in tasks}
            claim.close()
    finally:
        claim.close()
        if owned and engine is not None:
            engine.close()
    return results


def _run(
    engine: Engine, tasks: list[_Task], store: Store, batch_size: int, todo: int, label: str, console: Console
) -> None:
    """Pool the missing requests of all suites, sort by length, batch, store each batch as it lands."""
    gen: dict[Decoding, list[tuple[_Task, int, str]]] = {}
    choice: list[tuple[_Task, int, str]] = []
    for t in tasks:
        for i in t.missing():
            text = engine.render(t.suite.prompt(t.items[i]), t.ckpt.system_prompt)
            (choice if t.suite.kind == "choice" else gen.setdefault(t.decoding, [])).append((t, i, text))
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        pid = bar.add_task(f"eval {label}", total=todo, rate="")
        done_tokens = 0
        start = time.perf_counter()

        def land(batch: list[tuple[_Task, int, str]], outs: list[Completion]) -> None:
            nonlocal done_tokens
            store.append(
                [_record(t, i, o.text, o.finish_reason, o.n_tokens) for (t, i, _), o in zip(batch, outs, strict=True)]
            )
            done_tokens += sum(o.n_tokens for o in outs)
            rate = f"{done_tokens / max(time.perf_counter() - start, 1e-9):.0f} tok/s"
            bar.update(pid, advance=len(batch), rate=rate)

        for dec, reqs in gen.items():
            reqs.sort(key=lambda r: -len(r[2]))  # similar lengths share a batch: less padding
            if not engine.streams:
                for k in range(0, len(reqs), batch_size):
                    batch = reqs[k : k + batch_size]
                    land(batch, engine.generate([r[2] for r in batch], dec))
                continue
            # A streaming engine (continuous batching) gets every prompt of this decoding in one call and
            # refills finished rows itself; completions are stored batch_size at a time as they finish.
            batch, outs = [], []
            for j, o in engine.generate_stream([r[2] for r in reqs], dec):
                batch.append(reqs[j])
                outs.append(o)
                if len(batch) == batch_size:
                    land(batch, outs)
                    batch, outs = [], []
            if batch:
                land(batch, outs)
        choice.sort(key=lambda r: -len(r[2]))  # similar lengths share an engine batch
        for k in range(0, len(choice), batch_size):
            batch = choice[k : k + batch_size]
            # One engine call scores every (item, option) pair of the batch.
            options = [t.suite.choices(t.items[i]) for t, i, _ in batch]
            lps = engine.logprobs(
                [text for (_, _, text), opts in zip(batch, options, strict=True) for _ in opts],
                [o for opts in options for o in opts],
            )
            records = []
            for (t, i, _), opts in zip(batch, options, strict=True):
                mine, lps = lps[: len(opts)], lps[len(opts) :]
                best = max(range(len(opts)), key=lambda j: mine[j])
                records.append(_record(t, i, opts[best], "stop", 0))
            store.append(records)
            bar.update(pid, advance=len(batch))


def _record(t: _Task, i: int, text: str, finish: str, n_tokens: int) -> Record:
    return Record(
        fingerprint=t.key.fingerprint,
        suite=t.key.suite,
        data_version=t.key.data_version,
        item_id=t.items[i].id,
        prompt_hash=t.hashes[i],
        decoding=t.key.decoding,
        engine=t.key.engine,
        completion=text,
        finish_reason=finish,
        n_tokens=n_tokens,
    )


def _scores(t: _Task, store: Store, completions: list[str]) -> list[float]:
    """The suite's scores of these completions, through the store's score cache (keyed by the scorer's
    version and each completion's hash): a cached comparison never imports a checker or runs a judge."""
    cache = store.load_scores(t.key, t.suite.scorer_version)
    hashes = [stable_hash(c) for c in completions]
    todo = [k for k, (it, h) in enumerate(zip(t.items, hashes, strict=True)) if cache.get(it.id, ("",))[0] != h]
    if todo:
        fresh = t.suite.score_many([t.items[k] for k in todo], [completions[k] for k in todo], store)
        cache |= {t.items[k].id: (hashes[k], float(v)) for k, v in zip(todo, fresh, strict=True)}
        with contextlib.suppress(StoreError):  # a read-only store still compares; it just rescores next time
            store.save_scores(t.key, t.suite.scorer_version, cache)
    return [cache[it.id][1] for it in t.items]


def _result(t: _Task, store: Store) -> SuiteResult:
    recs = store.load(t.key) if t.missing() else t.cached
    rows = [recs[it.id] for it in t.items]
    completions = [r.completion for r in rows]
    return SuiteResult(
        checkpoint=t.ckpt.id,
        fingerprint=t.fp,
        suite=t.suite.name,
        data_version=t.suite.data_version,
        scorer_version=t.suite.scorer_version,
        area=t.suite.area,
        decoding=t.decoding.key(),
        engine=t.key.engine,
        item_ids=tuple(it.id for it in t.items),
        prompt_hashes=tuple(r.prompt_hash for r in rows),
        scores=tuple(_scores(t, store, completions)),
        completions=tuple(completions),
    )
