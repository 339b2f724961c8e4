"""Choice suites through the evaluator: one engine.logprobs call per batch of items, records as per item.

python -m pytest tests/test_choice_batched.py -q
"""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")

from harness.checkpoints.registry import Registry  # noqa: E402
from harness.engines import make_engine  # noqa: E402
from harness.evaluate import EvalConfig, evaluate  # noqa: E402
from harness.suites import get_suite, load_items  # noqa: E402


def test_one_logprobs_call_per_batch(tiny_model_dir: Path, tmp_path: Path) -> None:
    suites = [get_suite(n) for n in ("arc_challenge", "winogrande")]
    try:
        items = {s.name: load_items(s, 5) for s in suites}
    except Exception as e:  # noqa: BLE001 - a machine without the pinned data
        pytest.skip(f"choice suite data not available: {e}")
    engine = make_engine("hf", batch_size=4)
    engine.load(tiny_model_dir)
    per_item = engine.logprobs
    calls: list[int] = []

    def counted(prompts: list[str], continuations: list[str]) -> list[float]:
        calls.append(len(prompts))
        return per_item(prompts, continuations)

    engine.logprobs = counted
    registry = Registry([], (), None)
    ckpt = registry.resolve(str(tiny_model_dir))
    cfg = EvalConfig(engine="hf", limit=5, runs_dir=tmp_path / "runs", batch_size=4)
    results = evaluate(registry, [ckpt], suites, cfg, engine=engine)[ckpt.id]
    n_options = sum(len(s.choices(it)) for s in suites for it in items[s.name])
    assert len(calls) == 3 and sum(calls) == n_options  # 10 items in batches of 4, every option scored once
    for s in suites:
        for it, got in zip(items[s.name], results[s.name].completions, strict=True):
            opts = s.choices(it)
            lps = per_item([engine.render(s.prompt(it))] * len(opts), opts)
            assert got == opts[max(range(len(opts)), key=lambda j: lps[j])]
