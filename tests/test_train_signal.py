"""No silent no-ops in the RL trainer: steps whose groups all have equal rewards are counted and logged, a run
that mostly had no learning signal ends with a loud warning, and its registry entry says so.

    .venv/bin/python -m pytest tests/test_train_signal.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from rich.console import Console  # noqa: E402

from harness.checkpoints.registry import Registry  # noqa: E402
from harness.suites import Suite  # noqa: E402
from harness.train.config import make_config  # noqa: E402
from harness.train.rl import reward_trend, signal_summary  # noqa: E402
from harness.train.run import train  # noqa: E402
from harness.types import Decoding, Item  # noqa: E402


class ConstSuite(Suite):
    """Every completion scores `value`: no group can ever have reward variance."""

    name = "const"
    version = "1"
    area = "reasoning"
    decoding = Decoding(max_new_tokens=4)

    def __init__(self, value: float) -> None:
        self.value = value

    def load(self, split: str = "eval") -> list[Item]:
        return [Item(f"c-{split}-{i}", {"n": i}) for i in range(4)]

    def prompt(self, item: Item) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"Say {item.data['n']}"}]

    def score(self, item: Item, completion: str) -> float:
        return self.value

    def reference(self, item: Item) -> str:
        return "ok"


class LengthSuite(ConstSuite):
    """Reward 1 for an even-length completion: random rollouts of the tiny model disagree within a group.
    A space stops generation, so most rollouts finish (a truncated one would score 0)."""

    decoding = Decoding(max_new_tokens=8, stop=(" ",))

    def score(self, item: Item, completion: str) -> float:
        return float(len(completion) % 2 == 0)


@pytest.fixture
def registry(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import harness.checkpoints.registry

    known = harness.checkpoints.registry.known_suites
    monkeypatch.setattr(
        harness.checkpoints.registry, "known_suites", lambda: known() | {"const"}
    )  # the test's own suite
    path = tmp_path / "checkpoints.yaml"
    path.write_text(f"checkpoints:\n  - id: tiny\n    path: {tiny_model_dir}\n    method: base\n")
    return path


def _run(method: str, suite: Suite, registry: Path, out: Path) -> tuple[list[dict], str]:
    cfg = make_config(
        method, suite="const", base="tiny", registry=registry, out=out, batch_size=2, group_size=3,
        micro_batch_size=6, max_steps=3, train_limit=4, lr=1e-2, max_new_tokens=8, temperature=1.0,
    )  # fmt: skip
    console = Console(record=True, width=200)
    train(cfg, suite=suite, console=console)
    steps = [r for r in map(json.loads, (out / "log.jsonl").read_text().splitlines()) if "loss" in r]
    return steps, console.export_text()


@pytest.mark.parametrize("method", ["grpo", "reinforce"])
def test_a_run_without_signal_is_counted_warned_and_marked(method: str, registry: Path, tmp_path: Path) -> None:
    # GRPO: equal rewards (all 1) give zero advantages; REINFORCE: all-zero rewards give zero weights.
    value = 1.0 if method == "grpo" else 0.0
    steps, text = _run(method, ConstSuite(value), registry, tmp_path / "run")
    assert [r["no_signal"] for r in steps] == [1, 1, 1]
    assert all(r["signal_groups"] == 0.0 for r in steps)
    assert "WARNING" in text and "3 of 3 steps had no learning signal" in text
    assert "rollout reward by quarter" in text
    entry = [c for c in Registry.load(registry).by_id.values() if c.id != "tiny"][-1]
    assert entry.hparams["no_signal_steps"] == 3 and entry.hparams["rl_steps"] == 3
    assert "NO LEARNING SIGNAL" in entry.notes


def test_a_run_with_signal_is_not_marked(registry: Path, tmp_path: Path) -> None:
    steps, text = _run("grpo", LengthSuite(0.0), registry, tmp_path / "run")
    assert sum(r["no_signal"] for r in steps) < 2, steps
    assert any(r["signal_groups"] > 0 for r in steps)
    assert "WARNING" not in text
    entry = [c for c in Registry.load(registry).by_id.values() if c.id != "tiny"][-1]
    assert "NO LEARNING SIGNAL" not in entry.notes and entry.hparams["rl_steps"] == 3


def test_signal_summary_and_reward_trend_by_hand() -> None:
    rows = [{"no_signal": 1, "reward": 0.0}] * 3 + [{"no_signal": 0, "reward": 0.5}] * 2
    assert signal_summary(rows) == {"steps": 5, "no_signal_steps": 3, "mostly_no_signal": True}
    assert signal_summary(rows[2:]) == {"steps": 3, "no_signal_steps": 1, "mostly_no_signal": False}
    assert reward_trend([{"reward": r} for r in (0, 0, 1, 1, 1, 1, 0, 1)]) == [0.0, 1.0, 1.0, 0.5]
    assert reward_trend([]) == []
