"""Shared prompt prefixes: the token prefixes that many prompts of one call have in common, computed once.

Chat prompts share the template's system block, a suite's prompts share its instruction, and a GRPO
step's samples share their whole prompt. On the bench's short workload 42% of the prompt tokens are a
prefix some other prompt also has. The hf decoder computes a chosen prefix's keys/values once and prefills
only the rest of each prompt (harness.engines.hf_decode).

The candidates are the nodes of the prompts' token trie where prompts part ways: a group's longest common
prefix, then its subgroups split on the token that follows it. A node is kept when the prompts under it
save at least `min_saved` prefill tokens over the kept node above it, (sharers - 1) x (extra length): a
prefix costs one extra forward pass, so a few tokens shared by two prompts are not worth one.

    python -m pytest tests/test_prefix.py -q
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

MIN_SAVED = 64  # prefill tokens a kept prefix must save (a forward pass costs about this much in overhead)


@dataclass
class Prefix:
    """A kept node: the first `length` tokens of prompt `owner`, extending the kept node `parent`."""

    length: int
    owner: int
    parent: int | None
    users: int = 0  # prompts that use this node or a kept node below it


def plan(prompts: Sequence[Sequence[int]], min_saved: int = MIN_SAVED) -> tuple[list[Prefix], list[int | None]]:
    """(kept prefixes parent-first, the deepest kept prefix of each prompt or None).

    A prefix may be as long as a whole prompt (duplicates); the user keeps its last token to prefill,
    because that token's logits give the first generated token.
    """
    nodes: list[Prefix] = []
    use: list[int | None] = [None] * len(prompts)

    def common(group: list[int]) -> int:
        # The lexicographic extremes' common prefix is the group's.
        first, last = min(prompts[i] for i in group), max(prompts[i] for i in group)
        n = 0
        for a, b in zip(first, last, strict=False):
            if a != b:
                break
            n += 1
        return n

    # An explicit stack, not recursion: a call with thousands of near-identical prompts nests deeply.
    stack: list[tuple[list[int], int | None, int]] = [(list(range(len(prompts))), None, 0)]
    while stack:
        group, kept, kept_len = stack.pop()
        if len(group) <= 1:
            for i in group:
                use[i] = kept
            continue
        length = common(group)
        if length > kept_len and (len(group) - 1) * (length - kept_len) >= min_saved:
            nodes.append(Prefix(length, group[0], kept))
            kept, kept_len = len(nodes) - 1, length
        parts: dict[int, list[int]] = {}
        for i in group:
            if len(prompts[i]) == length:  # the whole prompt is the common prefix
                use[i] = kept
            else:
                parts.setdefault(prompts[i][length], []).append(i)
        stack += [(part, kept, kept_len) for part in parts.values()]
    for node in use:
        while node is not None:
            nodes[node].users += 1
            node = nodes[node].parent
    return nodes, use
