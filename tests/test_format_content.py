"""Format vs content (harness/breakdown.py): a planted format breakage (completions without an answer line) is
classified as format, a wrong parsed answer as content; the parsed answer is cached with the score, shown in the
forgotten-items browser and results.json; per-category deltas find a planted drop in one MMLU subject group."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.breakdown import category_deltas, format_split
from harness.checkpoints.registry import Registry
from harness.cli import app
from harness.evaluate import EvalConfig, evaluate
from harness.suites import all_suites, get_suite, load_items
from harness.types import SuiteResult
from suites.mmlu import LETTERS, subject_group

N = 40
NO_ANSWER = "Let me think about the options one by one; they all seem plausible to me."
# every suite that parses an answer (a later one joins by setting parses = True), and the other scorer modes
PARSERS = sorted(n for n, s in all_suites().items() if s.parses) + [
    "mmlu:lenient",
    "gsm8k:minerva",
    "countdown:lenient",
]


def _wrong_letter(item) -> str:  # type: ignore[no-untyped-def]
    return f"The answer is: {LETTERS[(LETTERS.index(item.data['answer']) + 1) % 4]}"


def _fake(path: Path, answer) -> Path:  # type: ignore[no-untyped-def]
    suite = get_suite("mmlu")
    responses = {suite.prompt(it)[-1]["content"]: answer(k, it) for k, it in enumerate(load_items(suite, N))}
    path.write_text(json.dumps({"responses": responses}))
    return path


@pytest.mark.parametrize("spec", PARSERS)
def test_every_parser_reads_the_gold_finds_nothing_in_prose_and_keeps_its_score(spec: str) -> None:
    assert {"mmlu", "gsm8k", "math500", "countdown", "addsub", "arithmetic"} <= set(PARSERS)
    suite = get_suite(spec)
    assert suite.parses
    for it in load_items(suite, 3):
        gold, wrong = suite.scored(it, suite.reference(it)), suite.scored(it, suite.wrong(it))
        assert gold.value == 1.0 == suite.score(it, suite.reference(it)) and gold.answer is not None
        assert wrong.value == 0.0 == suite.score(it, suite.wrong(it))
        prose = suite.scored(it, "I would rather not say.")
        assert prose.value == 0.0 and prose.answer is None


def test_planted_format_breakage_is_format_and_wrong_letters_are_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Base: every item right. Candidate: items 0-11 lose the answer line, 12-19 answer a wrong letter."""
    suite = get_suite("mmlu")
    base = _fake(tmp_path / "base.fake.json", lambda k, it: suite.reference(it))
    cand = _fake(
        tmp_path / "cand.fake.json",
        lambda k, it: NO_ANSWER if k < 12 else _wrong_letter(it) if k < 20 else suite.reference(it),
    )
    (tmp_path / "checkpoints.yaml").write_text(
        "checkpoints:\n  - id: base\n    path: base.fake.json\n    method: base\n"
        "  - id: cand\n    path: cand.fake.json\n    method: sft\n    base: base\n    trained_on: [arithmetic]\n"
    )
    assert base.exists() and cand.exists()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(
        app,
        [
            "compare",
            "base",
            "cand",
            "--engine",
            "fake",
            "--limit",
            str(N),
            "--suites",
            "mmlu,arithmetic",
            "--out",
            "out",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads((tmp_path / "out/results.json").read_text())
    (split,) = [f for f in data["formats"] if f["suite"] == "mmlu"]
    assert (split["forgotten"], split["format"], split["content"]) == (20, 12, 8)
    assert split["no_answer"] == pytest.approx(12 / N) and split["base_no_answer"] == 0.0
    lost = [f for f in data["forgotten"] if f["suite"] == "mmlu"]
    assert sorted(f["cause"] for f in lost) == ["content"] * 8 + ["format"] * 12
    assert all((f["parsed"] is None) == (f["cause"] == "format") for f in lost)
    assert all(f["base_parsed"] in tuple(LETTERS) for f in lost)
    html = (tmp_path / "out/report.html").read_text()
    assert 'id="format-table"' in html and "none found" in html and 'class="cause">format' in html
    wrong = next(f for f in lost if f["cause"] == "content")
    assert f'<code class="parsed">{wrong["parsed"]}</code>' in html


def test_the_parsed_answer_is_cached_and_an_answerless_cache_is_not_read(tmp_path: Path) -> None:
    suite = get_suite("mmlu")
    path = _fake(tmp_path / "c.fake.json", lambda k, it: NO_ANSWER if k % 2 else _wrong_letter(it))
    reg = Registry([], (), None)
    ckpt = reg.resolve(str(path))
    cfg = EvalConfig(engine="fake", limit=N, runs_dir=tmp_path / "runs")
    first = evaluate(reg, [ckpt], [suite], cfg)[ckpt.id]["mmlu"]
    assert first.parses and sum(a is None for a in first.answers) == N // 2
    (cache,) = (tmp_path / "runs").rglob("scores@*.answers.json")
    # an older cache file (no answers) beside it is never read: the answers come from the new one
    cache.with_name(cache.name.replace(".answers", "")).write_text(json.dumps({i: ["x", 1.0] for i in first.item_ids}))
    entries = json.loads(cache.read_text())
    assert sorted(v[2] is None for v in entries.values()) == [False] * (N // 2) + [True] * (N // 2)
    again = evaluate(reg, [ckpt], [suite], cfg, cached_only=True)[ckpt.id]["mmlu"]
    assert again.answers == first.answers and again.scores == first.scores


def _result(cid: str, ids: list[str], scores: list[float], parts) -> SuiteResult:  # type: ignore[no-untyped-def]
    hashes = ("h",) * len(ids)
    return SuiteResult(cid, cid, "mmlu", "1", "knowledge", "d", "fake", tuple(ids), hashes, tuple(scores), parts=parts)


def test_category_deltas_find_a_planted_drop_in_one_subject_group() -> None:
    items = load_items(get_suite("mmlu"), 400)
    groups = [subject_group(it.data["subject"]) for it in items]
    ids = [it.id for it in items]
    base_scores = [1.0 if k % 3 else 0.0 for k in range(len(items))]
    # the candidate forgets most STEM items it knew, nothing else
    cand_scores = [
        0.0 if g == "STEM" and k % 4 else s for k, (g, s) in enumerate(zip(groups, base_scores, strict=True))
    ]
    base = _result("base", ids, base_scores, tuple(((g, s),) for g, s in zip(groups, base_scores, strict=True)))
    cand = _result("cand", ids, cand_scores, tuple(((g, s),) for g, s in zip(groups, cand_scores, strict=True)))
    by = {c.category: c for c in category_deltas(base, cand)}
    assert set(by) == {"STEM", "humanities", "social sciences", "other"}
    assert by["STEM"].ci_high < 0 and by["STEM"].delta < -30
    for g in ("humanities", "social sciences", "other"):
        assert by[g].delta == 0.0 and by[g].ci_low <= 0 <= by[g].ci_high
    assert sum(c.n for c in by.values()) == len(items)


def test_instruction_parts_pair_each_instruction_and_no_parser_means_no_split() -> None:
    """IFEval-style parts: two instruction ids per item, only one of them broken by the candidate."""
    ids = [f"i{k}" for k in range(60)]
    base = _result("base", ids, [1.0] * 60, tuple((("a", 1.0), ("b", 1.0)) for _ in ids))
    cand = _result("cand", ids, [0.0] * 60, tuple((("a", 1.0), ("b", 0.0)) for _ in ids))
    by = {c.category: c for c in category_deltas(base, cand)}
    assert by["a"].delta == 0.0 and by["b"].delta == -100.0 and by["b"].n == 60
    assert format_split(base, cand) is None  # no parser: no format/content split


def test_ifeval_parts_are_each_instructions_strict_follow() -> None:
    pytest.importorskip("if_verifiable")
    suite = get_suite("ifeval")
    assert not suite.parses  # no answer to parse: no format/content split, only categories
    for it in load_items(suite, 5):
        text = "HELLO WORLD. This is my answer, written in capitals, with no commas at all"
        got, metrics = suite.scored(it, text), suite.metrics(it, text)
        assert got.value == suite.score(it, text) and got.answer is None
        assert got.parts == tuple(zip(it.data["instruction_ids"], map(float, metrics["inst_strict"]), strict=True))
