"""Which prompt prefixes the hf decoder computes once (harness.engines.prefix.plan)."""

from __future__ import annotations

from harness.engines.prefix import plan


def _prefix_of(prompts, nodes, use, i):
    return None if use[i] is None else list(prompts[nodes[use[i]].owner][: nodes[use[i]].length])


def test_common_instruction_and_deeper_stems() -> None:
    system = list(range(100, 130))  # 30 tokens every prompt has
    a = system + [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
    prompts = [a + [50], a + [51], a + [52], system + [7, 7], system + [8]]
    nodes, use = plan(prompts, min_saved=8)
    assert [n.length for n in nodes] == [30, 40]
    assert nodes[1].parent == 0 and nodes[0].parent is None
    assert [n.users for n in nodes] == [5, 3]
    for i in range(3):
        assert _prefix_of(prompts, nodes, use, i) == a
    assert _prefix_of(prompts, nodes, use, 3) == system == _prefix_of(prompts, nodes, use, 4)


def test_small_savings_are_not_kept() -> None:
    prompts = [[1, 2, 3, 9], [1, 2, 3, 8], [5, 6]]
    nodes, use = plan(prompts, min_saved=7)  # 3 shared tokens x 1 other prompt = 3 < 7
    assert nodes == [] and use == [None, None, None]
    nodes, use = plan(prompts, min_saved=3)
    assert [n.length for n in nodes] == [3] and use == [0, 0, None]


def test_duplicates_and_a_prompt_that_is_all_prefix() -> None:
    p = list(range(20))
    prompts = [p, p, p, p[:10], p + [99]]
    nodes, use = plan(prompts, min_saved=1)
    lengths = {n.length for n in nodes}
    assert lengths == {10, 20}  # the short prompt's whole length, then the duplicates' whole prompt
    assert all(_prefix_of(prompts, nodes, use, i) == p for i in (0, 1, 2, 4))
    assert _prefix_of(prompts, nodes, use, 3) == p[:10]


def test_no_prompts_and_nothing_shared() -> None:
    assert plan([]) == ([], [])
    assert plan([[1], [2], [3]], min_saved=1) == ([], [None, None, None])


def test_deep_near_identical_prompts_do_not_recurse() -> None:
    base = list(range(3000))
    prompts = [base[:n] for n in range(1, 3000, 3)]  # each a prefix of the next: a chain 1000 deep
    nodes, use = plan(prompts, min_saved=1)
    assert len(nodes) >= 900 and all(u is not None for u in use[1:])
