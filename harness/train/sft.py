"""The SFT family: token-mean cross-entropy on assistant tokens, on one of three data sources.

    sft       expert responses (Countdown: the solver's solutions; other suites: the rendered gold answer),
              or with --data FILE.jsonl: any chat examples (harness/chatdata.py; --suite stays the target),
              or with --teacher CKPT: k samples per prompt from that checkpoint, kept when the suite scores them
              correct (the paper's SFT data: a stronger model's responses filtered for correctness)
    self-sft  k samples per prompt drawn once from the initial model, kept when the suite scores them correct
    iter-sft  the same, re-drawn from the current model before every round (epoch, or every N steps)

Self-SFT is Iterative-SFT with one round; GRPO is the limit of re-drawing every step (paper section 4.6).
Every run scores its data under the policy before the first update (the base) at step 0: how off-policy it is
(harness/datascore.py), logged and recorded with each checkpoint as `data_score`.

    forgetbench train sft --suite countdown --base smollm2-135m --train-limit 64 --batch-size 8 --max-steps 4
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace
from typing import Any

import torch
from accelerate.utils import gather_object

from harness.errors import ForgetbenchError
from harness.train.config import IterSFTConfig, SelfSFTConfig, SFTConfig
from harness.train.data import Example, chat_examples, collate, expert_examples, micro_batches, take_batches
from harness.train.policy import token_logprobs
from harness.train.rollout import RolloutLog, Sampler
from harness.train.session import Session, StepBar, score_data
from harness.types import Decoding


class TrainError(ForgetbenchError):
    """The run cannot go on (e.g. no correct samples to train on); one line."""

    exit_code = 1  # the run itself failed (not the input): the trainer's own exit code


def sample_correct(
    s: Session, step: int, seed: int, source: Sampler | None = None, k: int | None = None
) -> list[Example]:
    """k samples per train prompt from `source` (default: the current policy), keeping the ones the suite
    scores 1 (and that finished). Self-SFT and Iterative-SFT sample the policy; `sft --teacher` another
    checkpoint: the same code, the teacher-is-base case being Self-SFT.

    The source sees each prompt in its own chat template; the kept response is trained under the policy's.
    Every process samples its share; the kept examples are gathered so all processes hold the same data."""
    cfg = s.cfg
    assert isinstance(cfg, SFTConfig)
    source = source or s.sampler
    if k is None:
        assert isinstance(cfg, SelfSFTConfig)
        k = cfg.k
    dec = Decoding(
        temperature=cfg.temperature,
        max_new_tokens=cfg.max_new_tokens or s.suite.decoding.max_new_tokens,
        stop=s.suite.decoding.stop,
        seed=seed,
    )
    mine = s.shard(s.items)
    per_call = max(1, cfg.rollout_batch_size // k)  # prompts per engine call: k samples each
    kept: list[Example] = []
    logged = []
    who = "policy" if source is s.sampler else "teacher"
    bar = StepBar(s.console, f"sample {k}x ({who})", len(mine), enabled=s.acc.is_main_process)
    s.model.eval()
    with bar:
        for start in range(0, len(mine), per_call):
            chunk = mine[start : start + per_call]
            prompt_ids = [s.fmt.encode_prompt(s.suite.prompt(it))[1] for it in chunk]
            texts = [source.render(s.suite.prompt(it)) for it in chunk]
            rows = source.sample(s.suite, chunk, texts, k, replace(dec, seed=seed + start), step)
            for j, (_, out, rollout) in enumerate(rows):
                if rollout.reward >= 1.0:  # "correct" = full score on a finished sample, as the paper filters
                    ex = s.fmt.example(prompt_ids[j // k], out.text, finished=True)
                    if len(ex) <= cfg.max_seq_len:
                        kept.append(ex)
            logged.extend(r for _, _, r in rows)
            n_ok = sum(r.reward >= 1.0 for _, _, r in rows)
            bar.progress.update(bar.task, advance=len(chunk), stats=f"{n_ok}/{len(rows)} correct")
    s.model.train()
    logged = gather_object(logged)
    kept = gather_object(kept)
    if s.acc.is_main_process:
        s.rollouts.write(logged)
    n = len(logged)
    frac = len(kept) / max(n, 1)
    s.console.print(f"step {step}: kept {len(kept)} of {n} {who} samples ({frac:.1%} correct)")
    reward = sum(r.reward for r in logged) / max(n, 1)
    s.log({"step": step, "source": who, "sampled": n, "kept": len(kept), "kept_fraction": frac, "reward": reward})
    return kept


def teacher_sampler(s: Session) -> Sampler:
    """The --teacher checkpoint behind the engine layer (its own chat template and system prompt)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert s.teacher is not None
    t, cfg = s.teacher, s.cfg
    tokenizer = AutoTokenizer.from_pretrained(t.model_dir)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = None
    if cfg.engine == "hf":  # the vllm engine loads the directory itself
        model = AutoModelForCausalLM.from_pretrained(t.model_dir, dtype=torch.float32).to(s.acc.device).eval()
    return Sampler(
        cfg.engine, model, tokenizer, t.model_dir, t.ckpt.system_prompt, s.acc.device, cfg.rollout_batch_size
    )


def sft_step(s: Session, batch: list[Example], step: int, total: int) -> dict[str, Any]:
    """One optimizer step on a global batch: token-mean cross-entropy over all its response tokens."""
    t0 = time.perf_counter()
    lr = s.set_lr(step, total)
    n_target = sum(len(e.response_ids) for e in batch)  # every process holds the whole batch: the global count
    mine = s.shard(batch)
    chunks = list(micro_batches(mine, s.cfg.micro_batch_size))
    loss_sum = 0.0
    for k, mb in enumerate(chunks):
        b = collate(mb, s.tokenizer.pad_token_id, s.acc.device)
        # Gradients all-reduce once per step, on the last micro-batch; earlier ones only accumulate.
        with s.acc.no_sync(s.model) if k < len(chunks) - 1 else nullcontext():
            with s.acc.autocast():
                logp = token_logprobs(s.model, b)
            nll = -(logp * b["loss_mask"]).sum()
            # DDP averages gradients over processes: scale by their number to get the mean over all tokens.
            loss = nll / n_target * s.world
            s.acc.backward(loss)
        loss_sum += float(nll.detach())
    grad_norm = s.update()
    loss_total = float(s.acc.reduce(torch.tensor(loss_sum, device=s.acc.device), "sum")) / n_target
    tokens = sum(len(e) for e in batch)
    return {"loss": loss_total, "lr": lr, "grad_norm": grad_norm, "tok_s": tokens / (time.perf_counter() - t0)}


def train_sft(s: Session) -> None:
    cfg = s.cfg
    iterative = isinstance(cfg, IterSFTConfig)
    wheres: list[str] | None = None
    if cfg.method == "sft" and cfg.data is not None:
        examples, rows = chat_examples(s.chats, s.fmt, cfg.max_seq_len)
        if s.acc.is_main_process:
            RolloutLog(s.out / "data.jsonl").write(rows)
        wheres = [r["item_id"] for r in rows if r["kept"]]
        dropped = len(rows) - len(examples)
        s.console.print(f"{len(examples)} examples from {cfg.data} ({dropped} longer than max_seq_len dropped)")
    elif cfg.method == "sft" and s.teacher is not None:
        teacher = teacher_sampler(s)
        try:
            examples = sample_correct(s, step=0, seed=cfg.seed, source=teacher, k=cfg.teacher_samples)
        finally:
            teacher.close()
    elif cfg.method == "sft":
        examples, rows = expert_examples(s.suite, s.items, s.fmt, cfg.max_seq_len)
        if s.acc.is_main_process:
            RolloutLog(s.out / "data.jsonl").write(rows)
        dropped = len(rows) - len(examples)
        wheres = [r["item_id"] for r in rows if r["kept"]]
        s.console.print(f"{len(examples)} expert examples ({dropped} longer than max_seq_len dropped)")
    elif not iterative:
        examples = sample_correct(s, step=0, seed=cfg.seed)
    else:
        examples = []
    if not iterative and not examples:
        raise TrainError(
            f"{cfg.method}: no training examples (no correct samples); raise --k/--teacher-samples or --train-limit"
        )
    if not iterative:
        score_data(s, examples, wheres)

    def steps_per_round(data: list[Example]) -> int:
        if iterative and cfg.resample_every:
            return cfg.resample_every
        return max(1, len(data) // cfg.batch_size) if data else 0

    cap = cfg.max_steps or 10**9
    total = min(cap, steps_per_round(examples) * cfg.epochs) if not iterative else min(cap, cfg.epochs)
    step, last = 0, {}
    with StepBar(s.console, cfg.method, total, enabled=s.acc.is_main_process) as bar:
        for epoch in range(cfg.epochs):
            if iterative:
                # Re-draw from the current policy: push its weights to a separate engine first (vllm).
                s.sampler.sync(s.policy)
                examples = sample_correct(s, step, seed=cfg.seed + 1000 * epoch)
                if not examples:
                    s.console.print(f"round {epoch}: no correct samples, nothing to train on")
                    continue
                if step == 0:  # the first round's data, before any update: under the base
                    score_data(s, examples)
                # The schedule's horizon: steps so far + this round's size for every round left.
                total = min(cap, step + steps_per_round(examples) * (cfg.epochs - epoch))
                bar.set_total(total)
            for batch in take_batches(examples, cfg.batch_size, steps_per_round(examples), seed=cfg.seed + epoch):
                last = sft_step(s, batch, step, total)
                step += 1
                s.log({"step": step, "epoch": epoch} | last)
                bar.step(last)
                if step >= total:
                    break
                s.checkpoint(step, final=False, stats=last)  # the last step is saved once, as the final one
            if step >= total:
                break
    if step == 0:
        raise TrainError(f"{cfg.method}: no optimizer step was taken (no correct samples in any round)")
    s.checkpoint(step, final=True, stats=last)
