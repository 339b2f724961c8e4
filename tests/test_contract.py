"""The contract every suite in suites/ must meet (house rule 1): runs over whatever files exist there."""

from __future__ import annotations

import random

import pytest

from harness.suites import AREAS, SuiteError, all_suites

SUITES = sorted(all_suites())
SAMPLE = 60  # items checked per suite (random, seeded) besides the first and last


def _sample(items: list) -> list:
    rng = random.Random(0)
    return [items[0], items[-1], *rng.sample(items, min(SAMPLE, len(items)))]


@pytest.mark.parametrize("name", SUITES)
def test_suite_contract(name: str, tiny_tokenizer) -> None:
    suite = all_suites()[name]
    assert suite.kind in ("generate", "choice") and suite.area in AREAS and suite.version
    try:
        items = suite.load("eval")
    except SuiteError as e:
        if suite.needs_hub:
            pytest.skip(f"{name}: {e}")
        raise
    assert items, f"{name}: no items"
    ids = [it.id for it in items]
    assert len(set(ids)) == len(ids), f"{name}: duplicate ids"
    for it in _sample(items):
        msgs = suite.prompt(it)
        assert msgs and all(m["role"] in ("system", "user", "assistant") and m["content"] for m in msgs)
        rendered = tiny_tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
        assert msgs[-1]["content"] in rendered
        if suite.kind == "choice":
            assert len(suite.choices(it)) >= 2
        if suite.has_reference:
            assert suite.score(it, suite.reference(it)) == 1.0, f"{name}/{it.id}: gold does not score 1"
        wrong = suite.score(it, suite.wrong(it))
        assert wrong == 0.0 if suite.has_reference else 0.0 <= wrong <= 1.0, f"{name}/{it.id}: wrong answer scored"
        assert len(suite.prompt_hash(it)) == 16


@pytest.fixture(scope="module")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)
