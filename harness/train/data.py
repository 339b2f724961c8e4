"""Training sequences in the evaluation's chat format, with the loss on the assistant tokens only.

A sequence is the rendered prompt (Engine.render: the checkpoint's own chat template and system-prompt
policy, exactly what `forgetbench eval` shows the model) followed by the response tokens and, when the
response finished, the template's end-of-turn token: what a rollout generates before it stops. Only the
response and that end token carry loss; a truncated rollout gets no end token.

    python -c "from harness.train.data import batches; print(list(batches(list(range(10)), 4, seed=0)))"
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import torch

from harness.suites import Suite
from harness.types import Item

T = TypeVar("T")
_MARK = "\x00forgetbench-response\x00"


@dataclass(frozen=True)
class Example:
    """One training sequence: prompt ids (no loss) + response ids (loss), with a per-sequence weight."""

    prompt_ids: tuple[int, ...]
    response_ids: tuple[int, ...]
    weight: float = 1.0  # RL: the advantage; SFT: 1

    def __len__(self) -> int:
        return len(self.prompt_ids) + len(self.response_ids)


class ChatFormat:
    """Renders prompts through an engine and tokenizes responses the way generation produces them."""

    def __init__(self, render: Callable[[list[dict[str, str]]], str], tokenizer: Any) -> None:
        self.render = render
        self.tokenizer = tokenizer
        self.end_id = end_of_turn_id(tokenizer)

    def encode_prompt(self, messages: list[dict[str, str]]) -> tuple[str, tuple[int, ...]]:
        text = self.render(messages)
        # The rendered template already holds any BOS; adding special tokens again would double it (as in eval).
        return text, tuple(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def example(self, prompt_ids: Sequence[int], response: str, finished: bool, weight: float = 1.0) -> Example:
        ids = self.tokenizer(response, add_special_tokens=False)["input_ids"] if response else []
        # Tokenised apart from the prompt, as generation appends tokens after it (no merge across the boundary).
        return Example(tuple(prompt_ids), tuple(ids) + ((self.end_id,) if finished else ()), weight)


def end_of_turn_id(tokenizer: Any) -> int:
    """The token that closes an assistant turn in this chat template (ChatML <|im_end|>, Llama-3 <|eot_id|>).

    Found by rendering a turn and reading the first token after the response; falls back to EOS."""
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": _MARK}]
    try:
        text = tokenizer.apply_chat_template(msgs, tokenize=False)
    except Exception:  # a template that cannot render an assistant turn: EOS is the best guess
        return tokenizer.eos_token_id
    tail = text.split(_MARK, 1)[1] if _MARK in text else ""
    ids = tokenizer(tail, add_special_tokens=False)["input_ids"] if tail else []
    special = set(tokenizer.all_special_ids)
    return ids[0] if ids and ids[0] in special else tokenizer.eos_token_id


def expert_examples(
    suite: Suite, items: Sequence[Item], fmt: ChatFormat, max_len: int
) -> tuple[list[Example], list[dict[str, Any]]]:
    """SFT data: the suite's expert response per item (Countdown: the solver's; others: the gold answer).

    Returns the examples and the rows for the data log; sequences over max_len are dropped (counted there)."""
    examples, rows = [], []
    for it in items:
        messages = suite.prompt(it)
        prompt, ids = fmt.encode_prompt(messages)
        response = suite.expert(it)
        ex = fmt.example(ids, response, finished=True)
        kept = len(ex) <= max_len
        if kept:
            examples.append(ex)
        rows.append({"item_id": it.id, "prompt": prompt, "completion": response, "kept": kept})
    return examples, rows


def chat_examples(chats: Sequence[Any], fmt: ChatFormat, max_len: int) -> tuple[list[Example], list[dict[str, Any]]]:
    """SFT data from chat examples (harness/chatdata.Chat: prompt turns + the response), as expert_examples."""
    examples, rows = [], []
    for c in chats:
        prompt, ids = fmt.encode_prompt(c.messages)
        ex = fmt.example(ids, c.response, finished=True)
        kept = len(ex) <= max_len
        if kept:
            examples.append(ex)
        rows.append({"item_id": c.where, "prompt": prompt, "completion": c.response, "kept": kept})
    return examples, rows


def collate(examples: Sequence[Example], pad_id: int, device: torch.device | str = "cpu") -> dict[str, torch.Tensor]:
    """Left-padded rows, so every response ends at the right edge and only the last `window` positions need
    logits (the 49k-vocabulary head on prompt positions is most of the waste on CPU).

    targets [B, window] are the last `window` tokens of each row; loss_mask marks the response tokens among
    them (a shorter response leaves prompt tokens in its window, masked out)."""
    width = max(len(e) for e in examples)
    window = max(1, max(len(e.response_ids) for e in examples))
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(examples), width), dtype=torch.long)
    loss_mask = torch.zeros((len(examples), window), dtype=torch.float32)
    for b, e in enumerate(examples):
        row = list(e.prompt_ids) + list(e.response_ids)
        ids[b, width - len(row) :] = torch.tensor(row)
        attn[b, width - len(row) :] = 1
        if e.response_ids:
            loss_mask[b, window - len(e.response_ids) :] = 1.0
    out = {
        "input_ids": ids,
        "attention_mask": attn,
        "position_ids": (attn.cumsum(dim=1) - 1).clamp(min=0),  # positions count real tokens only
        "targets": ids[:, width - window :],
        "loss_mask": loss_mask,
        "weights": torch.tensor([e.weight for e in examples], dtype=torch.float32),
    }
    return {k: v.to(device) for k, v in out.items()}


def batches(data: Sequence[T], batch_size: int, seed: int) -> Iterator[list[T]]:
    """One epoch of shuffled full batches (the paper's DataLoader drops the last partial batch too).

    A data set smaller than one batch still yields one (smaller) batch, so tiny runs train at all."""
    order = list(range(len(data)))
    random.Random(seed).shuffle(order)
    n_full = len(order) // batch_size
    if n_full == 0 and order:
        yield [data[i] for i in order]
        return
    for k in range(n_full):
        yield [data[i] for i in order[k * batch_size : (k + 1) * batch_size]]


def take_batches(data: Sequence[T], batch_size: int, n: int, seed: int) -> Iterator[list[T]]:
    """n batches: epochs of `batches`, reshuffled each time round (iter-sft's resample_every may exceed one)."""
    rep = 0
    while n > 0 and data:
        for batch in batches(data, batch_size, seed=seed * 7919 + rep):
            yield batch
            n -= 1
            if n == 0:
                return
        rep += 1


def micro_batches(examples: Sequence[Example], size: int) -> Iterator[list[Example]]:
    """Length-sorted chunks: similar lengths share a forward pass, so less compute goes to padding."""
    ordered = sorted(examples, key=len, reverse=True)
    for k in range(0, len(ordered), size):
        yield ordered[k : k + size]
