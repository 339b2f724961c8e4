"""Noise floor and KL predictor through the compare command on the fake engine: measured, cached, skippable.

python -m pytest tests/test_probes.py -q
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.cli import app
from harness.evaluate import EvalConfig
from harness.probes import GREEDY_SEED, noise_plan
from harness.store import Store
from harness.suites import get_suite, load_items
from tests.fakes import write_fake

SUITES = "arithmetic,capitals,countdown"
runner = CliRunner()
ACC = {
    "base": {"arithmetic": 0.5, "capitals": 0.7, "countdown": 0.1},
    "sft": {"arithmetic": 0.2, "capitals": 0.4, "countdown": 0.9},
    "grpo": {"arithmetic": 0.5, "capitals": 0.7, "countdown": 0.5},
    "mid": {"arithmetic": 0.4, "capitals": 0.6, "countdown": 0.7},
}
SEEDS = {"base": 1, "sft": 2, "grpo": 1, "mid": 3}
METHOD = {"base": "base", "sft": "sft", "grpo": "grpo", "mid": "iter-sft"}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    lines = ["default_suites: [arithmetic, capitals, countdown]", "checkpoints:"]
    for name, acc in ACC.items():
        write_fake(tmp_path / f"{name}.fake.json", acc, 20, seed=SEEDS[name])
        lines += [f"  - id: {name}", f"    path: {name}.fake.json", f"    method: {METHOD[name]}"]
        if name != "base":
            lines += ["    base: base", "    trained_on: [countdown]"]
    (tmp_path / "checkpoints.yaml").write_text("\n".join(lines) + "\n")
    return tmp_path


def _compare(*args: str, out: str = "out") -> dict:
    res = runner.invoke(
        app, ["compare", "base", "sft", "grpo", "mid", "--engine", "fake", "--limit", "20", "--out", out,
              "--suites", SUITES, *args],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    return json.loads(Path(out, "results.json").read_text()) | {"_output": res.output}


def _keys(ws: Path) -> set[tuple[str, ...]]:
    """Every (checkpoint id, suite, decoding__engine) record directory in the store."""
    store = Store(ws / "reports/runs")
    root = ws / "reports/runs/records"
    out = set()
    for p in root.glob("*/*/*"):
        fp, suite, key = p.relative_to(root).parts
        out.add((store.checkpoint_info(fp).get("id", fp), suite.split("@")[0], key))
    return out


def test_noise_floor_is_measured_cached_and_skippable(workspace: Path) -> None:
    plain = _compare("--no-noise-floor", out="plain")
    assert plain["noise"] == [] and "Noise floor" not in plain["_output"]
    before = _keys(workspace)
    data = _compare()
    assert [n["suite"] for n in data["noise"]] == SUITES.split(",")
    for n in data["noise"]:  # the fake engine is deterministic: its noise floor is exactly zero
        assert n["change"] == "batch size 32 -> 16" and n["delta"] == 0 and n["flips"] == 0 and n["n"] == 20
    # greedy and batch-invariant: 0 by construction, said in words, no zero band drawn
    assert data["meta"]["noise_band"] is None and data["meta"]["decoding_noise_zero"]
    assert "Decoding noise: 0 on every suite by construction" in " ".join(data["_output"].split())
    added = _keys(workspace) - before
    # one new key per suite, the base's only (the marked greedy seed); the normal keys are all still there
    assert sorted((c, s) for c, s, _ in added) == [("base", s) for s in sorted(SUITES.split(","))]
    again = runner.invoke(app, ["compare", "base", "sft", "grpo", "mid", "--engine", "fake", "--limit", "20",
                                "--out", "o2", "--suites", SUITES, "--cached-only"])  # fmt: skip
    assert again.exit_code == 0, again.output  # the second base run came from the store
    assert _keys(workspace) - before == added
    # a normal run is unaffected: the same numbers with and without the probe
    assert [s["deltas"] for s in plain["summaries"]] == [s["deltas"] for s in data["summaries"]]
    html = Path("out/report.html").read_text()
    assert "decoding noise (Δ [95% CI])" in html and "batch size 32 -&gt; 16" in html and "0 by construction" in html


def test_noise_plan_seed_for_sampled_batch_size_for_greedy() -> None:
    greedy = get_suite("arithmetic")
    sampled = get_suite("capitals")
    twin_cls = type("Sampled", (type(sampled),), {"decoding": sampled.decoding.__class__(temperature=0.7, seed=3)})
    hot = twin_cls()
    plan = noise_plan([greedy, hot], EvalConfig(batch_size=8))
    (s_twins, s_cfg, s_change), (g_twins, g_cfg, g_change) = plan
    assert s_twins[0].decoding.seed == 4 and s_cfg.batch_size == 8 and s_change == {"capitals": "seed 3 -> 4"}
    assert g_twins[0].decoding.seed == GREEDY_SEED + 4 and g_cfg.batch_size == 4
    assert g_change == {"arithmetic": "batch size 8 -> 4"}
    assert greedy.decoding.seed == 0 and type(greedy).decoding.seed == 0  # the suite itself is untouched
    assert g_twins[0].decoding.key() != greedy.decoding.key() and g_twins[0].version == greedy.version


def _kl_by_hand(ws: Path, name: str) -> float:
    """Fake engine: log p = 0 for a model's scripted answer, -10 otherwise; samples = scripted answers. So
    KL(base || ckpt) = 10 x the fraction of target prompts where the two scripts differ."""
    suite = get_suite("countdown")
    base = json.loads((ws / "base.fake.json").read_text())["responses"]
    other = json.loads((ws / f"{name}.fake.json").read_text())["responses"]
    prompts = [suite.prompt(it)[-1]["content"] for it in load_items(suite, 20)]
    return 10 * sum(base[p].strip() != other[p].strip() for p in prompts) / len(prompts)


def test_kl_predictor_by_hand_and_cached(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    data = _compare("--kl", "--no-noise-floor")
    kl = {k["checkpoint"]: k for k in data["kl"]}
    assert set(kl) == {"sft", "grpo", "mid"}
    for name, k in kl.items():
        assert k["kl_base_ckpt"] == pytest.approx(_kl_by_hand(workspace, name))
        assert k["kl_ckpt_base"] == pytest.approx(_kl_by_hand(workspace, name))  # symmetric for the fake
        assert k["n_samples"] == 20 and k["suites"] == ["countdown"]
    assert kl["sft"]["kl_base_ckpt"] > 0
    from scipy.stats import spearmanr

    drops = {s["checkpoint"]: s["drop"] for s in data["summaries"]}
    names = sorted(kl)
    want = spearmanr([kl[n]["kl_base_ckpt"] for n in names], [drops[n] for n in names]).statistic
    assert data["kl_spearman"] == pytest.approx(want)
    assert "Spearman" in data["_output"] and 'id="fig-kl"' in Path("out/report.html").read_text()
    assert list((workspace / "reports/runs/logprobs").glob("*.json"))
    # cached: a second run scores nothing
    from harness.engines import fake

    monkeypatch.setattr(fake.FakeEngine, "logprobs", lambda *a, **k: pytest.fail("log-probs must be cached"))
    monkeypatch.setattr(fake.FakeEngine, "generate", lambda *a, **k: pytest.fail("samples must be cached"))
    again = _compare("--kl", "--no-noise-floor", out="o2")
    assert again["kl"] == data["kl"]
    res = runner.invoke(app, ["report", "out"])  # re-render: the probes' config comes back from config.json
    assert res.exit_code == 0, res.output
    assert json.loads(Path("out/results.json").read_text())["kl"] == data["kl"]


@pytest.mark.slow  # three hf model loads and samples: minutes on a shared 2-core machine
def test_kl_on_the_tiny_model(tiny_model_dir: Path, tmp_path: Path) -> None:
    """Real log-probs (hf engine): a copy of the base has KL exactly 0 both ways; other weights give another
    (finite, non-zero) estimate; 3 samples of near-uniform random models can make it slightly negative."""
    import shutil

    from harness.checkpoints.registry import Registry
    from harness.probes import kl_points
    from tests.tiny import build_tiny_model

    shutil.copytree(tiny_model_dir, tmp_path / "twin")
    build_tiny_model(tmp_path / "other", seed=1)
    (tmp_path / "checkpoints.yaml").write_text(
        "checkpoints:\n"
        f"  - id: base\n    path: {tiny_model_dir}\n    method: base\n"
        f"  - id: twin\n    path: {tmp_path / 'twin'}\n    method: sft\n    base: base\n    trained_on: [arithmetic]\n"
        f"  - id: other\n    path: {tmp_path / 'other'}\n    method: grpo\n    base: base\n"
        "    trained_on: [arithmetic]\n"
    )
    reg = Registry.load(tmp_path / "checkpoints.yaml")
    cfg = EvalConfig(engine="hf", limit=3, max_new_tokens=6, batch_size=4, runs_dir=tmp_path / "runs")
    from rich.console import Console

    ckpts = [reg.resolve(c) for c in ("base", "twin", "other")]
    points, notes = kl_points(reg, ckpts[0], ckpts[1:], [get_suite("arithmetic")], cfg, Console(stderr=True))
    kl = {p.checkpoint: p for p in points}
    assert not notes and kl["twin"].n_samples == 3
    assert kl["twin"].kl_base_ckpt == 0 and kl["twin"].kl_ckpt_base == 0
    assert kl["other"].kl_base_ckpt != 0 and kl["other"].kl_ckpt_base != 0
    assert abs(kl["other"].kl_base_ckpt) < 1e3 and abs(kl["other"].kl_ckpt_base) < 1e3
