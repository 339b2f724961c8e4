"""ifeval_rlvr: one verifiable constraint per prompt, pass/fail, in AllenAI's RLVR-IFeval format (paper 1.6).

Records: `messages` (one user turn, shown verbatim) and `ground_truth`, a JSON string
`{"func_name": ..., <kwargs>}`, as in allenai/RLVR-IFeval, which the paper trains and evaluates on.
Source (default, offline): generated here, seeded. A base task (a writing prompt from GENRES x TOPICS below,
ours) gets ONE constraint from Google's IFEval instruction registry (`if-verifiable`), whose
`build_description()` samples the constraint's kwargs; func_name is the registry id. Splits: eval = 2,000
items (seed 1), train = 10,000 (seed 2); their topics, hence their base prompts, are disjoint.
Source (hub): the option `ifeval_rlvr:hub` for allenai/RLVR-IFeval (ODC-BY; ~15k rows, one "train"
split), or `ifeval_rlvr:data=PATH` for a local .jsonl/.parquet copy in that schema (its content hash is in
the data version). Rows are ordered by a hash of their user turn:
the first 2,000 are eval, the rest train. Its func_names are open-instruct's (`validate_lowercase`, ...);
`translate()` maps each onto the same registry checkers (exact and "around" counts become two range checks;
differences are in its docstring). Licence: ours (generated data and code).
Scoring: 1 if every check passes on the raw response (strict, no loose variants), with the IFEval checker
of suites/ifeval.py (offline NLTK data, seeded langdetect). No gold responses: has_reference = False
(constraints such as "respond in Swahili" have no constructible gold).

    forgetbench eval embedded:smollm2-135m-instruct --suites ifeval_rlvr --limit 8
"""

from __future__ import annotations

import ast
import hashlib
import json
import random
from functools import cache
from pathlib import Path
from typing import Any

from harness.data import generated
from harness.suites import Source, Suite, SuiteError, source_options
from harness.types import Decoding, Item
from suites._hub import hub_rows
from suites.ifeval import CHECKER_VERSION, PUNKT, check, registry

SIZES = {"eval": (2000, 1), "train": (10000, 2)}  # items, seed
N_EVAL_TOPICS = 25  # of the topics below: the eval split's; the rest are the train split's
HUB_EVAL = 2000

GENRES = (
    "Write a short blog post about {t}.", "Write a poem about {t}.", "Write a short story that involves {t}.",
    "Write an email to a friend about {t}.", "Explain {t} to a ten-year-old.",
    "Write a product description for something related to {t}.", "Give advice to a beginner interested in {t}.",
    "Write a short speech about {t}.", "Write a review of an imaginary book about {t}.",
    "Describe the history of {t} briefly.", "Write a dialogue between two friends discussing {t}.",
    "List some pros and cons of {t}.", "Write a limerick about {t}.", "Write a riddle about {t}.",
    "Write a short news article about {t}.", "Write a letter to the editor about {t}.",
    "Summarize why {t} matters to ordinary people.", "Write song lyrics about {t}.",
    "Write a travel diary entry that mentions {t}.", "Write an advertisement for a workshop on {t}.",
)  # fmt: skip
TOPICS = (
    "bees", "lighthouses", "the moon landing", "sourdough bread", "chess", "volcanoes", "public libraries",
    "electric cars", "the Roman Empire", "coral reefs", "jazz music", "recycling", "marathon running", "origami",
    "the printing press", "rainforests", "video games", "learning a second language", "bicycles", "honey",
    "the Great Wall of China", "penguins", "solar power", "board games", "ancient Egypt", "tea ceremonies",
    "hiking", "the water cycle", "robots", "pottery", "city parks", "dinosaurs", "photography", "trains",
    "the Olympic Games", "gardening", "black holes", "coffee", "street food", "sign language", "kites",
    "the human heart", "glaciers", "podcasts", "knitting", "space telescopes", "castles", "yoga", "owls",
    "thunderstorms", "museums", "hot air balloons", "the internet", "deserts", "ballet", "mushrooms",
    "the Silk Road", "wind turbines", "friendship", "sleep", "mountain climbing", "pirates", "bridges",
    "autumn leaves", "vaccines", "typewriters", "elephants", "remote work", "fireworks", "the ocean floor",
    "camping", "calligraphy", "honeybees and pollination", "skyscrapers", "soccer", "the Renaissance",
    "compost", "submarines", "rainbows", "farmers' markets", "clocks", "wolves", "meditation", "comets",
    "vinyl records", "sushi", "earthquakes", "the first airplanes", "cats", "urban gardening", "maps",
    "snowflakes", "the violin", "Antarctica", "spices", "lemonade stands", "chocolate", "sea turtles",
    "public transport", "puzzles", "the Amazon river", "medieval knights", "3D printing", "butterflies",
    "pizza", "libraries of the future", "birdwatching", "time zones", "the periodic table", "whales",
    "handwriting", "skateboarding", "dreams", "bread baking", "Mars", "lanterns", "the Nile", "surfing",
    "a rainy Monday", "grandparents", "tigers", "the alphabet", "fossils", "summer camp", "picnics",
    "quantum computers", "zebras", "the postal service", "carnivals", "wetlands", "ice skating", "poetry slams",
    "bamboo", "satellites", "mirrors", "candles", "the Arctic fox", "cooking with kids", "ferries",
    "magic tricks", "the stock market", "paper airplanes", "cacti", "moving to a new city", "firefighters",
    "the first day of school", "honesty", "bookshops",
)  # fmt: skip


def _topics(split: str) -> tuple[str, ...]:
    order = sorted(TOPICS, key=lambda t: hashlib.sha256(t.encode()).hexdigest())
    return tuple(order[:N_EVAL_TOPICS] if split == "eval" else order[N_EVAL_TOPICS:])


def _row(base: str, func: str, kwargs: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "messages": [{"role": "user", "content": f"{base} {description}"}],
        "ground_truth": json.dumps({"func_name": func, **kwargs}, sort_keys=True),
        "constraint_type": func,
        "constraint": description,
    }


def generate(split: str) -> list[dict[str, Any]]:
    """RLVR-format rows: each base prompt of the split gets distinct random constraints, seeded."""
    n, seed = SIZES[split]
    ids = sorted(registry())
    bases = [g.format(t=t) for t in _topics(split) for g in GENRES]
    per_base = -(-n // len(bases))
    state = random.getstate()  # the registry samples kwargs from the global `random`: seed it, then restore
    try:
        random.seed(seed)
        rows = []
        for base in bases:
            for func in random.sample(ids, per_base):
                checker = registry()[func](func)
                if func == "combination:repeat_prompt":
                    description = checker.build_description(prompt_to_repeat=base)
                else:
                    description = checker.build_description()
                rows.append(_row(base, func, dict(checker.get_instruction_args() or {}), description))
        random.shuffle(rows)
    finally:
        random.setstate(state)
    return rows[:n]


# -- open-instruct func_name -> IFEval registry checks -----------------------------------------------
_SAME = {
    "validate_title": "detectable_format:title", "validate_json_format": "detectable_format:json_format",
    "validate_two_responses": "combination:two_responses", "validate_uppercase": "change_case:english_capital",
    "validate_lowercase": "change_case:english_lowercase", "validate_quotation": "startend:quotation",
    "validate_no_commas": "punctuation:no_comma",
}  # fmt: skip
_OPTIONS = {"My answer is yes.", "My answer is no.", "My answer is maybe."}


def _count(func: str, count_key: str, rel_key: str, n: int, quantifier: str, around: int) -> list[list[Any]]:
    """A count constraint as registry checks, which know only "at least" and "less than"."""
    ranges = {"at least": (n, None), "at most": (None, n), "exactly": (n, n), "around": (n - around, n + around)}
    low, high = ranges[quantifier]
    checks = [] if low is None or low <= 0 else [[func, {count_key: low, rel_key: "at least"}]]
    return checks + ([] if high is None else [[func, {count_key: high + 1, rel_key: "less than"}]])


def translate(gt: dict[str, Any], prompt: str = "") -> list[list[Any]]:
    """Registry checks [[instruction_id, kwargs], ...] (all must pass) for a ground_truth dict.

    A registry id as func_name (our generated rows) is used as is. Open-instruct's functions map onto the
    registry; where semantics differ, the registry's rule is used: keyword and forbidden-word matching are
    the registry's (word-boundary, case-insensitive), letter counts are case-insensitive, word counts use
    `\\w+` tokens, sentences are counted with Punkt, and the end phrase ignores case and trailing space.
    Exact and "around" counts become at-least plus less-than checks ("around" = +-max(round(N/10), 1) for
    words and capital words, +-1 for sentences, as open-instruct). validate_choice is supported only with
    IFEval's three options, the only choices the registry knows.
    """
    f = gt.get("func_name")
    kw = {k: v for k, v in gt.items() if k != "func_name" and v is not None}
    n, q = kw.get("N"), str(kw.get("quantifier") or "exactly")
    if f in registry():
        return [[f, kw]]
    if f in _SAME:
        return [[_SAME[f], {}]]
    tol = max(round((n or 0) * 0.1), 1)
    table: dict[str, Any] = {
        "verify_keywords": lambda: [["keywords:existence", {"keywords": list(kw["keyword_list"])}]],
        "validate_forbidden_words": lambda: [
            ["keywords:forbidden_words", {"forbidden_words": list(kw["forbidden_words"])}]
        ],
        "verify_keyword_frequency": lambda: [
            [c[0], {**c[1], "keyword": kw["word"]}]
            for c in _count("keywords:frequency", "frequency", "relation", n, "exactly", 0)
        ],
        "verify_letter_frequency": lambda: [
            [c[0], {**c[1], "letter": kw["letter"]}]
            for c in _count("keywords:letter_frequency", "let_frequency", "let_relation", n, "exactly", 0)
        ],
        "validate_response_language": lambda: [["language:response_language", {"language": kw["language"]}]],
        "verify_paragraph_count": lambda: [["length_constraints:number_paragraphs", {"num_paragraphs": n}]],
        "validate_word_constraint": lambda: _count(
            "length_constraints:number_words", "num_words", "relation", n, q, tol
        ),
        "verify_sentence_constraint": lambda: _count(
            "length_constraints:number_sentences", "num_sentences", "relation", n, q, 1
        ),
        "validate_frequency_capital_words": lambda: _count(
            "change_case:capital_word_frequency", "capital_frequency", "capital_relation", n, q, tol
        ),
        "validate_paragraphs": lambda: [
            [
                "length_constraints:nth_paragraph_first_word",
                {"num_paragraphs": n, "nth_paragraph": kw["i"], "first_word": kw["first_word"]},
            ]
        ],
        "verify_postscript": lambda: [
            ["detectable_content:postscript", {"postscript_marker": kw["postscript_marker"]}]
        ],
        "validate_placeholders": lambda: [["detectable_content:number_placeholders", {"num_placeholders": n}]],
        "verify_bullet_points": lambda: [["detectable_format:number_bullet_lists", {"num_bullets": n}]],
        "validate_highlighted_sections": lambda: [
            ["detectable_format:number_highlighted_sections", {"num_highlights": n}]
        ],
        "validate_sections": lambda: [
            ["detectable_format:multiple_sections", {"section_spliter": kw["section_splitter"], "num_sections": n}]
        ],
        "validate_repeat_prompt": lambda: [
            ["combination:repeat_prompt", {"prompt_to_repeat": kw.get("original_prompt") or prompt}]
        ],
        "validate_end": lambda: [["startend:end_checker", {"end_phrase": kw["end_phrase"]}]],
        "validate_choice": lambda: (
            [["detectable_format:constrained_response", {}]] if _options(kw["options"]) <= _OPTIONS else None
        ),
    }
    try:
        checks = table[f]() if f in table else None
    except (KeyError, TypeError, ValueError, SyntaxError):
        checks = None
    if not checks:
        raise SuiteError(f"unsupported ground truth {json.dumps(gt, sort_keys=True)[:200]}")
    return checks


def _options(value: Any) -> set[str]:
    if isinstance(value, str):
        value = ast.literal_eval(value) if value.strip().startswith(("(", "[")) else value.split(", ")
    return {str(v).strip() for v in value}


def _items_from_rows(rows: list[dict[str, Any]], prefix: str) -> tuple[Item, ...]:
    items = []
    for i, r in enumerate(rows):
        messages = r.get("messages")
        if isinstance(messages, str):
            messages = json.loads(messages)
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in list(messages or [])]
        gt = json.loads(r["ground_truth"]) if isinstance(r.get("ground_truth"), str) else r.get("ground_truth")
        if not messages or not isinstance(gt, dict):
            raise SuiteError(f"suite ifeval_rlvr: row {i} needs `messages` and a `ground_truth` JSON object")
        user = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
        try:
            checks = translate(gt, user)
        except SuiteError as e:
            raise SuiteError(f"suite ifeval_rlvr: row {i}: {e}") from None
        items.append(
            Item(
                f"{prefix}-{i:05d}",
                {
                    "messages": messages,
                    "ground_truth": json.dumps(gt, sort_keys=True),
                    "constraint_type": str(r.get("constraint_type") or gt["func_name"]),
                    "checks": checks,
                    "prompt": user,
                },
            )
        )
    return tuple(items)


@cache
def _items(split: str, src: Source) -> tuple[Item, ...]:
    if src.kind == "generated":  # cached on disk: generating needs the checker (if-verifiable: 1 s to import)
        rows = lambda: _items_from_rows(generate(split), f"rlvr-{split}")  # noqa: E731
        return generated(f"ifeval_rlvr-{split}", Path(__file__), CHECKER_VERSION, rows)
    rows = hub_rows("ifeval_rlvr", src, "allenai/RLVR-IFeval")
    rows.sort(key=lambda r: hashlib.sha256(json.dumps(r.get("messages"), default=str).encode()).hexdigest())
    chosen = rows[:HUB_EVAL] if split == "eval" else rows[HUB_EVAL:]
    return _items_from_rows(chosen, f"rlvr-hub-{split}")


class IFEvalRLVR(Suite):
    name = "ifeval_rlvr"
    area = "instruction-following"
    description = "One IFEval constraint per prompt (RLVR-IFeval style), pass/fail"
    decoding = Decoding(max_new_tokens=1024)
    has_reference = False
    data_files = (PUNKT,)  # NLTK Punkt parameters for the checker
    options = source_options("generated", "generated here, seeded")
    version = "1"  # the data version is "1+generated", "1+hub" or "1+file-<sha256 prefix>"

    def scorer_parts(self) -> tuple[str, ...]:
        return (CHECKER_VERSION,)

    def load(self, split: str = "eval") -> list[Item]:
        if split not in SIZES:
            raise SuiteError(f"suite ifeval_rlvr has splits eval and train, not {split!r}")
        return list(_items(split, self.source()))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [dict(m) for m in item.data["messages"]]

    def score(self, item: Item, completion: str) -> float:
        prompt = item.data["prompt"]
        return float(all(check(func, kwargs, completion, prompt) for func, kwargs in item.data["checks"]))

    def reference(self, item: Item) -> str:
        raise NotImplementedError("no gold responses for ifeval_rlvr (has_reference = False)")

    def wrong(self, item: Item) -> str:
        return ""  # satisfies no constraint


SUITE = IFEvalRLVR()
