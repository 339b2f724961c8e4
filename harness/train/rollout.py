"""Rollouts through the engine layer: sampling from the current policy, the reward, and weight sync.

`hf` serves the in-memory policy (HFEngine.use_model: no copy, every update is seen at once). Any other
engine (vllm) serves its own copy of the weights: after every update the policy's merged weights are
pushed with `engine.update_weights(named_tensors)` and a probe checks that the engine really serves them
(its log-probability of a fixed response must match the policy's own).

The reward is the suite's own `score`, and a truncated sample (finish_reason "length") scores 0, as in
the paper's repo. Every rollout is appended to rollouts.jsonl, so SFT on RL traces is possible later.

    python -c "from harness.train.rollout import reward; print(reward.__doc__)"
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from harness.engines import Engine, EngineError, make_engine
from harness.errors import ForgetbenchError
from harness.suites import Suite
from harness.types import Completion, Decoding, Item


class SyncError(ForgetbenchError):
    """The rollout engine does not serve the policy's current weights."""

    exit_code = 1  # the run itself failed (not the input): the trainer's own exit code


@dataclass(frozen=True)
class Rollout:
    """One sampled response and its reward, as logged."""

    step: int
    item_id: str
    sample: int  # index within the item's group
    prompt: str  # the rendered prompt text
    completion: str
    finish_reason: str
    n_tokens: int
    reward: float


def reward(suite: Suite, item: Item, completion: Completion) -> float:
    """suite.score of the completion; 0 for a truncated one (finish_reason "length")."""
    if completion.finish_reason != "stop":
        return 0.0
    return float(suite.score(item, completion.text))


class Sampler:
    """The rollout engine around the policy: render, sample k per item, and keep the engine in sync."""

    def __init__(
        self,
        engine_name: str,
        policy: torch.nn.Module,
        tokenizer: Any,
        base_dir: Path,
        system_prompt: str | None,
        device: torch.device | str,
        batch_size: int = 32,
        sync_tol: float = 0.05,
    ) -> None:
        self.system_prompt = system_prompt
        self.sync_tol = sync_tol
        self.tokenizer = tokenizer
        self.engine: Engine = make_engine(engine_name, **({"device": str(device)} if engine_name == "hf" else {}))
        if engine_name == "hf":
            self.engine.batch_size = batch_size
            self.engine.use_model(policy, tokenizer)
            self.shares_weights = True
        else:
            if not hasattr(self.engine, "update_weights"):
                raise EngineError(f"engine {engine_name!r} cannot receive new weights (no update_weights)")
            self.engine.load(base_dir)
            self.shares_weights = False
        self.probe: tuple[str, str] | None = None
        self.noise: float | None = None  # the gap before any update: numeric noise only (e.g. bf16 vs fp32)

    @property
    def ident(self) -> str:
        return self.engine.ident

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.engine.render(messages, self.system_prompt)

    @torch.no_grad()
    def sample(
        self, suite: Suite, items: Sequence[Item], prompts: Sequence[str], k: int, decoding: Decoding, step: int
    ) -> list[tuple[Item, Completion, Rollout]]:
        """k samples per item, grouped item by item (item 0's k samples first), each with its reward.

        All len(items) x k samples go to the engine in one call: the hf engine batches continuously (a short
        answer's row is refilled at once) and seeds each request's sampler by its index, so the k samples of
        one prompt differ and the step's rollouts do not depend on batch_size."""
        flat = [p for p in prompts for _ in range(k)]
        outs = self.engine.generate(flat, decoding)
        rows = []
        for j, out in enumerate(outs):
            it = items[j // k]
            r = reward(suite, it, out)
            rows.append((it, out, Rollout(step, it.id, j % k, flat[j], out.text, out.finish_reason, out.n_tokens, r)))
        return rows

    def sync(self, policy: torch.nn.Module) -> float:
        """Push the policy's weights to an engine that holds its own copy, then check it serves them.

        Returns the probe's mean per-token |log-prob gap| (0 for the hf engine, which shares the module)."""
        if not self.shares_weights:
            self.engine.update_weights(merged_state(policy).items())
        return self.check(policy)

    def check(self, policy: torch.nn.Module) -> float:
        """Mean per-token |engine - policy| log-prob of the probe response. The first call (before any
        update, same weights on both sides) measures the numeric noise; later calls fail beyond noise +
        sync_tol, which a stale engine reaches as soon as the policy has moved further than that."""
        if self.probe is None:
            return 0.0
        prompt, response = self.probe
        got = self.engine.logprobs([prompt], [response])[0]
        want, n = policy_logprob(policy, self.tokenizer, prompt, response)
        gap = abs(got - want) / max(n, 1)
        first = self.noise is None
        limit = 10 * self.sync_tol if first else self.noise + self.sync_tol
        if gap > limit:
            raise SyncError(
                f"engine {self.engine.ident} is not serving the policy's weights: probe log-prob {got:.4f} vs "
                f"policy {want:.4f} ({gap:.4f}/token > {limit:.4f})"
            )
        if first:
            self.noise = gap
        return gap

    def close(self) -> None:
        self.engine.close()


@torch.no_grad()
def policy_logprob(model: torch.nn.Module, tokenizer: Any, prompt: str, response: str) -> tuple[float, int]:
    """Sum of log-probabilities of `response` after `prompt` under `model`, tokenized as the engines do."""
    p_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    f_ids = tokenizer(prompt + response, add_special_tokens=False)["input_ids"]
    k = 0
    while k < min(len(p_ids), len(f_ids)) and p_ids[k] == f_ids[k]:
        k += 1
    k = max(k, 1)  # score from the first differing position (a merge across the boundary)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    logits = model(input_ids=torch.tensor([f_ids], device=device)).logits[0].float()
    model.train(was_training)
    logp = torch.log_softmax(logits, dim=-1)[k - 1 : len(f_ids) - 1]
    targets = torch.tensor(f_ids[k:], device=device)
    return float(logp.gather(1, targets[:, None]).sum()), len(f_ids) - k


@torch.no_grad()
def merged_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The plain model's state dict; for a LoRA (peft) model, base weights + merged adapter deltas under
    the base model's own parameter names. What is saved and what is pushed to an engine."""
    try:
        from peft import PeftModel
        from peft.tuners.lora import LoraLayer
    except ImportError:  # peft is optional: without it no model can be a PeftModel
        PeftModel = None  # noqa: N806
    if PeftModel is None or not isinstance(model, PeftModel):
        return {k: v.detach() for k, v in model.state_dict().items()}
    base = model.get_base_model()
    deltas: dict[str, torch.Tensor] = {}
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer):
            for a in module.active_adapters:
                if a in module.lora_A:
                    d = module.get_delta_weight(a)
                    deltas[f"{name}.weight"] = deltas[f"{name}.weight"] + d if f"{name}.weight" in deltas else d
    out: dict[str, torch.Tensor] = {}
    for key, value in base.state_dict().items():
        if "lora_" in key:
            continue
        key = key.replace(".base_layer.", ".")
        out[key] = (value + deltas[key].to(value.dtype)) if key in deltas else value.detach()
    return out


class RolloutLog:
    """Append-only jsonl of every rollout (prompt, completion, reward, step): data for SFT on RL traces."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, rows: Iterable[Rollout | dict[str, Any]]) -> None:
        with self.path.open("a", encoding="utf-8") as fh:
            for r in rows:
                fh.write(json.dumps(asdict(r) if isinstance(r, Rollout) else r, ensure_ascii=False) + "\n")


def read_rollouts(path: Path) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)
