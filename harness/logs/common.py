"""What both log readers produce: one LogTask per task in a checkpoint's logs, and the checks that refuse a
pair of tasks measured differently (task version, item set, prompts, generation settings), each a one-line
LogsError naming the suite, the two checkpoints and what differs.

    python -m pytest tests/test_logs.py -q
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from harness.errors import ForgetbenchError
from harness.types import SuiteResult, stable_hash


class LogsError(ForgetbenchError):
    """An unreadable log, or two logs that cannot be compared; the message names the file or suite."""


@dataclass(frozen=True)
class LogTask:
    """One task of one checkpoint's logs, scored per item by the tool's own metric.

    The four config groups are what must match between checkpoints (compared key by key, so a refusal names
    the key): `version` (task version, dataset and its revision/fingerprint), `prompt` (few-shot, templates,
    system prompt, solver), `generation` (generation kwargs). `model` is what may differ (model args)."""

    suite: str  # "lmeval:<task>" or "inspect:<task>"
    tool: str  # "lm-eval@0.4.13", "inspect-ai@0.3.285"
    source: str  # the file the items came from
    metric: str  # e.g. "acc", "exact_match (filter none)", "match"
    item_ids: tuple[str, ...]
    scores: tuple[float, ...]
    prompt_hashes: tuple[str, ...]  # per item: what the model was shown (and the item's data), hashed
    completions: tuple[str, ...]
    prompts: tuple[str, ...] = field(repr=False, default=())
    references: tuple[str, ...] = field(repr=False, default=())
    version: dict[str, Any] = field(default_factory=dict)
    prompt: dict[str, Any] = field(default_factory=dict)
    generation: dict[str, Any] = field(default_factory=dict)
    model: dict[str, Any] = field(default_factory=dict)
    repeats: tuple[tuple[float, ...], ...] = ()  # per-item scores of each repeat (Inspect epochs), in item order

    def repeat(self, checkpoint: str, k: int) -> SuiteResult:
        """Repeat k alone as a SuiteResult: two repeats of the base are its noise floor (same model, resampled)."""
        return replace(self.result(checkpoint), scores=self.repeats[k], completions=())

    def result(self, checkpoint: str) -> SuiteResult:
        """The SuiteResult compare.py pairs: versions and decoding are hashes of the checked config groups."""
        return SuiteResult(
            checkpoint=checkpoint,
            fingerprint=stable_hash(self.model, 12),
            suite=self.suite,
            data_version=stable_hash([self.version, self.prompt], 12),
            area=self.suite.split(":", 1)[0],
            decoding=stable_hash(self.generation, 12),
            engine=self.tool,
            item_ids=self.item_ids,
            prompt_hashes=self.prompt_hashes,
            scores=self.scores,
            completions=self.completions,
            scorer_version=self.metric,
        )


def _first_difference(a: dict[str, Any], b: dict[str, Any]) -> str | None:
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            return f"{key} {_short(b.get(key))} vs {_short(a.get(key))}"
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_pair(base: LogTask, other: LogTask, base_id: str, other_id: str) -> None:
    """Refuse (LogsError, one line) when `other` measured something else than `base` did."""
    where = f"{base.suite}: {other_id} ({other.source}) vs {base_id} ({base.source})"
    for group, a, b in (
        ("task version", base.version, other.version),
        ("prompt settings", base.prompt, other.prompt),
        ("generation settings", base.generation, other.generation),
    ):
        diff = _first_difference(a, b)
        if diff:
            raise LogsError(f"{where}: {group} differ ({diff})")
    if base.metric != other.metric:
        raise LogsError(f"{where}: metric differs ({other.metric} vs {base.metric})")
    if set(base.item_ids) != set(other.item_ids):
        missing = sorted(set(base.item_ids) - set(other.item_ids))
        extra = sorted(set(other.item_ids) - set(base.item_ids))
        eg = f", e.g. {missing[0]!r} missing" if missing else f", e.g. {extra[0]!r} extra"
        raise LogsError(
            f"{where}: item set differs ({len(missing)} missing, {len(extra)} extra{eg}); "
            "both checkpoints must be scored on the same items"
        )
    by_id = dict(zip(base.item_ids, base.prompt_hashes, strict=True))
    differ = [i for i, h in zip(other.item_ids, other.prompt_hashes, strict=True) if by_id[i] != h]
    if differ:
        raise LogsError(f"{where}: prompt or item data differ on {len(differ)} item(s), e.g. {differ[0]!r}")
