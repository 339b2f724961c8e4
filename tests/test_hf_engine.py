"""The hf engine on a tiny random model built in the test: batching, padding, EOS, stops, logprobs."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from harness.engines import engine_ident, make_engine  # noqa: E402
from harness.types import Decoding  # noqa: E402

MSGS = [[{"role": "user", "content": c}] for c in ("hi", "What is 17 + 25? answer", "capital of France", "3 5 7")]


@pytest.fixture(scope="module")
def engine(tiny_model_dir: Path):
    e = make_engine("hf", batch_size=3)
    e.load(tiny_model_dir)
    yield e
    e.close()


def _one_by_one(e, prompts, dec):
    return [e.generate([p], dec)[0] for p in prompts]


def test_batched_equals_unbatched_and_is_ordered(engine) -> None:
    prompts = [engine.render(m) for m in MSGS]
    assert prompts[0].endswith("<|im_start|>assistant\n")
    dec = Decoding(max_new_tokens=12)
    batched = engine.generate(prompts, dec)  # length-sorted, left-padded, batches of 3
    single = _one_by_one(engine, prompts, dec)
    assert [c.text for c in batched] == [c.text for c in single]
    assert all(c.finish_reason in ("stop", "length") for c in batched)
    assert all(c.n_tokens <= 12 for c in batched)


def test_eos_stops_per_row(tiny_model_dir: Path) -> None:
    """Make EOS the only likely token: every row stops at once with finish_reason 'stop'."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    # A fresh head with zero weights and a bias on EOS: EOS is the argmax at every step, for every row.
    model.lm_head = torch.nn.Linear(model.config.hidden_size, model.config.vocab_size, bias=True)
    with torch.no_grad():
        model.lm_head.weight.zero_()
        model.lm_head.bias.zero_()
        model.lm_head.bias[tok.eos_token_id] = 10.0
    e = make_engine("hf")
    e.use_model(model, tok)
    out = e.generate([e.render(m) for m in MSGS], Decoding(max_new_tokens=8))
    assert all(c.finish_reason == "stop" and c.text == "" and c.n_tokens == 0 for c in out)


def test_length_and_stop_strings(engine) -> None:
    prompts = [engine.render(m) for m in MSGS]
    out = engine.generate(prompts, Decoding(max_new_tokens=3))
    assert any(c.finish_reason == "length" and c.n_tokens == 3 for c in out)
    full = engine.generate(prompts[:1], Decoding(max_new_tokens=16))[0]
    if len(full.text) > 2:
        stop = full.text[1:3]
        cut = engine.generate(prompts[:1], Decoding(max_new_tokens=16, stop=(stop,)))[0]
        assert cut.finish_reason == "stop" and stop not in cut.text and full.text.startswith(cut.text)


def test_logprobs_match_a_forward_pass(engine) -> None:
    prompt = engine.render(MSGS[1])
    conts = [" 42", " Paris is nice"]
    lps = engine.logprobs([prompt] * 2, conts)
    tok, model = engine.tokenizer, engine.model
    for cont, lp in zip(conts, lps, strict=True):
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        f_ids = tok(prompt + cont, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(torch.tensor([f_ids], device=engine.device)).logits[0].float().log_softmax(-1)
        want = sum(float(logits[i - 1, f_ids[i]]) for i in range(len(p_ids), len(f_ids)))
        assert lp == pytest.approx(want, abs=1e-4)
    assert all(lp < 0 for lp in lps)


def test_sampling_is_seeded(engine) -> None:
    prompts = [engine.render(m) for m in MSGS]
    dec = Decoding(temperature=1.0, max_new_tokens=8, seed=3)
    assert [c.text for c in engine.generate(prompts, dec)] == [c.text for c in engine.generate(prompts, dec)]


def test_ident_is_known_without_loading(engine) -> None:
    assert engine.ident == engine_ident("hf")
