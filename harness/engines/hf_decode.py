"""Continuous batching for the hf engine: a greedy/sampling decode loop that never decodes padding.

Static batching (`model.generate` on a padded batch) keeps computing every row until the longest one of
its batch ends. Here each of `slots` rows of a preallocated KV buffer holds one request: its prompt's
keys/values from position 0, then one more per generated token. A row that finishes (EOS, stop string,
max_new_tokens) leaves at once; the remaining rows are kept contiguous in slots 0..n-1 and the next prompts
are prefilled into the free slots, so every decode step computes only rows that still generate. Each row
attends to its own positions through a 4D boolean mask; positions come from the row's own length, as in
`generate` with left padding, so greedy outputs are the same tokens.

Prompts that share a prefix (the chat template's system block, a suite's instruction, a GRPO group's
repeated prompt; see harness.engines.prefix) have its keys/values computed once, in a forward pass of the
prefix alone; each row's slot gets a copy and only the rest of the prompt is prefilled.

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

from harness.engines import prefix as prefixes

# Architectures whose attention layers call cache.update(k, v, layer_idx) on full-attention layers only
# and accept a prepared 4D mask: the slot cache below serves them. Others use static batching.
SUPPORTED = {"llama", "qwen2", "qwen3", "mistral", "olmo", "olmo2", "granite", "phi3", "smollm3"}
PREFILL_TOKENS = 16384  # most prompt tokens prefilled in one forward pass (bounds activation memory)
PREFIX_BYTES = 1 << 30  # most bytes of shared-prefix keys/values held at once; deeper prefixes fall back
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

    Row s holds positions 0..lengths[s]-1. In prefill mode a left-padded group of prompt remainders is
    written into its (consecutive) slots after each row's shared prefix, copied in from the prefix's own
    keys/values, and the group's slots are returned; in decode mode the one new position of every active
    row is written at its length and the active rows' buffers are returned.
    """

    def __init__(self, slots: int, capacity: int) -> None:
        self.slots, self.capacity = slots, capacity
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.lengths = [0] * slots
        # slot ids, pads, lengths, prefix lengths, prefix keys/values (per layer) or None
        self._prefill: tuple[list[int], list[int], list[int], list[int], list] | None = None
        self._decode: tuple[torch.Tensor, torch.Tensor, int] | None = None  # rows, write positions, kv width

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: object, **kwargs: object):
        if layer_idx == len(self.keys):  # first call of this layer: allocate (zeros: masked slots stay finite)
            shape = (self.slots, key.shape[1], self.capacity, key.shape[3])
            self.keys.append(torch.zeros(shape, dtype=key.dtype, device=key.device))
            self.values.append(torch.zeros(shape, dtype=value.dtype, device=value.device))
        kb, vb = self.keys[layer_idx], self.values[layer_idx]
        if self._prefill is not None:
            slot_ids, pads, lengths, starts, shared = self._prefill
            for j, (s, pad, n, start, kv) in enumerate(zip(slot_ids, pads, lengths, starts, shared, strict=True)):
                if start:
                    kb[s, :, :start] = kv[layer_idx][0][0, :, :start]
                    vb[s, :, :start] = kv[layer_idx][1][0, :, :start]
                kb[s, :, start:n] = key[j, :, pad:]
                vb[s, :, start:n] = value[j, :, pad:]
            s0, width = slot_ids[0], max(lengths)
            return kb[s0 : s0 + len(slot_ids), :, :width], vb[s0 : s0 + len(slot_ids), :, :width]
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


class PrefixCache:
    """The KV store of a shared prefix's own forward pass: the kept prefix it extends, then its new tokens.

    After the pass `layers` holds, per layer, (keys, values) of shape [1, heads, length, dim].
    """

    def __init__(self, parent: list[tuple[torch.Tensor, torch.Tensor]] | None) -> None:
        self.parent = parent
        self.layers: list[tuple[torch.Tensor, torch.Tensor]] = []

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args: object, **kwargs: object):
        if self.parent is not None:
            key = torch.cat([self.parent[layer_idx][0], key], dim=2)
            value = torch.cat([self.parent[layer_idx][1], value], dim=2)
        self.layers.append((key, value))
        return key, value

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return 0

    def nbytes(self) -> int:
        return sum(k.nbytes + v.nbytes for k, v in self.layers)


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

    def __init__(
        self, model: torch.nn.Module, pad_id: int, slots: int, min_shared: int | None = prefixes.MIN_SAVED
    ) -> None:
        self.model, self.pad_id, self.slots = model, pad_id, slots
        self.min_shared = min_shared  # None: no prefix sharing
        base = model.get_base_model() if hasattr(model, "get_base_model") else model  # a PEFT-wrapped policy
        params = inspect.signature(base.forward).parameters
        self.cache_arg = "cache" if "cache" in params else "past_key_values"  # renamed in transformers 5.2x
        self.keep_arg = "logits_to_keep" if "logits_to_keep" in params else None
        self.device = next(model.parameters()).device
        self.shared_tokens = 0  # prompt tokens of the last run served from a shared prefix (tests read it)

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
        shared = _Shared(self, prompts)
        rest = [len(p) - shared.start(i) for i, p in enumerate(prompts)]
        self.shared_tokens = sum(len(p) for p in prompts) - sum(rest)
        order = sorted(range(len(prompts)), key=lambda i: -rest[i])  # long first: they set a group's width
        queue = deque(order)
        slots = min(self.slots, len(prompts))
        cache = SlotCache(slots, max(len(p) for p in prompts) + max_new_tokens)
        rows: list[_Row] = []
        while queue or rows:
            if queue and len(rows) < slots:
                new = self._take(queue, rest, slots - len(rows))
                group = [_Row(i, generator=_generator(seed, i, self.device)) for i in new]
                logits = self._prefill(cache, prompts, new, list(range(len(rows), len(rows) + len(new))), shared)
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

    def _take(self, queue: deque, rest: Sequence[int], free: int) -> list[int]:
        """The next prefill group: prompts whose remainders (after their shared prefix) are of similar length."""
        new = [queue.popleft()]
        width = rest[new[0]]  # the queue is longest first: new[0] sets the group's width
        while (
            queue
            and len(new) < free
            and (len(new) + 1) * width <= PREFILL_TOKENS
            and rest[queue[0]] >= PREFILL_FILL * width
        ):
            new.append(queue.popleft())
        return new

    def _prefill(
        self,
        cache: SlotCache,
        prompts: Sequence[list[int]],
        new: list[int],
        slot_ids: list[int],
        shared: _Shared,
        keep: int = 1,
    ) -> torch.Tensor:
        """Left-padded forward pass of new prompts' remainders after their shared prefixes; their keys/values
        land in `slot_ids`, behind a copy of the prefix's. Logits of the last `keep` columns (1: [g, vocab])."""
        starts = [shared.start(i) for i in new]
        tails = [prompts[i][s:] for i, s in zip(new, starts, strict=True)]
        width = max(len(t) for t in tails)
        pads = [width - len(t) for t in tails]
        ids = torch.tensor([[self.pad_id] * pad + t for pad, t in zip(pads, tails, strict=True)], device=self.device)
        k = torch.arange(width, device=self.device)
        pad_t = torch.tensor(pads, device=self.device)[:, None]
        real = k[None, :] >= pad_t  # [g, width]: real tokens, not left padding
        positions = torch.tensor(starts, device=self.device)[:, None] + k[None, :] - pad_t  # [g, width]
        lengths = [len(prompts[i]) for i in new]
        # Keys are the group's slots, positions 0..length-1 (prefix, then remainder): a real query sees every
        # key up to its own position; a padding query sees position 0 only, so its (unused) output stays finite.
        key_pos = torch.arange(max(lengths), device=self.device)
        mask = torch.where(real[:, :, None], key_pos[None, None, :] <= positions[:, :, None], key_pos == 0)
        cache._prefill = (slot_ids, pads, lengths, starts, [shared.kv(i) for i in new])
        try:
            logits = self._forward(ids, mask[:, None], positions.clamp(min=0), cache, keep)
        finally:
            cache._prefill = None
        for s, n in zip(slot_ids, lengths, strict=True):
            cache.lengths[s] = n
        for i in new:
            shared.release(i)
        return logits[:, -1] if keep == 1 else logits

    def score(self, rows: Sequence[list[int]], firsts: Sequence[int]) -> list[float]:
        """Summed log-probability of rows[i][firsts[i]:] given what precedes it (choice ranking).

        Rows of one question share the prompt, and a few-shot suite's rows share its examples: the shared
        prefixes are computed once, as in generation, and only the positions whose next token is scored
        go through the lm_head (not [rows, width, vocab] logits for the whole batch).
        """
        shared = _Shared(self, rows, limits=[f - 1 for f in firsts])  # position f-1's logits score token f
        rest = [len(r) - shared.start(i) for i, r in enumerate(rows)]
        queue = deque(sorted(range(len(rows)), key=lambda i: -rest[i]))
        out = [0.0] * len(rows)
        while queue:
            new = self._take(queue, rest, self.slots)
            width = max(rest[i] for i in new)
            # Column c of row i holds position start + c - pad; the first scored logits sit at position f-1.
            cols = [width - rest[i] + firsts[i] - 1 - shared.start(i) for i in new]
            keep = width - min(cols)
            cache = SlotCache(len(new), max(len(rows[i]) for i in new))
            logp = torch.log_softmax(self._prefill(cache, rows, new, list(range(len(new))), shared, keep).float(), -1)
            for j, (i, c) in enumerate(zip(new, cols, strict=True)):
                targets = torch.tensor(rows[i][firsts[i] :], device=logp.device)
                lo = c - (width - keep)
                out[i] = float(logp[j, lo : lo + len(targets)].gather(1, targets[:, None]).sum())
        return out

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
            logits = self._forward(ids, mask[:, None, None, :], pos[:, None], cache)[:, -1]
        finally:
            cache._decode = None
        for s in range(n):
            cache.lengths[s] += 1
        return logits

    def _forward(self, ids, mask, positions, cache: SlotCache, keep: int = 1) -> torch.Tensor:
        """Logits of the last `keep` positions, [rows, keep, vocab]: the lm_head only where they are read."""
        kwargs = {self.cache_arg: cache, "use_cache": True}
        if self.keep_arg:
            kwargs[self.keep_arg] = keep
        out = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs)
        return out.logits[:, -keep:, :]

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


class _Shared:
    """The call's shared prefixes (harness.engines.prefix.plan), computed up front, freed after their last user.

    A prompt uses the deepest kept prefix whose keys/values fit in PREFIX_BYTES, at most limits[i] tokens of
    it (default its length - 1: the last prompt token is prefilled, its logits give the first new token).
    """

    def __init__(
        self, decoder: ContinuousDecoder, prompts: Sequence[list[int]], limits: Sequence[int] | None = None
    ) -> None:
        self.prompts = prompts
        self.limits = list(limits) if limits is not None else [len(p) - 1 for p in prompts]
        if decoder.min_shared is None:
            self.nodes, self.use = [], [None] * len(prompts)
        else:
            self.nodes, self.use = prefixes.plan(prompts, decoder.min_shared)
        self.kvs: list[list | None] = []
        held = 0
        for node in self.nodes:
            parent = self.kvs[node.parent] if node.parent is not None else None
            if held >= PREFIX_BYTES or (node.parent is not None and parent is None):
                self.kvs.append(None)  # over budget: its users fall back to the nearest computed ancestor
                continue
            done = self.nodes[node.parent].length if node.parent is not None else 0
            cache = PrefixCache(parent)
            ids = torch.tensor([prompts[node.owner][done : node.length]], device=decoder.device)
            q = torch.arange(done, node.length, device=decoder.device)
            mask = torch.arange(node.length, device=decoder.device)[None, :] <= q[:, None]
            decoder._forward(ids, mask[None, None], q[None], cache)
            self.kvs.append(cache.layers)
            held += cache.nbytes()
        for i, node in enumerate(self.use):
            while node is not None and self.kvs[node] is None:
                node = self.nodes[node].parent
            self.use[i] = node

    def start(self, i: int) -> int:
        """Positions of prompt i served by its shared prefix."""
        node = self.use[i]
        return 0 if node is None else max(0, min(self.nodes[node].length, self.limits[i]))

    def kv(self, i: int) -> list | None:
        node = self.use[i]
        return None if node is None else self.kvs[node]

    def release(self, i: int) -> None:
        """Prompt i is prefilled: drop the prefixes no remaining prompt needs."""
        node = self.use[i]
        while node is not None:
            self.nodes[node].users -= 1
            if self.nodes[node].users == 0:
                self.kvs[node] = None
            node = self.nodes[node].parent


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
