"""Continuous batching for the hf engine: a greedy/sampling decode loop that never decodes padding.

Static batching (`model.generate` on a padded batch) keeps computing every row until the longest one of
its batch ends. Here each of `slots` rows of a preallocated KV buffer holds one request: its prompt's
keys/values from position 0, then one more per generated token. A row that finishes (EOS, stop string,
max_new_tokens) leaves at once; the remaining rows are kept contiguous in slots 0..n-1 and the next prompts
are prefilled into the free slots, so every decode step computes only rows that still generate. Each row
attends to its own positions through a 4D boolean mask; positions come from the row's own length, as in
`generate` with left padding, so greedy outputs are the same tokens.

Sampling draws from one torch.Generator per request, seeded by (seed, index of the prompt in the call):
a request's sample does not depend on which other requests share its decode steps.

    python -m pytest tests/test_hf_engine.py -q
"""

from __future__ import annotations

import inspect
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import torch

# Architectures whose attention layers call cache.update(k, v, layer_idx) on full-attention layers only
# and accept a prepared 4D mask: the slot cache below serves them. Others use static batching.
SUPPORTED = {"llama", "qwen2", "qwen3", "mistral", "olmo", "olmo2", "granite", "phi3", "smollm3"}
PREFILL_TOKENS = 16384  # most prompt tokens prefilled in one forward pass (bounds activation memory)
# A prompt joins a prefill group only if it is at least this fraction of the group's longest: left padding
# is computed like real tokens, and on the bench's short workload (prompts of 42-120 tokens) one padded group
# spent 41% of its prefill on padding. Prefill was the larger part of the run there.
PREFILL_FILL = 0.8


def supports(model: torch.nn.Module) -> str | None:
    """None when the continuous loop can serve `model`, else why not (the engine then batches statically)."""
    cfg = model.config
    if cfg.model_type not in SUPPORTED:
        return f"model type {cfg.model_type!r}"
    if any(t != "full_attention" for t in getattr(cfg, "layer_types", None) or ()):
        return "sliding-window layers"
    if getattr(cfg, "use_sliding_window", False) or (
        cfg.model_type == "mistral" and getattr(cfg, "sliding_window", None)
    ):
        return "sliding-window attention"
    if getattr(cfg, "_attn_implementation", "sdpa") != "sdpa":
        return f"attention {cfg._attn_implementation!r} (needs sdpa)"
    gen = getattr(model, "generation_config", None)
    for name, neutral in (("repetition_penalty", 1.0), ("no_repetition_ngram_size", 0), ("no_repeat_ngram_size", 0)):
        if gen is not None and getattr(gen, name, neutral) not in (None, neutral):
            return f"generation_config.{name}"
    for name in ("suppress_tokens", "begin_suppress_tokens", "bad_words_ids", "forced_bos_token_id"):
        if gen is not None and getattr(gen, name, None):
            return f"generation_config.{name}"
    return None


class SlotCache:
    """The KV store the model's attention layers write to: one buffer per layer, [slots, heads, capacity, dim].

    Row s holds positions 0..lengths[s]-1. In prefill mode a layer's keys for a left-padded group are copied
    into their slots and returned as they are (the group attends within itself); in decode mode the one new
    position of every active row is written at its length and the active rows' buffers are returned.
    """

    def __init__(self, slots: int, capacity: int) -> None:
        self.slots, self.capacity = slots, capacity
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.lengths = [0] * slots
        self._prefill: tuple[list[int], list[int], list[int]] | None = None  # slot ids, pads, lengths
        self._decode: tuple[torch.Tensor, torch.Tensor, int] | None = None  # rows, write positions, kv width

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: object, **kwargs: object):
        if layer_idx == len(self.keys):  # first call of this layer: allocate (zeros: masked slots stay finite)
            shape = (self.slots, key.shape[1], self.capacity, key.shape[3])
            self.keys.append(torch.zeros(shape, dtype=key.dtype, device=key.device))
            self.values.append(torch.zeros(shape, dtype=value.dtype, device=value.device))
        kb, vb = self.keys[layer_idx], self.values[layer_idx]
        if self._prefill is not None:
            for j, (s, pad, n) in enumerate(zip(*self._prefill, strict=True)):
                kb[s, :, :n] = key[j, :, pad:]
                vb[s, :, :n] = value[j, :, pad:]
            return key, value
        rows, pos, width = self._decode
        kb[rows, :, pos] = key[:, :, 0]
        vb[rows, :, pos] = value[:, :, 0]
        n = rows.shape[0]
        return kb[:n, :, :width], vb[:n, :, :width]

    def get_seq_length(self, layer_idx: int = 0) -> int:  # older transformers ask before every forward
        return 0

    def move(self, src: int, dst: int) -> None:
        n = self.lengths[src]
        for kb, vb in zip(self.keys, self.values, strict=True):
            kb[dst, :, :n] = kb[src, :, :n]
            vb[dst, :, :n] = vb[src, :, :n]
        self.lengths[dst] = n


@dataclass
class _Row:
    index: int  # the request's position in the call
    tokens: list[int] = field(default_factory=list)
    generator: torch.Generator | None = None


class ContinuousDecoder:
    """Generate for many token-id prompts with `slots` rows in flight; yields (index, tokens) as rows finish.

    `is_stopped(tokens)` says whether a row's generated tokens end it (stop strings; EOS and max_new_tokens
    are handled here). Yielded tokens are exactly what `generate` would have produced for that row, without
    the padding that follows a finished row.
    """

    def __init__(self, model: torch.nn.Module, pad_id: int, slots: int) -> None:
        self.model, self.pad_id, self.slots = model, pad_id, slots
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT-wrapped policy
        params = inspect.signature(base.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x
        self.keep_arg = "logits_to_keep" if "logits_to_keep" in params else None
        self.device = next(model.parameters()).device

    def run(
        self,
        prompts: Sequence[list[int]],
        max_new_tokens: int,
        eos: set[int],
        pick: Callable[[torch.Tensor, list[_Row]], list[int]],
        is_stopped: Callable[[list[int]], bool] | None = None,
        seed: int | None = None,
    ) -> Iterator[tuple[int, list[int]]]:
        if not prompts:
            return
        order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))  # long first: they set the width
        queue = deque(order)
        slots = min(self.slots, len(prompts))
        cache = SlotCache(slots, max(len(p) for p in prompts) + max_new_tokens)
        rows: list[_Row] = []
        while queue or rows:
            if queue and len(rows) < slots:
                new = self._take(queue, prompts, slots - len(rows))
                group = [_Row(i, generator=_generator(seed, i, self.device)) for i in new]
                logits = self._prefill(cache, [prompts[i] for i in new], list(range(len(rows), len(rows) + len(new))))
                rows += group
            else:
                group = rows
                logits = self._decode(cache, rows)
            for row, tok in zip(group, pick(logits, group), strict=True):
                row.tokens.append(tok)
            first = len(rows) - len(group)  # the rows that just got a token: all, or the new group at the end
            done = [
                s
                for s in range(first, len(rows))
                if (t := rows[s].tokens)[-1] in eos or len(t) >= max_new_tokens or (is_stopped and is_stopped(t))
            ]
            for s in done:
                yield rows[s].index, rows[s].tokens
            rows = self._retire(cache, rows, set(done))

    def _take(self, queue: deque, prompts: Sequence[list[int]], free: int) -> list[int]:
        new = [queue.popleft()]
        width = len(prompts[new[0]])  # the queue is longest first: new[0] sets the group's width
        while (
            queue
            and len(new) < free
            and (len(new) + 1) * width <= PREFILL_TOKENS
            and len(prompts[queue[0]]) >= PREFILL_FILL * width
        ):
            new.append(queue.popleft())
        return new

    def _prefill(self, cache: SlotCache, prompts: list[list[int]], slot_ids: list[int]) -> torch.Tensor:
        """Left-padded forward pass of new prompts; their keys/values land in `slot_ids`. Next-token logits."""
        width = max(len(p) for p in prompts)
        pads = [width - len(p) for p in prompts]
        ids = torch.tensor([[self.pad_id] * pad + p for pad, p in zip(pads, prompts, strict=True)], device=self.device)
        k = torch.arange(width, device=self.device)
        pad_t = torch.tensor(pads, device=self.device)[:, None]
        valid = k[None, :] >= pad_t  # [g, width]: real tokens
        causal = k[:, None] >= k[None, :]
        # Padding queries attend to themselves only, so their (unused) outputs stay finite.
        mask = (causal[None] & valid[:, None, :]) | torch.eye(width, dtype=torch.bool, device=self.device)[None]
        positions = (k[None, :] - pad_t).clamp(min=0)
        cache._prefill = (slot_ids, pads, [len(p) for p in prompts])
        try:
            logits = self._forward(ids, mask[:, None], positions, cache, keep_last=True)
        finally:
            cache._prefill = None
        for s, p in zip(slot_ids, prompts, strict=True):
            cache.lengths[s] = len(p)
        return logits

    def _decode(self, cache: SlotCache, rows: list[_Row]) -> torch.Tensor:
        """One step for every active row: its last token at position = its length."""
        n = len(rows)
        lengths = cache.lengths[:n]
        width = max(lengths) + 1
        pos = torch.tensor(lengths, device=self.device)
        ids = torch.tensor([r.tokens[-1] for r in rows], device=self.device)[:, None]
        mask = torch.arange(width, device=self.device)[None, :] <= pos[:, None]
        cache._decode = (torch.arange(n, device=self.device), pos, width)
        try:
            logits = self._forward(ids, mask[:, None, None, :], pos[:, None], cache, keep_last=False)
        finally:
            cache._decode = None
        for s in range(n):
            cache.lengths[s] += 1
        return logits

    def _forward(self, ids, mask, positions, cache: SlotCache, keep_last: bool) -> torch.Tensor:
        kwargs = {self.cache_arg: cache, "use_cache": True}
        if keep_last and self.keep_arg:
            kwargs[self.keep_arg] = 1  # the lm_head only where the next token is read
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)
        return out.logits[:, -1, :]

    @staticmethod
    def _retire(cache: SlotCache, rows: list[_Row], done: set[int]) -> list[_Row]:
        """Drop finished rows; move rows from the tail into the holes so slots 0..n-1 stay the active ones."""
        if not done:
            return rows
        keep = [s for s in range(len(rows)) if s not in done]
        n = len(keep)
        holes = [s for s in sorted(done) if s < n]
        tail = [s for s in keep if s >= n]
        out = [rows[s] for s in range(n)]
        for hole, src in zip(holes, tail, strict=True):
            cache.move(src, hole)
            out[hole] = rows[src]
        return out


def _generator(seed: int | None, index: int, device: torch.device) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed((seed * 1_000_003 + index) % 2**63)


def greedy(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
    return logits.float().argmax(-1).tolist()


def sampler(temperature: float, top_p: float) -> Callable[[torch.Tensor, list[_Row]], list[int]]:
    """Temperature then nucleus (top-p) filtering, as transformers' warpers do; one draw per row's generator."""

    def pick(logits: torch.Tensor, rows: list[_Row]) -> list[int]:
        scores = logits.float() / temperature
        if top_p < 1.0:
            sorted_scores, idx = torch.sort(scores, descending=False)
            drop = sorted_scores.softmax(-1).cumsum(-1) <= 1 - top_p
            drop[:, -1] = False  # keep at least the most likely token
            scores = scores.masked_fill(drop.scatter(1, idx, drop), float("-inf"))
        probs = scores.softmax(-1)
        return [int(torch.multinomial(probs[j], 1, generator=r.generator)) for j, r in enumerate(rows)]

    return pick
