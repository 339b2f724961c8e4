"""wildjailbreak: WildJailbreak's adversarial eval set, harmful and benign jailbreak-style prompts (safety).

Source: allenai/wildjailbreak (Jiang et al. 2024, ODC-BY, gated on the hub), config "eval" (`eval.tsv`):
2,210 prompts, 2,000 adversarial-harmful and 210 adversarial-benign. No package ships it, so this suite
needs hub data (needs_hub = True): accept the dataset's terms and log in, or point FORGETBENCH_WILDJAILBREAK
at a local copy in the dataset's own schema (.tsv/.jsonl/.parquet/.csv with columns `adversarial`,
`label` 0 = benign / 1 = harmful, `data_type`). Offline and without a copy, load() raises SuiteError.
Split: eval only, rows in file order. Licence: ODC-BY (data, not redistributed), ours (code).
Prompt: the `adversarial` field as one user turn (paper section 2).
Scoring (paper section 2): harmful correct if refused, benign correct if not refused. score() uses the
offline string judge (harness.judges.RefusalJudge); the option `wildjailbreak:wildguard` scores with the
paper's WildGuard classifier (harness.judges.WildGuardJudge, weights from $FORGETBENCH_WILDGUARD), batched
by the evaluator. Benign items have no gold answer, so has_reference = False.

    FORGETBENCH_WILDJAILBREAK=eval.tsv forgetbench eval embedded:smollm2-135m-instruct --suites wildjailbreak
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import socket
from functools import cache
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlparse

from harness.judges import GCG_LIST, RefusalSuite
from harness.suites import SuiteError
from harness.types import Item

ENV = "FORGETBENCH_WILDJAILBREAK"


def read_local(path: Path) -> list[dict[str, Any]]:
    """Rows of a local copy of a hub dataset: .jsonl/.json, .parquet, .tsv or .csv."""
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        text = path.read_text(encoding="utf-8")
        if text.lstrip().startswith("["):
            return list(json.loads(text))
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    if suffix == ".parquet":
        import pandas as pd

        return pd.read_parquet(path).to_dict(orient="records")
    if suffix in (".tsv", ".csv"):
        with path.open(encoding="utf-8", newline="") as fh:
            return list(csv.DictReader(fh, delimiter="\t" if suffix == ".tsv" else ","))
    raise SuiteError(f"{path}: unsupported file type {suffix!r} (use .jsonl, .json, .parquet, .tsv or .csv)")


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP probe, so an offline machine fails at once instead of after ~25 s of hub retries."""
    host = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co")).hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def source_tag(env: str) -> str:
    """ "hub", or "file-<sha256 prefix>" when `env` names a local copy: part of the suite version."""
    local = os.environ.get(env)
    if not local:
        return "hub"
    try:
        return f"file-{hashlib.sha256(Path(local).read_bytes()).hexdigest()[:12]}"
    except OSError:
        return "file-missing"


def hub_rows(
    suite: str,
    env: str,
    repo: str,
    config: str | None = None,
    split: str = "train",
    use_local: bool = True,
    **load_kwargs: Any,
) -> list[dict[str, Any]]:
    """Rows of a hub dataset, or of the local copy named by the environment variable `env`."""
    local = os.environ.get(env) if use_local else None
    if local:
        path = Path(local)
        if not path.is_file():
            raise SuiteError(f"suite {suite}: {env}={local} is not a file")
        return read_local(path)
    flags = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")
    offline = any(os.environ.get(v, "").lower() in ("1", "true", "yes") for v in flags)
    hint = f"needs hub data: {repo} (gated: accept its terms and log in), or set {env} to a local copy"
    if not offline and not _hub_reachable():
        raise SuiteError(f"suite {suite} {hint}; the hub is not reachable (HF_HUB_OFFLINE=1 uses a cached copy)")
    try:
        import datasets

        ds = datasets.load_dataset(repo, config, split=split, **load_kwargs)
    except ImportError:
        raise SuiteError(f"suite {suite} {hint}; loading it needs the datasets package") from None
    except Exception as e:
        raise SuiteError(f"suite {suite} {hint}: {type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
    return [dict(r) for r in ds]


def _label(value: Any, where: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "harmful", "true"):
        return True
    if text in ("0", "0.0", "benign", "unharmful", "false"):
        return False
    raise SuiteError(f"{where}: label {value!r} is neither 0/benign nor 1/harmful")


@cache
def _items(source: str) -> tuple[Item, ...]:
    rows = hub_rows("wildjailbreak", ENV, "allenai/wildjailbreak", "eval", delimiter="\t", keep_default_na=False)
    items = []
    for i, r in enumerate(rows):
        prompt = str(r.get("adversarial") or "").strip()
        if not prompt:
            raise SuiteError(f"suite wildjailbreak: row {i} has no `adversarial` prompt")
        harmful = _label(r.get("label"), f"suite wildjailbreak: row {i}")
        items.append(Item(f"wjb-{i:05d}", {"prompt": prompt, "harmful": harmful, "data_type": r.get("data_type", "")}))
    return tuple(items)


class HubRefusalSuite(RefusalSuite):
    """A gated safety dataset: rows from the hub or a local copy named by `env`; refusal-judged."""

    env: ClassVar[str]  # FORGETBENCH_<SUITE>: unset/"hub" = the hub, else a local .jsonl/.parquet copy
    data_files = (GCG_LIST,)  # the string judge's phrase list
    needs_hub = True
    has_reference = False

    version = "1"

    def data_source(self) -> str:
        return source_tag(self.env)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError(f"suite {self.name} has only an eval split")
        return list(self.rows(f"{os.environ.get(self.env, '')}:{source_tag(self.env)}"))

    def rows(self, source: str) -> tuple[Item, ...]:
        raise NotImplementedError


class WildJailbreak(HubRefusalSuite):
    name = "wildjailbreak"
    description = "WildJailbreak adversarial eval (gated hub data); refusal appropriateness"
    env = ENV

    def rows(self, source: str) -> tuple[Item, ...]:
        return _items(source)


SUITE = WildJailbreak()
