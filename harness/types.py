"""The nouns every stage shares: Checkpoint, Decoding, Completion, Item, Record, SuiteResult, Delta, Comparison
(and its parts: PairDiff, SuitePower, MatchedGain, NoiseFloor, KLPoint).

Frozen dataclasses only, no torch: scoring, compare, report and gate import this without a model stack.
Every record on disk carries SCHEMA_VERSION, the suite version, the prompt hash and the decoding key, so a
number can always be traced back to exactly what produced it.

    python -c "from harness.types import Decoding; print(Decoding().key())"
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from harness.errors import ForgetbenchError

SCHEMA_VERSION = 1

FinishReason = Literal["stop", "length"]


class RegistryError(ForgetbenchError):
    """Invalid registry entry or checkpoint path/file; the message names the file, entry and field."""


@dataclass(frozen=True)
class Checkpoint:
    """One model to evaluate: where its weights are, in which format, and its lineage (registry.py)."""

    id: str
    path: str  # a local path, an `embedded:NAME`, or a hub id `org/name[@revision]`
    format: str  # harness.checkpoints.registry.FORMATS
    method: str = "other"
    base: str | None = None  # parent id or path (lineage); needed by bare state dicts and adapters
    trained_on: tuple[str, ...] = ()
    hparams: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    chat_template: str = "native"
    system_prompt: str | None = None
    notes: str = ""
    group: str = ""  # replicate group (harness/groups.py); "" = derived from method, trained_on, hparams but seed
    data_score: dict[str, Any] | None = field(default=None, hash=False, compare=False)  # harness/datascore.py
    logs: str | None = None  # lm-eval / Inspect sample logs standing in for evaluation (harness/logs)

    def to_dict(self) -> dict[str, Any]:
        d = {
            "id": self.id,
            "path": self.path,
            "method": self.method,
            "base": self.base,
            "trained_on": list(self.trained_on),
            "hparams": dict(self.hparams),
            "chat_template": self.chat_template,
            "system_prompt": self.system_prompt,
            "notes": self.notes,
            "group": self.group,
            "data_score": dict(self.data_score) if self.data_score else None,
            "logs": self.logs,
        }
        return {k: v for k, v in d.items() if v not in (None, [], {}, "")}


def stable_hash(obj: Any, n: int = 16) -> str:
    """sha256 of canonical JSON, truncated: the one way we hash configs and prompts."""
    blob = json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:n]


@dataclass(frozen=True)
class Decoding:
    """How completions are sampled. Part of the cache key: change any field, get new records."""

    temperature: float = 0.0  # 0 = greedy, as in the paper's evaluation
    top_p: float = 1.0
    max_new_tokens: int = 256
    seed: int = 0  # used only when temperature > 0
    stop: tuple[str, ...] = ()  # extra stop strings; EOS always stops

    def key(self) -> str:
        return stable_hash(asdict(self), 12)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"stop": list(self.stop)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Decoding:
        return cls(**(d | {"stop": tuple(d.get("stop", ()))}))


@dataclass(frozen=True)
class Completion:
    """One engine output: the text and why generation ended ("length" = truncated)."""

    text: str
    finish_reason: str
    n_tokens: int


@dataclass(frozen=True)
class Item:
    """One suite item. `data` is whatever the suite's prompt and score functions need."""

    id: str
    data: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)


@dataclass(frozen=True)
class Record:
    """One stored generation: raw inputs to scoring, never the score itself (rescoring needs no model)."""

    fingerprint: str  # content hash of the checkpoint's weights
    suite: str
    data_version: str  # the suite's data version (what the model was shown)
    item_id: str
    prompt_hash: str
    decoding: str  # Decoding.key()
    engine: str  # "hf@4.57.1", "vllm@0.32.0", "fake@1"
    completion: str
    finish_reason: str
    n_tokens: int
    schema: int = SCHEMA_VERSION


@dataclass(frozen=True)
class RecordKey:
    """The one key of the record store: which group of stored completions answers a request.

    A group is (weights fingerprint, suite, data version, decoding, engine); within it each record also carries
    its item's prompt hash, and a record is reused only when that hash equals the prompt the run would send
    (`reuses`). Built in one place (`RecordKey.of`) from the suite's *data version*: the scorer version is never
    part of it (a scorer change rescores stored completions, it never regenerates).
    """

    fingerprint: str
    suite: str
    data_version: str
    decoding: str  # Decoding.key()
    engine: str  # Engine.ident

    @classmethod
    def of(cls, fingerprint: str, suite: Any, decoding: Decoding, engine: str) -> RecordKey:
        """The key of `suite` (a harness.suites.Suite: its name and data_version) under this decoding/engine."""
        return cls(fingerprint, suite.name, suite.data_version, decoding.key(), engine)

    @classmethod
    def of_record(cls, r: Record) -> RecordKey:
        return cls(r.fingerprint, r.suite, r.data_version, r.decoding, r.engine)

    def reuses(self, record: Record | None, prompt_hash: str) -> bool:
        """May `record` stand for an item whose prompt hashes to `prompt_hash` under this key?"""
        return record is not None and record.prompt_hash == prompt_hash and RecordKey.of_record(record) == self


@dataclass(frozen=True)
class SuiteResult:
    """Per-item scores of one checkpoint on one suite, with what is needed to check comparability."""

    checkpoint: str  # registry id
    fingerprint: str
    suite: str
    data_version: str  # what the model was shown; part of the RecordKey
    area: str
    decoding: str
    engine: str
    item_ids: tuple[str, ...]
    prompt_hashes: tuple[str, ...]
    scores: tuple[float, ...]
    completions: tuple[str, ...] = field(default=(), repr=False)
    scorer_version: str = ""  # how completions became scores (scorer mode, judge, checker versions)
    # What the scorer read (harness/breakdown.py): per item the parsed answer (None = none found), the
    # scorer's reason and its per-category parts; `parses` False = the suite has no answer parser.
    answers: tuple[str | None, ...] = field(default=(), repr=False)
    explanations: tuple[str, ...] = field(default=(), repr=False)
    parts: tuple[tuple[tuple[str, float], ...], ...] = field(default=(), repr=False)
    parses: bool = False

    @property
    def mean(self) -> float:
        return sum(self.scores) / len(self.scores) if self.scores else float("nan")


@dataclass(frozen=True)
class Delta:
    """Paired change of one checkpoint vs the base on one suite, in absolute points (0-100)."""

    suite: str
    area: str
    checkpoint: str
    is_target: bool
    n: int
    base_score: float
    score: float
    delta: float  # score - base_score
    ci_low: float
    ci_high: float
    p_value: float
    q_value: float  # Benjamini-Hochberg across suites x checkpoints
    forgotten: int  # items right under the base, wrong under the checkpoint
    learned: int  # wrong -> right
    informative: bool = True  # the base can show forgetting here (harness/informative.py)
    in_drop: bool = False  # counted in the checkpoint's headline drop


@dataclass(frozen=True)
class CheckpointSummary:
    """Gain/drop of one checkpoint. gain/drop are None when undefined (no trained_on, no non-target)."""

    checkpoint: str
    method: str
    trained_on: tuple[str, ...]
    gain: float | None
    gain_ci: tuple[float, float] | None
    drop: float | None
    drop_ci: tuple[float, float] | None
    deltas: tuple[Delta, ...]
    dominated_by: tuple[str, ...] = ()  # Pareto, resolved: better on one axis (CI), not worse on the other
    notes: tuple[str, ...] = ()
    # drop is over the informative non-target suites (harness/informative.py); drop_all over all of them
    drop_all: float | None = None
    drop_all_ci: tuple[float, float] | None = None
    group: str = ""  # its replicate group (harness/groups.py)


@dataclass(frozen=True)
class ForgottenItem:
    """An item the base got right and the checkpoint got wrong, for the report's browser."""

    checkpoint: str
    suite: str
    item_id: str
    prompt: str
    base_answer: str
    answer: str
    reference: str
    parsed: str | None = None  # the answer the checkpoint's scorer read; None = none found
    base_parsed: str | None = None
    cause: str = ""  # "format" (no answer found), "content" (an answer, wrong); "" = the suite has no parser
    explanation: str = ""  # the scorer's reason, when it gives one


@dataclass(frozen=True)
class PairDiff:
    """Checkpoint a minus checkpoint b (same base, same trained_on), paired on the same bootstrap resamples."""

    a: str
    b: str
    method_a: str
    method_b: str
    drop_diff: float | None  # drop(a) - drop(b), points: positive = a forgets more
    drop_ci: tuple[float, float] | None
    drop_p: float | None  # paired sign-flip test of the suite-averaged difference
    gain_diff: float | None  # gain(a) - gain(b)
    gain_ci: tuple[float, float] | None
    gain_p: float | None
    verdict: str  # one sentence: "... : resolved" / "... : cannot tell"
    seeds_a: int = 1  # a and b are replicate groups (a single checkpoint is a group of one seed)
    seeds_b: int = 1


@dataclass(frozen=True)
class SuitePower:
    """Minimum detectable drop of one suite at the run's n, base score and alpha (paired, two-sided)."""

    suite: str
    n: int
    base_score: float  # points
    alpha: float
    power: float
    mdd: float | None  # minimum detectable drop, points; None = not even a drop to 0 would be detected
    model: str  # "mcnemar" (0/1 scores) or "paired-normal"
    spread: float  # discordance rate (mcnemar) or sd of per-item differences (paired-normal)
    spread_source: str  # "estimated from <k> checkpoint(s)" or the documented assumption


@dataclass(frozen=True)
class MatchedGain:
    """One method's drop at a common gain level, interpolated on its (gain, drop) curve through the base."""

    trained_on: tuple[str, ...]
    method: str
    gain: float  # the common gain level, points
    drop: float
    drop_ci: tuple[float, float]
    checkpoints: tuple[str, ...]  # the curve's points (replicate groups), in gain order
    unreadable: float = 0.0  # fraction of resamples whose curve does not reach this gain (not extrapolated)
    seeds: int = 1  # the fewest seeds of any group on the curve


@dataclass(frozen=True)
class NoiseFloor:
    """The base scored twice under a change that should not matter: what "no change" looks like."""

    suite: str
    change: str  # e.g. "batch size 32 -> 16" or "seed 0 -> 1"
    n: int
    delta: float  # second run - first run, points
    ci_low: float
    ci_high: float
    flips: int  # items whose 0/1 outcome changed
    zero_by_construction: bool = False  # greedy and batch-invariant: the re-score cannot differ, not a floor


@dataclass(frozen=True)
class KLPoint:
    """KL between base and checkpoint on the target suites' prompts, nats per sequence (Monte Carlo)."""

    checkpoint: str
    kl_base_ckpt: float  # KL(base || ckpt), from the base's samples
    kl_ckpt_base: float | None  # KL(ckpt || base), from the checkpoint's samples
    n_samples: int
    suites: tuple[str, ...]


@dataclass(frozen=True)
class Comparison:
    """Everything a renderer needs; pure data, serialisable with to_dict()."""

    base: str
    suites: tuple[str, ...]
    scores: dict[str, dict[str, float]]  # checkpoint -> suite -> mean score (points)
    summaries: tuple[CheckpointSummary, ...]
    forgotten: tuple[ForgottenItem, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    # Added later, all with defaults so older results.json files stay readable.
    pairs: tuple[PairDiff, ...] = ()  # method against method
    ordering: dict[str, Any] = field(default_factory=dict)  # the paper's drop ordering: confirms / refutes / ...
    power: tuple[SuitePower, ...] = ()
    matched_gain: tuple[MatchedGain, ...] = ()
    noise: tuple[NoiseFloor, ...] = ()
    kl: tuple[KLPoint, ...] = ()
    kl_spearman: float | None = None  # rank correlation of drop with KL(base || ckpt) across checkpoints
    informative: tuple[SuiteInformative, ...] = ()  # per suite, from the base alone (harness/informative.py)
    groups: tuple[GroupSummary, ...] = ()  # replicate groups (harness/groups.py)
    floors: tuple[SuiteFloor, ...] = ()  # seed spread per suite; steps of one run when given
    formats: tuple[FormatSplit, ...] = ()  # per checkpoint and parsing suite: no-answer rate, forgotten split
    categories: tuple[CategoryDelta, ...] = ()  # per-category paired deltas (MMLU subject groups, IFEval ids)
    data_scores: dict[str, dict[str, Any]] = field(default_factory=dict)  # checkpoint -> its training data's score

    def to_dict(self) -> dict[str, Any]:
        return {"schema": SCHEMA_VERSION} | asdict(self)


@dataclass(frozen=True)
class SuiteInformative:
    """Can this suite show forgetting for this base? Decided from the base alone (harness/informative.py)."""

    suite: str
    informative: bool
    reason: str  # "" when informative, else "not above chance: ..." and/or "at ceiling: ..."
    base_score: float  # points
    n: int
    chance: float  # points
    ceiling: float  # points
    p_above_chance: float  # one-sided test of base > chance
    upper: float  # one-sided 95% upper bound of the base score, points


@dataclass(frozen=True)
class GroupSummary:
    """A replicate group: checkpoints of one recipe that differ only in seed; gain and drop by a two-level
    paired bootstrap (seeds, then items with the same indices for every checkpoint)."""

    group: str
    method: str
    trained_on: tuple[str, ...]
    members: tuple[str, ...]
    gain: float | None  # mean over members
    gain_ci: tuple[float, float] | None
    drop: float | None  # informative non-target suites, mean over members
    drop_ci: tuple[float, float] | None
    drop_all: float | None = None
    dominated_by: tuple[str, ...] = ()  # other groups, resolved
    notes: tuple[str, ...] = ()

    @property
    def seeds(self) -> int:
        return len(self.members)


@dataclass(frozen=True)
class SuiteFloor:
    """What "no change" looks like on one suite, from replicates ("seed") or adjacent steps of one run ("steps")."""

    suite: str
    kind: str  # "seed" | "steps"
    n: int  # groups (seed) or adjacent pairs (steps) it is pooled over
    sd: float  # points: pooled within-group sd of the score (seed); rms adjacent change (steps)
    low: float  # the band, points
    high: float
    detail: str


@dataclass(frozen=True)
class Score:
    """One scored completion, after inspect_ai's Score: the value, the answer the scorer read out of the
    completion (None = no parseable answer: a format failure), why, and the value per category where the
    suite has categories (IFEval: each instruction's strict follow; MMLU: the subject group)."""

    value: float
    answer: str | None = None
    explanation: str = ""
    parts: tuple[tuple[str, float], ...] = ()


@dataclass(frozen=True)
class FormatSplit:
    """Format vs content on one parsing suite: how often no answer was found, and why items were forgotten."""

    checkpoint: str
    suite: str
    n: int
    no_answer: float  # fraction of the checkpoint's completions with no parseable answer (0-1)
    base_no_answer: float  # the same for the base
    forgotten: int  # right under the base, wrong under the checkpoint
    format: int  # of those: no answer found
    content: int  # of those: an answer found, and wrong


@dataclass(frozen=True)
class CategoryDelta:
    """Paired change of one checkpoint vs the base within one category of a suite, points (0-100)."""

    checkpoint: str
    suite: str
    category: str
    n: int  # units paired: items (MMLU) or instructions (IFEval)
    base_score: float
    score: float
    delta: float
    ci_low: float
    ci_high: float
