"""Evaluation-side probes a comparison reads beside its deltas: the noise floor and the KL predictor.

Noise floor: the base scored a second time under a change that should not matter. Suites sampled at
temperature > 0 get another seed (decoding seed + 1); greedy suites another batch size (half of
--batch-size, or 2 when it is 1). Greedy decoding ignores the seed, so the second greedy run marks itself
in the seed field instead (GREEDY_SEED + its batch size): a distinct key in the record store, so it is
cached like any evaluation, a normal run never reads it, and another batch size is another key.

KL predictor (RL's Razor, Shenfeld et al. 2025): per checkpoint, on its target suites' prompts (generate
suites; at most KL_ITEMS items each), KL(base || ckpt) = mean over the base's samples y (temperature 1,
stored as records) of log p_base(y | x) - log p_ckpt(y | x), and the reverse from the checkpoint's own
samples; nats per sequence, Monte Carlo. The sample texts are re-tokenised by Engine.logprobs and the
end-of-sequence token is not scored: an estimate of the KL of the completions' text, not of token streams.
Log-probs are cached in <runs_dir>/logprobs/<fingerprint>@<engine>.json, keyed by prompt hash + text.

    forgetbench compare base sft --engine fake --suites arithmetic,countdown --kl
"""

from __future__ import annotations

import copy
import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from harness.checkpoints.registry import Checkpoint, Registry
from harness.checkpoints.weights import fingerprint, materialise
from harness.engines import engine_ident, make_engine
from harness.evaluate import EvalConfig, MissingRecordsError, evaluate, prompt_hash
from harness.fsio import atomic_write
from harness.suites import Suite, load_items
from harness.types import KLPoint, SuiteResult, stable_hash

GREEDY_SEED = 1_000_000  # + the batch size: marks a greedy noise-floor run in the cache key
KL_SEED = 2_000_000  # the temperature-1 samples the KL is estimated from
KL_ITEMS = 64


def _with_decoding(suite: Suite, **changes: Any) -> Suite:
    """The same suite (name, version, items, scorer) decoded differently: a shallow copy, so a distinct cache key."""
    twin = copy.copy(suite)
    twin.decoding = replace(suite.decoding, **changes)  # type: ignore[misc]  # instance shadows the ClassVar
    return twin


def noise_plan(suites: Sequence[Suite], cfg: EvalConfig) -> list[tuple[list[Suite], EvalConfig, dict[str, str]]]:
    """(suites, config, suite -> change) for the second base run: sampled and greedy suites separately."""
    sampled = [s for s in suites if s.kind == "generate" and s.decoding.temperature > 0]
    greedy = [s for s in suites if s not in sampled]
    plan = []
    if sampled:
        twins = [_with_decoding(s, seed=s.decoding.seed + 1) for s in sampled]
        plan.append((twins, cfg, {s.name: f"seed {s.decoding.seed} -> {s.decoding.seed + 1}" for s in sampled}))
    if greedy:
        nb = cfg.batch_size // 2 if cfg.batch_size > 1 else 2
        twins = [_with_decoding(s, seed=GREEDY_SEED + nb) for s in greedy]
        change = f"batch size {cfg.batch_size} -> {nb}"
        plan.append((twins, replace(cfg, batch_size=nb), {s.name: change for s in greedy}))
    return plan


def noise_floor(
    registry: Registry,
    base: Checkpoint,
    suites: Sequence[Suite],
    cfg: EvalConfig,
    console: Console,
    cached_only: bool = False,
) -> tuple[dict[str, tuple[SuiteResult, str]], list[str]]:
    """suite -> (the base's second run, what changed), for compare(noise=...); and notes."""
    out: dict[str, tuple[SuiteResult, str]] = {}
    for twins, run_cfg, change in noise_plan(suites, cfg):
        try:
            res = evaluate(registry, [base], twins, run_cfg, console=console, cached_only=cached_only)
        except MissingRecordsError:
            return {}, ["noise floor: not in the store (run `compare` to measure it)"]
        out |= {name: (r, change[name]) for name, r in res[base.id].items()}
    return out, []


# -- KL -----------------------------------------------------------------------------------------------------


class _LogprobCache:
    """log p(text | prompt) of one model under one engine, on disk as one JSON object (atomic rewrite)."""

    def __init__(self, root: Path | str, fp: str, ident: str) -> None:
        if isinstance(root, str) and "://" in root:  # log-probs are a local cache; a URL store keeps only records
            raise ValueError(f"--kl needs a local --runs-dir for its log-prob cache, not {root}")
        self.path = Path(root) / "logprobs" / f"{fp}@{ident.replace('/', '_')}.json"
        self.data: dict[str, float] = json.loads(self.path.read_text()) if self.path.exists() else {}

    @staticmethod
    def key(phash: str, text: str) -> str:
        return stable_hash([phash, text])

    def save(self) -> None:
        atomic_write(self.path, json.dumps(self.data, sort_keys=True))


def _samples(res: SuiteResult, items: dict[str, Any], suite: Suite, ckpt: Checkpoint) -> list[tuple[Any, str, str]]:
    return [
        (items[i], prompt_hash(suite, items[i], ckpt), c) for i, c in zip(res.item_ids, res.completions, strict=True)
    ]


def kl_points(
    registry: Registry,
    base: Checkpoint,
    candidates: Sequence[Checkpoint],
    suites: Sequence[Suite],
    cfg: EvalConfig,
    console: Console,
    cached_only: bool = False,
) -> tuple[list[KLPoint], list[str]]:
    """KL(base || ckpt) and KL(ckpt || base) on each candidate's target prompts (see the module docstring)."""
    by_name = {s.name: s for s in suites if s.kind == "generate"}
    targets = {c.id: [by_name[t] for t in c.trained_on if t in by_name] for c in candidates}
    chosen = [c for c in candidates if targets[c.id]]
    if not chosen:
        return [], ["KL: no candidate has a generate suite among its evaluated targets"]
    need = sorted({s.name for c in chosen for s in targets[c.id]})
    twins = [_with_decoding(by_name[n], temperature=1.0, top_p=1.0, seed=KL_SEED) for n in need]
    kl_cfg = replace(cfg, limit=min(cfg.limit or KL_ITEMS, KL_ITEMS), limits={})
    try:
        samples = evaluate(registry, [base, *chosen], twins, kl_cfg, console=console, cached_only=cached_only)
    except MissingRecordsError:
        return [], ["KL: samples not in the store (run `compare --kl` to draw them)"]
    items = {n: {it.id: it for it in load_items(by_name[n], kl_cfg.limit)} for n in need}
    # what each model must score: the base scores everyone's samples, a candidate the base's and its own
    todo: dict[str, list[tuple[Checkpoint, Suite, Any, str, str]]] = {base.id: []}
    for c in chosen:
        todo.setdefault(c.id, [])
        for s in targets[c.id]:
            for who in (base, c):
                for it, _ph, text in _samples(samples[who.id][s.name], items[s.name], s, who):
                    for model in (base, c):
                        todo[model.id].append((model, s, it, text, who.id))
    ident = engine_ident(cfg.engine, cfg.dtype)
    lp: dict[tuple[str, str, str, str], float] = {}  # (model, suite, item, text) -> log p
    engine = None
    try:
        for model_id, rows in todo.items():
            model = next(m for m in [base, *chosen] if m.id == model_id)
            cache = _LogprobCache(cfg.runs_dir, fingerprint(model), ident)
            missing = []
            for _m, s, it, text, _who in rows:
                k = cache.key(prompt_hash(s, it, model), text)
                if k in cache.data:
                    lp[(model_id, s.name, it.id, text)] = cache.data[k]
                else:
                    missing.append((s, it, text, k))
            if missing and cached_only:
                return [], [f"KL: log-probs of {model_id} not cached (run `compare --kl`)"]
            if missing:
                if engine is None:
                    engine = make_engine(
                        cfg.engine, **({"dtype": cfg.dtype} if cfg.dtype else {}), **cfg.engine_options
                    )
                    if cfg.engine != "fake":
                        engine.batch_size = cfg.batch_size  # type: ignore[attr-defined]
                engine.load(materialise(model, registry.lineage(model)))
                uniq = list({k: (s, it, text, k) for s, it, text, k in missing}.values())
                for start in range(0, len(uniq), cfg.batch_size):
                    batch = uniq[start : start + cfg.batch_size]
                    prompts = [engine.render(s.prompt(it), model.system_prompt) for s, it, _t, _k in batch]
                    values = engine.logprobs(prompts, [t for _s, _i, t, _k in batch])
                    for (s, it, text, k), v in zip(batch, values, strict=True):
                        cache.data[k] = float(v)
                        lp[(model_id, s.name, it.id, text)] = float(v)
                cache.save()
    finally:
        if engine is not None:
            engine.close()
    points = []
    for c in chosen:
        fwd, rev = [], []
        for s in targets[c.id]:
            for who, sink, first, second in ((base, fwd, base, c), (c, rev, c, base)):
                for it, _ph, text in _samples(samples[who.id][s.name], items[s.name], s, who):
                    key = (s.name, it.id, text)
                    sink.append(lp[(first.id, *key)] - lp[(second.id, *key)])
        points.append(
            KLPoint(
                checkpoint=c.id,
                kl_base_ckpt=sum(fwd) / len(fwd),
                kl_ckpt_base=sum(rev) / len(rev) if rev else None,
                n_samples=len(fwd),
                suites=tuple(s.name for s in targets[c.id]),
            )
        )
    return points, []


def run_probes(
    registry: Registry,
    ckpts: Sequence[Checkpoint],
    suites: Sequence[Suite],
    cfg: EvalConfig,
    console: Console,
    noise: bool = True,
    kl: bool = False,
    cached_only: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for compare(): noise=..., kl=...; notes are printed to the console."""
    extra: dict[str, Any] = {}
    notes: list[str] = []
    if noise:
        extra["noise"], more = noise_floor(registry, ckpts[0], suites, cfg, console, cached_only)
        notes += more
    if kl and len(ckpts) > 1:
        extra["kl"], more = kl_points(registry, ckpts[0], ckpts[1:], suites, cfg, console, cached_only)
        notes += more
    for n in notes:
        console.print(f"[yellow]note:[/] {n}", highlight=False)
    return extra
