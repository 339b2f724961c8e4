"""Read lm-evaluation-harness `--log_samples` output: `results_<time>.json` with `samples_<task>_<time>.jsonl`
beside it (lm-eval writes both into OUTPUT_PATH/<model name>/). Each task becomes the suite `lmeval:<task>`:
items by lm-eval's doc_id, score = the task's first metric (its metric_list order) under the first filter
pipeline in the samples file, prompt hash = lm-eval's own doc/prompt/target hashes. Only numeric per-item
metrics pair (acc, exact_match, ...); a corpus-level one (bleu's tuples) is refused naming it.

    python -c "from harness.logs.lmeval import read_results; print(read_results('tests/data/logs/lmeval/base'))"
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.logs.common import LogsError, LogTask
from harness.types import stable_hash

# task-config keys that say what was measured (the version group); the rest of the config (templates,
# delimiters, few-shot) is the prompt group, except these, which are neither
_VERSION_KEYS = ("dataset_path", "dataset_name", "dataset_kwargs", "test_split", "validation_split", "training_split",
                 "process_docs", "output_type", "metric_list", "filter_list", "repeats", "process_results")  # fmt: skip
_NOT_PROMPT = {"task", "tag", "task_alias", "group", "metadata", "generation_kwargs", "unsafe_code",
               "should_decontaminate", "doc_to_decontamination_query"}  # fmt: skip


def results_files(path: Path) -> list[Path]:
    """The results_*.json a path names: itself, or every one under a directory."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("results_*.json") if p.is_file())


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise LogsError(f"{path}: cannot read ({e.strerror or e})") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise LogsError(f"{path}: corrupt lm-eval results file (not JSON: {str(e)[:80]})") from None


def read_results(path: Path | str) -> dict[str, LogTask]:
    """Every task of every results file under `path`, by suite name; a task logged twice is refused."""
    out: dict[str, LogTask] = {}
    for res in results_files(Path(path)):  # a file given by name may be called anything (--output_path x.json)
        for task in _read_one(res):
            if task.suite in out:
                raise LogsError(
                    f"{path}: {task.suite} is logged twice ({out[task.suite].source} and {task.source}); "
                    "give one run's results_*.json file"
                )
            out[task.suite] = task
    return out


def _read_one(res: Path) -> list[LogTask]:
    doc = _load_json(res)
    if not isinstance(doc, dict) or not isinstance(doc.get("configs"), dict):
        raise LogsError(f"{res}: not an lm-eval results file (no 'configs')")
    stamp = res.name.removesuffix(".json").rsplit("_", 1)[-1]  # lm-eval's date id; `--output_path x.json`: x_<id>
    tasks = []
    for name, cfg in doc["configs"].items():
        samples = res.parent / f"samples_{name}_{stamp}.jsonl"
        if not samples.exists():
            raise LogsError(f"{res}: task {name} has no {samples.name} beside it (run lm_eval with --log_samples)")
        try:
            tasks.append(_task(doc, name, cfg, samples))
        except (KeyError, TypeError, AttributeError) as e:
            raise LogsError(f"{samples}: not in lm-eval's samples format (missing or odd {e})") from None
    return tasks


def _samples(path: Path) -> list[dict[str, Any]]:
    try:
        text = path.read_text()
    except OSError as e:
        raise LogsError(f"{path}: cannot read ({e.strerror or e})") from None
    rows = []
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise LogsError(f"{path}: line {n} is not JSON (corrupt or truncated samples file)") from None
    if not rows:
        raise LogsError(f"{path}: no samples")
    return rows


def _metric(cfg: dict[str, Any], row: dict[str, Any]) -> str:
    listed = [m.get("metric") for m in cfg.get("metric_list") or [] if isinstance(m, dict)]
    for m in [*listed, *row.get("metrics", [])]:
        if isinstance(m, str) and m in row:
            return m
    raise LogsError(f"no per-item metric in the samples (task metrics {listed})")


def _completion(row: dict[str, Any]) -> str:
    resp = row.get("filtered_resps")
    if isinstance(resp, list) and resp and all(isinstance(r, list) and len(r) == 2 for r in resp):
        # loglikelihood choices: (logprob, is_greedy) per choice; show the picked continuation
        scores = [float(r[0]) for r in resp]
        k = scores.index(max(scores))
        args = row.get("arguments") or {}
        cont = (args.get(f"gen_args_{k}") or {}).get("arg_1", f"choice {k}")
        return f"{str(cont).strip()}  (choice {k}, log-prob {scores[k]:.2f})"
    if isinstance(resp, list):
        return "\n".join(map(str, resp))
    return str(resp)


def _task(doc: dict[str, Any], name: str, cfg: dict[str, Any], path: Path) -> LogTask:
    rows = _samples(path)
    first_filter = rows[0].get("filter", "none")
    rows = [r for r in rows if r.get("filter", "none") == first_filter]
    try:
        metric = _metric(cfg, rows[0])
    except LogsError as e:
        raise LogsError(f"{path}: {e}") from None
    ids, scores, hashes, completions, prompts, refs = [], [], [], [], [], []
    seen: set[str] = set()
    for r in rows:
        item = str(r["doc_id"])
        if item in seen:
            raise LogsError(f"{path}: doc_id {item} appears twice under filter {first_filter!r}")
        seen.add(item)
        value = r.get(metric)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise LogsError(
                f"{path}: doc_id {item}: metric {metric!r} is {value!r}, not a per-item number "
                "(a corpus-level metric cannot be paired)"
            )
        ids.append(item)
        scores.append(float(value))
        hashes.append(stable_hash([r.get("doc_hash"), r.get("prompt_hash"), r.get("target_hash")], 16))
        completions.append(_completion(r))
        prompts.append(str(((r.get("arguments") or {}).get("gen_args_0") or {}).get("arg_0", "")))
        refs.append(str(r.get("target", "")))
    run = doc.get("config") or {}
    version = {k: cfg.get(k) for k in _VERSION_KEYS} | {"version": (doc.get("versions") or {}).get(name)}
    prompt = {k: v for k, v in cfg.items() if k not in _NOT_PROMPT and k not in _VERSION_KEYS}
    prompt |= {
        "n-shot": (doc.get("n-shot") or {}).get(name),
        "fewshot_seed": run.get("fewshot_seed"),
        "system_instruction_sha": doc.get("system_instruction_sha"),
        "chat_template_applied": doc.get("chat_template") is not None,
        "fewshot_as_multiturn": doc.get("fewshot_as_multiturn"),
    }
    generation = dict(cfg.get("generation_kwargs") or {}) | dict(run.get("gen_kwargs") or {})
    return LogTask(
        suite=f"lmeval:{name}",
        tool=f"lm-eval@{doc.get('lm_eval_version', '?')}",
        source=str(path),
        metric=metric if first_filter == "none" else f"{metric} (filter {first_filter})",
        item_ids=tuple(ids),
        scores=tuple(scores),
        prompt_hashes=tuple(hashes),
        completions=tuple(completions),
        prompts=tuple(prompts),
        references=tuple(refs),
        version=version,
        prompt=prompt,
        generation=generation,
        model={"model": run.get("model"), "model_args": run.get("model_args"), "name": doc.get("model_name")},
    )
