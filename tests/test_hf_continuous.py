"""The hf engine's continuous batching against its static path, on a tiny model with sharp, varied outputs.

The tiny random model of tests/tiny.py repeats one token under greedy decoding; re-drawn with larger
weights it writes a different string for every prompt, so a wrong position, mask or slot shows up as
different tokens. Fewer slots than prompts makes rows leave and get refilled mid-run.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from harness.engines import EngineError, make_engine  # noqa: E402
from harness.types import Decoding  # noqa: E402

TEXTS = [
    "hi",
    "What is 17 + 25? answer",
    "capital of France",
    "3 5 7",
    "The capital of France is Paris. The answer is 42. Use the numbers 3 5 7 to make 22. " * 3,
    "hello world! 0 1 2 3",
    "Reason step by step and answer with a number. " * 2,
    "( 3 + 5 ) * 7 =",
]


@pytest.fixture(scope="module")
def sharp(tiny_model_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 2:
                p.normal_(0, 0.15, generator=gen)
    return model, tok


def _engine(sharp, batching: str, slots: int = 3):
    e = make_engine("hf", batch_size=slots, batching=batching)
    e.use_model(*sharp)
    return e


def _prompts(e) -> list[str]:
    return [e.render([{"role": "user", "content": t}]) for t in TEXTS]


def _frequent_tokens(sharp, k: int = 3) -> list[int]:
    """Tokens the model often emits mid-row: used as extra EOS ids so rows end at different steps."""
    e = _engine(sharp, "static", slots=8)
    counts: dict[int, int] = {}
    for c in e.generate(_prompts(e), Decoding(max_new_tokens=24)):
        for t in e.tokenizer(c.text, add_special_tokens=False)["input_ids"][1:]:
            counts[t] = counts.get(t, 0) + 1
    return sorted(counts, key=lambda t: -counts[t])[:k]


@pytest.mark.parametrize(
    "dec",
    [
        Decoding(max_new_tokens=40),
        Decoding(max_new_tokens=5),
        Decoding(max_new_tokens=48, stop=("22", " Wh", "ccc", "..")),
    ],
    ids=["long", "short", "stops"],
)
def test_continuous_equals_static_greedy(sharp, dec) -> None:
    static = _engine(sharp, "static").generate(_prompts(_engine(sharp, "static")), dec)
    cont = _engine(sharp, "continuous").generate(_prompts(_engine(sharp, "continuous")), dec)
    assert cont == static  # text, finish_reason and n_tokens, row by row
    assert len({c.text for c in cont}) == len(TEXTS)  # the workload tells rows apart


def test_mixed_eos_and_stops_equal_static(sharp) -> None:
    """Rows end at different steps (extra EOS ids, stop strings, length): refills happen mid-run."""
    model, tok = sharp
    old = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [tok.eos_token_id, *_frequent_tokens(sharp)]
    try:
        dec = Decoding(max_new_tokens=32, stop=("22", " Wh"))
        static = _engine(sharp, "static").generate(_prompts(_engine(sharp, "static")), dec)
        cont = _engine(sharp, "continuous").generate(_prompts(_engine(sharp, "continuous")), dec)
    finally:
        model.generation_config.eos_token_id = old
    assert cont == static
    reasons = {c.finish_reason for c in cont}
    assert len({c.n_tokens for c in cont}) >= 3 and "stop" in reasons


def test_stream_yields_each_row_once_short_rows_first(sharp) -> None:
    e = _engine(sharp, "continuous", slots=8)
    prompts = _prompts(e)
    limits = Decoding(max_new_tokens=30)
    got = list(e.generate_stream(prompts, limits))
    assert sorted(i for i, _ in got) == list(range(len(prompts)))
    # With stop strings some rows end early; they are yielded before rows that run to the length limit.
    got = list(e.generate_stream(prompts, Decoding(max_new_tokens=30, stop=("22", " Wh", "ccc"))))
    reasons = [c.finish_reason for _, c in got]
    assert reasons[0] == "stop" and reasons[-1] == "length"


def test_sampling_is_seeded_per_request(sharp) -> None:
    dec = Decoding(temperature=1.0, top_p=0.9, max_new_tokens=12, seed=3)
    e3, e8 = _engine(sharp, "continuous", slots=3), _engine(sharp, "continuous", slots=8)
    prompts = _prompts(e3)
    a = e3.generate(prompts, dec)
    assert a == e3.generate(prompts, dec)
    assert a == e8.generate(prompts, dec)  # other rows in flight do not change a request's draws
    assert [c.text for c in a] != [c.text for c in e3.generate(prompts, replace(dec, seed=4))]
    greedy = e3.generate(prompts, Decoding(max_new_tokens=12))
    assert [c.text for c in a] != [c.text for c in greedy]


def test_batching_option_is_checked() -> None:
    with pytest.raises(EngineError, match="batching"):
        make_engine("hf", batching="paged")


@pytest.mark.slow
def test_continuous_equals_static_on_smollm2(monkeypatch) -> None:
    """The embedded SmolLM2-135M on a mix of suites (their own stop strings, lengths up to 64 tokens), with
    the default prefix sharing and with every common prefix shared (MIN_SAVED=1)."""
    from harness.checkpoints.registry import Registry
    from harness.checkpoints.weights import materialise
    from harness.engines import prefix
    from harness.suites import get_suite, load_items

    reg = Registry.load(Path(__file__).resolve().parent.parent / "checkpoints.yaml")
    try:
        ckpt = reg.resolve("smollm2-135m")
        model_dir = materialise(ckpt, reg.lineage(ckpt))
    except Exception as e:  # noqa: BLE001 - no embedded model on this machine
        pytest.skip(f"embedded model unavailable: {e}")
    outs = {}
    for batching, min_saved in (("static", 64), ("continuous", 64), ("shared", 1)):
        monkeypatch.setattr(prefix, "MIN_SAVED", min_saved)
        e = make_engine("hf", batch_size=6, batching="static" if batching == "static" else "continuous")
        e.load(model_dir)
        outs[batching] = []
        for name in ("countdown", "arithmetic", "capitals", "elements", "gsm8k", "ifeval"):
            suite = get_suite(name)
            prompts = [e.render(suite.prompt(it)) for it in load_items(suite, 3)]
            dec = replace(suite.decoding, max_new_tokens=64, stop=("\n\n",) if name == "gsm8k" else ())
            outs[batching] += e.generate(prompts, dec)
        e.close()
    assert outs["continuous"] == outs["static"]
    assert outs["shared"] == outs["static"]
    assert {c.finish_reason for c in outs["static"]} == {"stop", "length"}


def test_prefill_groups_by_length_equal_static(sharp) -> None:
    """All prompts fit the slots at once: they are prefilled in groups of similar length (less padding)."""
    from collections import deque

    from harness.engines.hf_decode import PREFILL_FILL, ContinuousDecoder

    e = _engine(sharp, "continuous", slots=8)
    lengths = sorted((len(e.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in _prompts(e)), reverse=True)
    dec = ContinuousDecoder(sharp[0], 0, 8)
    groups, queue = [], deque(range(len(lengths)))
    while queue:
        groups.append(dec._take(queue, lengths, 8))
    assert len(groups) >= 3 and all(lengths[g[-1]] >= PREFILL_FILL * lengths[g[0]] for g in groups)
    static = _engine(sharp, "static", slots=8).generate(_prompts(e), Decoding(max_new_tokens=40))
    assert e.generate(_prompts(e), Decoding(max_new_tokens=40)) == static


SHARED = "Solve the puzzle below and give only the final answer, on its own line, after the word Answer. "


def _shared_prompts(e) -> list[str]:
    """An instruction in common, a longer shared stem, duplicates, a prompt that is all shared, short ones."""
    texts = [SHARED + t for t in ("3 5 7", "3 5 7 9 11 13", "3 5 7 9 11 13 and 15", "capital of France")]
    return [e.render([{"role": "user", "content": t}]) for t in texts + [texts[1]] * 3 + [SHARED, "hi", "hi"]]


@pytest.mark.parametrize("slots", [3, 8])
def test_shared_prefixes_equal_static(sharp, monkeypatch, slots) -> None:
    from harness.engines import prefix

    monkeypatch.setattr(prefix, "MIN_SAVED", 1)  # share every common prefix, however short
    e = _engine(sharp, "continuous", slots=slots)
    dec = Decoding(max_new_tokens=24, stop=("22", " Wh"))
    assert e.generate(_shared_prompts(e), dec) == _engine(sharp, "static", slots).generate(_shared_prompts(e), dec)


def test_decoder_prefills_shared_prefixes_once(sharp) -> None:
    from harness.engines.hf_decode import ContinuousDecoder, greedy

    e = _engine(sharp, "continuous", slots=4)
    ids = e._encode(_shared_prompts(e))
    runs = {}
    for min_shared in (None, 1, 10_000):
        dec = ContinuousDecoder(sharp[0], 0, 4, min_shared)
        with torch.no_grad():
            runs[min_shared] = (sorted(dec.run(ids, 12, set(), greedy)), dec.shared_tokens)
    assert runs[None][1] == 0 and runs[10_000][1] == 0  # off, and nothing worth a prefix
    assert runs[1][1] > sum(map(len, ids)) // 2  # the template, the instruction and the duplicates
    assert runs[1][0] == runs[None][0]


@pytest.mark.parametrize("min_saved", [1, 10_000])
def test_choice_logprobs_with_shared_prefixes_match_full_forwards(sharp, monkeypatch, min_saved) -> None:
    """Choice ranking: questions sharing an instruction, four options each, scored after shared prefixes
    (or none) in fewer slots than rows; the static engine's full forward passes are the reference."""
    from harness.engines import prefix

    monkeypatch.setattr(prefix, "MIN_SAVED", min_saved)
    e = _engine(sharp, "continuous", slots=5)
    questions = [e.render([{"role": "user", "content": SHARED + q}]) for q in ("3 5 7", "capital of France", "hi")]
    options = [" 42", " Paris", " 3 5 7 and 9", "!"]
    prompts = [q for q in questions for _ in options]
    conts = options * len(questions)
    got = e.logprobs(prompts, conts)
    want = _engine(sharp, "static", slots=5).logprobs(prompts, conts)
    assert got == pytest.approx(want, abs=1e-4)
    assert len(set(want)) > len(options)  # the rows are told apart
