"""`train sft --teacher CKPT`: SFT data sampled from another checkpoint through the engine layer, kept when the
suite's scorer accepts it. Two tiny models: the student (the base) and a teacher with its own chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("accelerate")

from harness.checkpoints.registry import Registry  # noqa: E402
from harness.train.config import ConfigError, make_config  # noqa: E402
from harness.train.rollout import read_rollouts  # noqa: E402
from harness.train.run import train  # noqa: E402
from harness.types import Item  # noqa: E402
from tests.test_train import SpySuite, _cfg, _steps, registry  # noqa: E402, F401 (registry is a fixture)
from tests.tiny import CHATML  # noqa: E402

MARK = "TEACHER-TEMPLATE "


class EvenSuite(SpySuite):
    """Accepts any finished answer to an even item and nothing else, so what is kept is known exactly."""

    def score(self, item: Item, completion: str) -> float:
        value = 1.0 if item.data["n"] % 2 == 0 else 0.0
        self.calls.append((item.id, completion, value))
        return value


@pytest.fixture(scope="module")
def teacher_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.tiny import build_tiny_model

    out = build_tiny_model(tmp_path_factory.mktemp("teacher") / "model", seed=1)
    cfg_path = out / "tokenizer_config.json"
    tok_cfg = json.loads(cfg_path.read_text())
    tok_cfg.pop("chat_template", None)
    cfg_path.write_text(json.dumps(tok_cfg))
    (out / "chat_template.jinja").write_text(MARK + CHATML)  # prompts rendered in the teacher's own template
    return out


def test_teacher_sft_keeps_what_the_scorer_accepts(registry: Path, tmp_path: Path, teacher_dir: Path):  # noqa: F811
    cfg = _cfg("sft", registry, tmp_path, teacher=str(teacher_dir), teacher_samples=4, max_new_tokens=6)
    (ckpt,) = train(cfg, suite=EvenSuite())
    rows = list(read_rollouts(cfg.out / "rollouts.jsonl"))
    assert len(rows) == 4 * 4  # train_limit 4 items x 4 samples, all from the teacher
    assert all(r["prompt"].startswith(MARK) for r in rows), "prompts did not go to the teacher's engine"
    accepted = [r for r in rows if r["reward"] >= 1.0]
    assert accepted and all(r["item_id"].endswith(("-0", "-2")) and r["finish_reason"] == "stop" for r in accepted)
    log = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    (sampled,) = [r for r in log if r.get("source") == "teacher"]
    assert (sampled["sampled"], sampled["kept"]) == (16, len(accepted))
    assert sampled["kept_fraction"] == pytest.approx(len(accepted) / 16)
    assert [r["step"] for r in _steps(cfg.out)] == [1, 2]
    entry = Registry.load(registry).by_id[ckpt.id]
    assert entry.method == "sft" and entry.base == "tiny"
    assert json.loads((cfg.out / "config.json").read_text())["config"]["teacher"] == str(teacher_dir)


def test_self_sft_shares_the_sampling_code(registry: Path, tmp_path: Path) -> None:  # noqa: F811
    """Self-SFT is the teacher-is-base case: the same sampler call and the same log row, from the policy."""
    cfg = _cfg("self-sft", registry, tmp_path, max_new_tokens=6)
    train(cfg, suite=EvenSuite())
    log = [json.loads(line) for line in (cfg.out / "log.jsonl").read_text().splitlines()]
    (sampled,) = [r for r in log if r.get("source") == "policy"]
    rows = list(read_rollouts(cfg.out / "rollouts.jsonl"))
    assert sampled["kept"] == sum(r["reward"] >= 1.0 for r in rows) and not rows[0]["prompt"].startswith(MARK)


def test_teacher_options_are_checked(registry: Path, tmp_path: Path) -> None:  # noqa: F811
    with pytest.raises(ConfigError, match="--teacher: applies to sft only"):
        make_config("self-sft", suite="spy", base="tiny", teacher="x")
    with pytest.raises(ConfigError, match="--teacher-samples: must be at least 1"):
        make_config("sft", suite="spy", base="tiny", teacher="x", teacher_samples=0)
    cfg = _cfg("sft", registry, tmp_path, teacher=str(tmp_path / "nope"))
    with pytest.raises(Exception, match="nope: no such file"):
        train(cfg, suite=EvenSuite())
