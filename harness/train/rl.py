"""The RL family, as in the paper's repo (reference/paper.md section 4.5): strictly on-policy, one
optimizer step per batch of rollouts, no ratio or clipping.

Per step: B prompts x G samples from the current policy (through the engine) -> reward r = suite.score,
0 when truncated -> advantage A = (r - mean_group) / (std_group + 1e-8) (grpo, grpo-nokl) or A = r
(reinforce) -> per token -(A log pi - beta k2) with k2 = 1/2 (log pi - log pi_ref)^2 -> mean over each
sequence's response tokens, then over the B x G sequences -> update -> push the weights to the engine.

    forgetbench train grpo --suite countdown --base smollm2-135m --batch-size 4 --group-size 4 \\
        --max-new-tokens 96 --max-steps 2
"""

from __future__ import annotations

import random
import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import torch
from accelerate.utils import gather_object

from harness.train.config import GRPOConfig
from harness.train.data import collate, micro_batches
from harness.train.policy import load_reference, token_logprobs
from harness.train.session import Session, StepBar, score_data
from harness.types import Decoding, Item


def group_advantages(rewards: torch.Tensor, mode: str) -> torch.Tensor:
    """rewards [prompts, group] -> advantages of the same shape. Equal rewards in a group give 0.

    std is torch's default unbiased estimate, as in the paper's repo; no clipping."""
    if mode == "raw":
        return rewards.clone()
    return (rewards - rewards.mean(dim=1, keepdim=True)) / (rewards.std(dim=1, keepdim=True) + 1e-8)


class Reference:
    """log pi_ref: the frozen initial model, or for LoRA the policy with its adapter switched off
    (the same function with no second copy in memory)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.model = None if s.cfg.lora_r else load_reference(s.base.model_dir, s.acc.device)

    @torch.no_grad()
    def logprobs(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.model is not None:
            with self.s.acc.autocast():
                return token_logprobs(self.model, batch)
        with self.s.policy.disable_adapter(), self.s.acc.autocast():
            return token_logprobs(self.s.policy, batch)


def rl_step(s: Session, ref: Reference | None, prompts: list[Item], step: int, total: int, dec: Decoding) -> dict:
    """Sample, score, weight, update: one optimizer step on `prompts` (the global batch)."""
    cfg = s.cfg
    assert isinstance(cfg, GRPOConfig)
    g = cfg.group_size
    t0 = time.perf_counter()

    # 1. Rollouts from the current policy (this process's share of the prompts).
    mine = s.shard(prompts)
    encoded = [s.fmt.encode_prompt(s.suite.prompt(it)) for it in mine]
    s.model.eval()
    rows = s.sampler.sample(s.suite, mine, [text for text, _ in encoded], g, dec, step) if mine else []
    s.model.train()
    t_gen = time.perf_counter() - t0

    # 2. Rewards come from the suite's own score (rollout.reward); advantages per group.
    rewards = torch.tensor([r.reward for _, _, r in rows], dtype=torch.float32).view(len(mine), g)
    adv_t = group_advantages(rewards, cfg.advantage)
    adv = adv_t.flatten().tolist()
    # A group whose advantages are all 0 teaches nothing (equal rewards under GRPO, all-zero under REINFORCE).
    n_signal = int((adv_t != 0).any(dim=1).sum())
    examples = [
        s.fmt.example(encoded[j // g][1], out.text, finished=out.finish_reason == "stop", weight=adv[j])
        for j, (_, out, _) in enumerate(rows)
    ]
    n_seq = len(prompts) * g  # the loss is a mean over all sequences of the global batch
    if step == 0 and examples:  # the data score (harness/datascore.py): the first rollouts under the base
        score_data(s, examples, [f"step 0 {mine[j // g].id} sample {j % g}" for j in range(len(examples))])
    if cfg.beta == 0 and s.world == 1:
        # A zero-advantage sequence adds exactly 0 to the loss when there is no KL term: skip its forward.
        examples = [e for e in examples if e.weight != 0]

    # 3. Loss and update.
    lr = s.set_lr(step, total)
    loss_sum, kl_sum, k2_sum, n_tok = 0.0, 0.0, 0.0, 0
    chunks = list(micro_batches(examples, cfg.micro_batch_size))
    for k, mb in enumerate(chunks):
        b = collate(mb, s.tokenizer.pad_token_id, s.acc.device)
        mask = b["loss_mask"]
        with s.acc.no_sync(s.model) if k < len(chunks) - 1 else nullcontext():
            with s.acc.autocast():
                logp = token_logprobs(s.model, b)
            per_token = -b["weights"][:, None] * logp
            if ref is not None:
                log_ratio = logp - ref.logprobs(b)
                k2 = 0.5 * log_ratio**2
                per_token = per_token + cfg.beta * k2
                kl_sum += float((log_ratio.detach() * mask).sum())  # k1: the plain sample estimate of KL
                k2_sum += float((k2.detach() * mask).sum())
            per_seq = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)
            loss = per_seq.sum() / n_seq * s.world  # DDP averages over processes; undo that
            s.acc.backward(loss)
        loss_sum += float(per_seq.detach().sum())
        n_tok += int(mask.sum())
    if chunks:
        grad_norm = s.update()
    else:  # every advantage was 0 and there is no KL: the gradient is exactly zero, the weights stay
        s.optimizer.zero_grad(set_to_none=True)
        grad_norm = 0.0

    # 4. Serve the new weights for the next rollouts (vllm: push + probe check; hf: shared module, probe).
    gap = s.sampler.sync(s.policy)

    # 5. Log every rollout and the step's numbers (gathered over processes).
    logged = gather_object([r for _, _, r in rows])
    if s.acc.is_main_process:
        s.rollouts.write(logged)
    sums = [loss_sum, kl_sum, k2_sum, n_tok, sum(r.n_tokens for _, _, r in rows), n_signal, len(mine)]
    loss_all, kl_all, k2_all, tok_all, gen_all, signal_all, groups_all = s.acc.reduce(
        torch.tensor(sums, device=s.acc.device), "sum"
    ).tolist()
    rewards_all = [r.reward for r in logged]
    stats: dict[str, Any] = {
        "loss": loss_all / n_seq,
        "reward": sum(rewards_all) / len(rewards_all),
        "truncated": sum(r.finish_reason != "stop" for r in logged) / len(logged),
        "lr": lr,
        "grad_norm": grad_norm,
        "signal_groups": signal_all / max(groups_all, 1),  # fraction of groups with a non-zero advantage
        "no_signal": int(signal_all == 0),  # the policy-gradient term was exactly 0 this step
        "gen_tok_s": gen_all / max(t_gen, 1e-9),
        "sync_gap": gap,
        "seconds": time.perf_counter() - t0,
    }
    if ref is not None:
        stats |= {"kl": kl_all / max(tok_all, 1), "k2": k2_all / max(tok_all, 1)}
    return stats


def train_rl(s: Session) -> None:
    cfg = s.cfg
    assert isinstance(cfg, GRPOConfig)
    per_step = min(cfg.batch_size, len(s.items))
    steps_per_epoch = max(1, len(s.items) // per_step)
    total = min(cfg.max_steps or 10**9, steps_per_epoch * cfg.epochs)
    dec = Decoding(
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens or s.suite.decoding.max_new_tokens,
        stop=s.suite.decoding.stop,
    )
    ref = Reference(s) if cfg.beta > 0 else None  # grpo-nokl loads no reference model
    s.log({"step": 0, "sync_gap": s.sampler.check(s.policy)})  # the engine serves the initial weights
    last: dict[str, Any] = {}
    rewards_by_step: list[dict[str, Any]] = []
    with StepBar(s.console, cfg.method, total, enabled=s.acc.is_main_process) as bar:
        for step in range(total):
            epoch, k = divmod(step, steps_per_epoch)
            if k == 0:  # a fresh order of the prompts every epoch, the same on every process
                order = list(s.items)
                random.Random(cfg.seed + epoch).shuffle(order)
            prompts = order[k * per_step : (k + 1) * per_step]
            last = rl_step(s, ref, prompts, step, total, replace(dec, seed=cfg.seed * 100_003 + step))
            rewards_by_step.append(last)
            s.log({"step": step + 1, "epoch": epoch} | last)
            bar.step(last)
            if step + 1 < total:
                s.checkpoint(step + 1, final=False, stats=last)
    s.saver.signal = signal_summary(rewards_by_step)
    report_rewards(s, rewards_by_step)
    s.checkpoint(total, final=True, stats=last)


def signal_summary(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """How many steps had a learning signal: what the registry entry and the report carry."""
    dead = sum(int(r["no_signal"]) for r in steps)
    return {"steps": len(steps), "no_signal_steps": dead, "mostly_no_signal": dead * 2 > len(steps)}


def reward_trend(steps: list[dict[str, Any]], parts: int = 4) -> list[float]:
    """Mean rollout reward over `parts` consecutive slices of the run (first quarter ... last quarter)."""
    if not steps:
        return []
    parts = min(parts, len(steps))
    cuts = [round(i * len(steps) / parts) for i in range(parts + 1)]
    return [sum(r["reward"] for r in steps[a:b]) / (b - a) for a, b in zip(cuts, cuts[1:], strict=False)]


def report_rewards(s: Session, steps: list[dict[str, Any]]) -> None:
    """Print the reward trend; warn loudly when most steps had no learning signal (the weights barely moved)."""
    trend = " -> ".join(f"{r:.3f}" for r in reward_trend(steps))
    summary = signal_summary(steps)
    s.console.print(
        f"{s.cfg.method}: rollout reward by quarter {trend}; "
        f"{summary['no_signal_steps']}/{summary['steps']} step(s) without learning signal",
        highlight=False,
    )
    if summary["mostly_no_signal"]:
        s.console.print(
            f"[bold red]WARNING:[/] {summary['no_signal_steps']} of {summary['steps']} steps had no learning "
            "signal (every group's rewards were equal): this checkpoint is barely trained. Pick a target the "
            "base solves sometimes, raise --group-size or --max-new-tokens, or start from a stronger checkpoint.",
            highlight=False,
        )
