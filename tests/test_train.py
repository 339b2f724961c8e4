"""The reference trainer on a tiny random model built in the test: every method takes two steps, the loss is
finite, the weights move, the registry entry loads and materialises, GRPO's reward is the suite's score,
the LoRA merge is exact, weight pushes are verified, and bad CLI input exits 2 with one line.

    .venv/bin/python -m pytest tests/test_train.py -q
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from typer.testing import CliRunner  # noqa: E402

import harness.checkpoints.registry  # noqa: E402
from harness import engines  # noqa: E402
from harness.checkpoints.registry import Registry  # noqa: E402
from harness.checkpoints.weights import load_pt, materialise  # noqa: E402
from harness.engines.hf import HFEngine  # noqa: E402
from harness.suites import Suite  # noqa: E402
from harness.train.cli import app  # noqa: E402
from harness.train.config import make_config  # noqa: E402
from harness.train.rl import group_advantages  # noqa: E402
from harness.train.rollout import SyncError, merged_state, read_rollouts  # noqa: E402
from harness.train.run import train  # noqa: E402
from harness.types import Decoding, Item  # noqa: E402

METHODS = ("sft", "self-sft", "iter-sft", "grpo", "reinforce", "grpo-nokl")


class SpySuite(Suite):
    """A suite whose score we control and record: partial credit by length mod 3, so a reward that did not
    come from this function would not match. A space stops generation, so rollouts both finish and truncate."""

    name = "spy"
    version = "1"
    area = "reasoning"
    decoding = Decoding(max_new_tokens=8, stop=(" ",))

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, float]] = []

    def load(self, split: str = "eval") -> list[Item]:
        return [Item(f"spy-{split}-{i}", {"n": i}) for i in range(6)]

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Say something {item.data['n']}"}]

    def score(self, item: Item, completion: str) -> float:
        value = (0.0, 1.0, 0.5)[len(completion) % 3]
        self.calls.append((item.id, completion, value))
        return value

    def reference(self, item: Item) -> str:
        return "yes!"


@pytest.fixture
def registry(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    # SpySuite lives in this file, not in suites/: let the registry accept it as a trained_on name.
    known = harness.checkpoints.registry.known_suites
    monkeypatch.setattr(harness.checkpoints.registry, "known_suites", lambda: known() | {"spy"})
    path = tmp_path / "checkpoints.yaml"
    path.write_text(f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n    method: base\n")
    return path


def _cfg(method: str, registry: Path, tmp_path: Path, **kw):
    sizes = {"batch_size": 2, "micro_batch_size": 3, "max_steps": 2, "train_limit": 4, "lr": 1e-2}
    if method in ("grpo", "reinforce", "grpo-nokl"):
        sizes |= {"group_size": 3}
    if method in ("self-sft", "iter-sft"):
        sizes |= {"k": 4}
    if method == "iter-sft":
        sizes |= {"resample_every": 1}  # round 0: sample, 1 step; round 1: re-sample from the updated model
    return make_config(method, suite="spy", base="tiny", registry=registry, out=tmp_path / method, **(sizes | kw))


def _steps(out: Path) -> list[dict]:
    return [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]


@pytest.mark.parametrize("method", METHODS)
def test_every_method_trains_two_steps_and_registers(method: str, registry: Path, tmp_path: Path, tiny_model_dir):
    cfg = _cfg(method, registry, tmp_path)
    (ckpt,) = train(cfg, suite=SpySuite())

    steps = _steps(cfg.out)
    assert [r["step"] for r in steps] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in steps)

    # The registry entry is valid, and forgetbench's materialise turns the .pt into a loadable model.
    reg = Registry.load(registry)
    entry = reg.by_id[ckpt.id]
    assert (entry.method, entry.base, entry.trained_on, entry.format) == (method, "tiny", ("spy",), "pt")
    assert entry.hparams["step"] == 2 and entry.hparams["lr"] == 1e-2 and entry.hparams["seed"] == 0
    from transformers import AutoModelForCausalLM

    loaded = AutoModelForCausalLM.from_pretrained(materialise(entry, reg.lineage(entry))).state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    saved = load_pt(Path(entry.path))["state_dict"]
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert any(not torch.equal(loaded[k], base[k]) for k in base), "parameters did not change"
    assert json.loads((cfg.out / "config.json").read_text())["config"]["method"] == method
    if method in ("self-sft", "iter-sft"):  # sampled once, or before each of the two rounds
        sampled_at = {r["step"] for r in read_rollouts(cfg.out / "rollouts.jsonl")}
        assert sampled_at == ({0} if method == "self-sft" else {0, 1})


def test_grpo_reward_is_the_suites_score(registry: Path, tmp_path: Path) -> None:
    spy = SpySuite()
    cfg = _cfg("grpo", registry, tmp_path, max_new_tokens=4)
    train(cfg, suite=spy)
    rows = list(read_rollouts(cfg.out / "rollouts.jsonl"))
    assert len(rows) == 2 * 2 * 3 and {r["step"] for r in rows} == {0, 1}
    assert all({"prompt", "completion", "reward", "step"} <= set(r) for r in rows)
    finished = [r for r in rows if r["finish_reason"] == "stop"]
    truncated = [r for r in rows if r["finish_reason"] == "length"]
    assert finished and truncated
    # Every finished rollout's reward is exactly what the suite's score returned for that completion...
    scored = {(i, c): v for i, c, v in spy.calls}
    assert all(scored[(r["item_id"], r["completion"])] == r["reward"] for r in finished)
    # ...the scorer saw nothing else, and truncated samples score 0 without being asked.
    assert len(spy.calls) == len(finished)
    assert all(r["reward"] == 0.0 for r in truncated)
    assert len({r["reward"] for r in rows}) > 1  # a non-trivial signal reached the loss
    # The policy served to the engine is the trained one: the probe's gap is ~0 with the hf engine.
    logs = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    assert all(r["sync_gap"] < 1e-4 for r in logs if "sync_gap" in r)
    assert all("kl" in r for r in _steps(cfg.out))


def test_grpo_records_its_first_rollouts_data_score_as_the_command_computes_it(registry: Path, tmp_path: Path):
    """The RL run's data score is its step-0 rollouts under the base; `data-score rollouts:` recomputes it from
    rollouts.jsonl (finished rollouts closed by end of turn, truncated ones not) and gets the same number."""
    from typer.testing import CliRunner

    from harness.cli import app

    cfg = _cfg("grpo", registry, tmp_path, max_new_tokens=4)
    (ckpt,) = train(cfg, suite=SpySuite())
    step0 = next(r["data_score"] for r in map(json.loads, (cfg.out / "log.jsonl").read_text().splitlines())
                 if "data_score" in r)  # fmt: skip
    assert step0["n_examples"] == 2 * 3 and Registry.load(registry).by_id[ckpt.id].data_score == step0
    rows = [r for r in read_rollouts(cfg.out / "rollouts.jsonl") if r["step"] == 0]
    assert {r["finish_reason"] for r in rows} == {"stop", "length"}  # both kinds, so the end-of-turn rule counts
    cmd = ["data-score", f"rollouts:{cfg.out / 'rollouts.jsonl'}:step=0", "--base", "tiny", "--registry", str(registry)]
    res = CliRunner().invoke(app, [*cmd, "--json"])
    assert res.exit_code == 0, res.output
    ds = json.loads(res.stdout)
    assert ds["n_tokens"] == step0["n_tokens"] and ds["mean_nll"] == pytest.approx(step0["mean_nll"], abs=1e-4)
    assert "step 0 spy-train-" in ds["top"][0]["where"]
    res = CliRunner().invoke(app, [*cmd[:1], f"rollouts:{cfg.out / 'rollouts.jsonl'}:step=9", *cmd[2:]])
    assert res.exit_code == 2 and "no rollouts of step 9" in res.stderr


def test_group_advantages() -> None:
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    a = group_advantages(r, "group")
    assert torch.allclose(a[0], torch.tensor([1.0, -1.0, -1.0, 1.0]) * (0.5 / r[0].std()))
    assert torch.equal(a[1], torch.zeros(4))  # equal rewards: no signal
    assert torch.equal(group_advantages(r, "raw"), r)  # REINFORCE weights by the raw reward


def test_training_format_masks_all_but_the_response(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    from harness.train.data import ChatFormat, collate

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    engine = HFEngine()
    engine.load(tiny_model_dir)
    fmt = ChatFormat(engine.render, tok)
    spy = SpySuite()
    item = spy.load("train")[0]
    prompt, ids = fmt.encode_prompt(spy.prompt(item))
    assert prompt == engine.render(spy.prompt(item))  # the evaluation's template, byte for byte
    short, unfinished = fmt.example(ids, "Paris", finished=True), fmt.example(ids, "Paris 42", finished=False)
    b = collate([fmt.example(ids, "Paris 42", finished=True), short, unfinished], tok.pad_token_id)
    trained = [tok.decode(b["targets"][r][b["loss_mask"][r].bool()]) for r in range(3)]
    # response + end of turn, nothing of the prompt; a truncated response gets no end-of-turn token
    assert trained == ["Paris 42<|im_end|>", "Paris<|im_end|>", "Paris 42"]


def test_batched_logprobs_equal_one_by_one(tiny_model_dir: Path) -> None:
    """Left padding, position ids and the logits window change nothing: each row scores as if alone."""
    from transformers import AutoModelForCausalLM

    from harness.train.data import Example, collate
    from harness.train.policy import token_logprobs

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    rows = [Example((1, 5, 9, 11), (20, 21, 2)), Example((1, 7), (30,)), Example((1, 5, 9, 11, 12, 13), (40, 41))]
    b = collate(rows, pad_id=0)
    with torch.no_grad():
        batched = token_logprobs(model, b)
        for r, e in enumerate(rows):
            ids = torch.tensor([list(e.prompt_ids) + list(e.response_ids)])
            logp = model(input_ids=ids).logits[0, :-1].log_softmax(-1).gather(1, ids[0, 1:, None])[:, 0]
            want = logp[-len(e.response_ids) :]
            got = batched[r][b["loss_mask"][r].bool()]
            assert torch.allclose(got, want, atol=1e-5)


def test_lora_is_merged_exactly(tiny_model_dir: Path, registry: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = get_peft_model(
        AutoModelForCausalLM.from_pretrained(tiny_model_dir), LoraConfig(r=4, target_modules="all-linear")
    )
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "lora_B" in n:
                p.normal_()
    ours = merged_state(model)
    theirs = model.merge_and_unload().state_dict()
    assert set(ours) == set(theirs)
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in theirs)

    cfg = _cfg("grpo", registry, tmp_path, lora_r=4, lr=5e-2)  # KL through the switched-off adapter
    (ckpt,) = train(cfg, suite=SpySuite())
    state = load_pt(Path(Registry.load(registry).by_id[ckpt.id].path))["state_dict"]
    assert not any("lora" in k for k in state)


class CopyEngine(HFEngine):
    """An engine with its own copy of the weights, like vllm: it must be sent every update."""

    name = "copy"

    def update_weights(self, named_tensors) -> None:
        self.model.load_state_dict(dict(named_tensors))


class StaleEngine(CopyEngine):
    name = "stale"

    def update_weights(self, named_tensors) -> None:
        list(named_tensors)  # accepts the weights and keeps serving the old ones


def test_separate_engine_gets_weights_pushed_and_checked(registry: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setitem(engines.ENGINES, "copy", "tests.test_train:CopyEngine")
    monkeypatch.setitem(engines.ENGINES, "stale", "tests.test_train:StaleEngine")
    cfg = _cfg("grpo-nokl", registry, tmp_path, engine="copy", lr=5e-2)
    train(cfg, suite=SpySuite())
    rows = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    gaps = [r["sync_gap"] for r in rows if "sync_gap" in r]  # (step 0 also logs the data score, apart)
    assert len(gaps) == 3 and max(gaps) < 1e-4  # checked at the start and after each of the two pushes

    stale = _cfg("grpo-nokl", registry, tmp_path, engine="stale", lr=5e-2, sync_tol=1e-3, name="stale")
    with pytest.raises(SyncError, match="not serving the policy's weights"):
        train(stale, suite=SpySuite())


def _cli(*args: str):
    return CliRunner().invoke(app, list(args))


def test_cli_trains_and_registers(registry: Path, tmp_path: Path) -> None:
    common = ["--suite", "countdown", "--base", "tiny", "--registry", str(registry), "--train-limit", "8"]
    res = _cli("sft", *common, "--batch-size", "4", "--max-steps", "2", "--out", str(tmp_path / "o"), "--name", "cd")
    assert res.exit_code == 0, res.output
    assert Registry.load(registry).by_id["cd"].method == "sft"
    res = _cli("sft", *common, "--batch-size", "4", "--max-steps", "1", "--out", str(tmp_path / "p"), "--no-register")
    assert res.exit_code == 0 and "method: sft" in res.stdout and "step: 1" in res.stdout
    # a suite given with options trains on that suite: trained_on names it, so compare finds the target
    opt = [*common[2:], "--suite", "countdown:lenient", "--batch-size", "4", "--max-steps", "1"]
    res = _cli("sft", *opt, "--out", str(tmp_path / "q"), "--name", "cd-lenient")
    assert res.exit_code == 0, res.output
    assert Registry.load(registry).by_id["cd-lenient"].trained_on == ("countdown",)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["dpo", "--suite", "countdown", "--base", "tiny"], "unknown method 'dpo'"),
        (["sft", "--suite", "nope", "--base", "tiny"], "unknown suite 'nope'"),
        (["sft", "--suite", "countdown", "--base", "nowhere"], "nowhere: no such file or directory"),
        (["sft", "--suite", "capitals", "--base", "tiny"], "capitals has no train split"),
        (["sft", "--suite", "countdown", "--base", "tiny", "--beta", "0.1"], "--beta do not apply to method 'sft'"),
        (["grpo", "--suite", "countdown", "--base", "tiny", "--group-size", "1"], "--group-size"),
        (["sft", "--suite", "countdown", "--base", "tiny", "--name", "tiny"], "'tiny' already exists"),
    ],
)
def test_cli_bad_input_exits_2(args: list[str], needle: str, registry: Path) -> None:
    res = _cli(*args, "--registry", str(registry))
    assert res.exit_code == 2, res.output
    assert needle in res.stderr and len(res.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_sft_and_grpo_on_the_embedded_model(tmp_path: Path) -> None:
    """The real SmolLM2-135M-Instruct: one SFT step lowers nothing to NaN and the .pt materialises."""
    from harness.checkpoints.registry import RegistryError

    path = tmp_path / "checkpoints.yaml"
    path.write_text("checkpoints:\n  - id: smol\n    path: embedded:smollm2-135m-instruct\n    method: base\n")
    try:
        Registry.load(path)
    except RegistryError as e:
        pytest.skip(str(e))
    sizes = {"registry": path, "max_steps": 1, "train_limit": 8, "batch_size": 4, "micro_batch_size": 4}
    sft = make_config("sft", suite="countdown", base="smol", out=tmp_path / "sft", **sizes)
    grpo = make_config(
        "grpo", suite="countdown", base="smol", out=tmp_path / "grpo", group_size=2, max_new_tokens=16, **sizes
    )
    for cfg in (sft, grpo):
        (ckpt,) = train(cfg)
        assert all(math.isfinite(r["loss"]) for r in _steps(cfg.out))
        reg = Registry.load(path)
        assert (materialise(reg.by_id[ckpt.id], reg.lineage(reg.by_id[ckpt.id])) / "config.json").exists()
