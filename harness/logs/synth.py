"""Write lm-eval `--log_samples` output of any size in the real format, from a committed fixture run: for the
benchmark (`scripts/bench.py logs`) and tests that need many items with a planted effect. The results file
and each sample row keep every field the fixture has; doc ids, hashes and metric values are replaced.

    python -c "from harness.logs.synth import write_lmeval; print(write_lmeval('/tmp/b', [1.0, 0.0] * 500))"
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "data" / "logs" / "lmeval" / "base"


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def write_lmeval(
    out: Path | str,
    scores: Sequence[float],
    task: str = "tinyqa",
    template: Path = FIXTURE,
    model: str = "synthetic",
    stamp: str = "2026-01-01T00-00-00.000000",
) -> Path:
    """results_<stamp>.json + samples_<task>_<stamp>.jsonl under `out`, one doc per score (doc_id = index)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = next(template.glob("results_*.json"))
    doc = json.loads(res_path.read_text())
    fixture_stamp = res_path.name.removeprefix("results_").removesuffix(".json")
    row = json.loads((template / f"samples_{task}_{fixture_stamp}.jsonl").read_text().splitlines()[0])
    metric = row["metrics"][0]
    doc["configs"] = {task: doc["configs"][task]}
    doc["versions"] = {task: doc["versions"][task]}
    doc["n-shot"] = {task: doc["n-shot"][task]}
    doc["n-samples"] = {task: {"original": len(scores), "effective": len(scores)}}
    doc["results"] = {task: {"alias": task, f"{metric},none": sum(scores) / max(len(scores), 1)}}
    doc["config"] = dict(doc["config"]) | {"model_args": {"pretrained": model}}
    doc["model_name"] = model
    (out / f"results_{stamp}.json").write_text(json.dumps(doc, indent=2))
    lines = []
    for i, score in enumerate(scores):
        question = f"Synthetic question {i}: what is {i} + {i}?"
        r = dict(row) | {"doc_id": i, "doc": {"question": question, "label": 0}, metric: float(score)}
        r["doc_hash"], r["prompt_hash"], r["target_hash"] = _sha(f"doc{i}"), _sha(question), _sha("0")
        lines.append(json.dumps(r))
    (out / f"samples_{task}_{stamp}.jsonl").write_text("\n".join(lines) + "\n")
    return out
