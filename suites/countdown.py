"""countdown: reach a target from 3-4 numbers with + - * / (the paper's target task).

Source: generated here (no package ships Countdown-Tasks-3to4), seeded; every puzzle is built from a
random expression over its numbers, so it is solvable by construction, and `solve` re-checks it.
Splits: eval = 1,000 puzzles (seed 1), train = 10,000 (seed 2), disjoint by (numbers, target).
Licence: ours (Apache-2.0). Scoring, option `paper` (default; the paper's checker, section 1.4): the last
\\boxed{} must be a Python-syntax expression using every number exactly once, only binary + - * / with
exact division, equal to the target (0-99); LaTeX operators are a syntax error, so
`\\boxed{(5 \\times 3) + 2}` scores 0. Option `lenient` (`--suites countdown:lenient`; not the paper's
rule) first rewrites \\times and \\cdot as * and \\div as /, so that completion scores 1. The option is
part of the scorer version only: switching rescores stored completions.

    forgetbench eval embedded:smollm2-135m-instruct --suites countdown --limit 8
"""

from __future__ import annotations

import itertools
import random
from fractions import Fraction
from functools import cache
from pathlib import Path

from harness.data import generated
from harness.scoring import MAX_SCAN, countdown_correct, countdown_value, last_boxed
from harness.suites import Option, Suite
from harness.types import Decoding, Item

PROMPT = (
    "Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic "
    "operations (+, -, *, /) and each number must be used exactly once. Think step by step, then give the "
    "final equation (without '= {target}') inside \\boxed{{}}, for example \\boxed{{(1 + 2) * 3}}."
)
SIZES = {"eval": (1000, 1), "train": (10000, 2)}


def _random_expr(nums: list[int], rng: random.Random) -> tuple[str, Fraction] | None:
    """Combine the numbers in random order with random operators; None if a division is inexact."""
    items = [(str(n), Fraction(n)) for n in nums]
    while len(items) > 1:
        a, b = items.pop(rng.randrange(len(items))), items.pop(rng.randrange(len(items)))
        op = rng.choice("+-*/")
        if op == "/":
            if b[1] == 0 or (a[1] / b[1]).denominator != 1:
                return None
            val = a[1] / b[1]
        else:
            val = {"+": a[1] + b[1], "-": a[1] - b[1], "*": a[1] * b[1]}[op]
        items.append((f"({a[0]} {op} {b[0]})", val))
    expr, val = items[0]
    return expr[1:-1] if expr.startswith("(") else expr, val


def solve(numbers: list[int], target: int) -> str | None:
    """Exhaustive search for an expression (used to confirm solvability and, later, as the SFT expert)."""

    def search(items: list[tuple[str, Fraction]]) -> str | None:
        if len(items) == 1:
            return items[0][0] if items[0][1] == target else None
        for i, j in itertools.permutations(range(len(items)), 2):
            (ea, va), (eb, vb) = items[i], items[j]
            rest = [items[k] for k in range(len(items)) if k not in (i, j)]
            cands = [(f"({ea} + {eb})", va + vb), (f"({ea} - {eb})", va - vb), (f"({ea} * {eb})", va * vb)]
            if vb != 0 and (va / vb).denominator == 1:
                cands.append((f"({ea} / {eb})", va / vb))
            for c in cands:
                found = search(rest + [c])
                if found:
                    return found
        return None

    found = search([(str(n), Fraction(n)) for n in numbers])
    return found[1:-1] if found and found.startswith("(") else found


@cache
def _generate(split: str) -> tuple[Item, ...]:
    count, seed = SIZES[split]
    rng = random.Random(seed)
    other = {(tuple(it.data["numbers"]), it.data["target"]) for it in _generate("eval")} if split == "train" else set()
    seen: set[tuple[tuple[int, ...], int]] = set()
    items = []
    while len(items) < count:
        nums = [rng.randint(1, 99) for _ in range(rng.choice((3, 4)))]
        made = _random_expr(nums, rng)
        if made is None or made[1].denominator != 1 or not 1 <= made[1] <= 99:
            continue
        key = (tuple(nums), int(made[1]))
        if key in seen or key in other:
            continue
        seen.add(key)
        items.append(
            Item(f"cd-{split}-{len(items):05d}", {"numbers": nums, "target": int(made[1]), "solution": made[0]})
        )
    return tuple(items)


class Countdown(Suite):
    name = "countdown"
    version = "1"
    scorer = "2"  # 2: the paper's checker by default (1 rewrote LaTeX operators, now the `lenient` option)
    options = (
        Option("paper", "scorer", "the paper's checker: Python operators only (default)", "mode", default=True),
        Option("lenient", "scorer", "also accept \\times, \\cdot, \\div (not the paper's rule)", "mode"),
    )
    area = "reasoning"
    description = "Reach the target with each of 3-4 numbers once, + - * / (exact); answer in \\boxed{}"
    decoding = Decoding(max_new_tokens=512)

    def load(self, split: str = "eval") -> list[Item]:
        return list(generated(f"countdown-{split}", Path(__file__), "", lambda: _generate(split)))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        d = item.data
        return [{"role": "user", "content": PROMPT.format(numbers=d["numbers"], target=d["target"])}]

    parses = True

    def score(self, item: Item, completion: str) -> float:
        d = item.data
        return float(countdown_correct(completion, d["numbers"], d["target"], self.pick("mode") == "lenient"))

    def parse(self, item: Item, completion: str) -> str | None:
        """The last \\boxed{} the checker reads; without one, the whole output only when it is itself a valid
        expression over the numbers (the checker's fallback), else None: no answer found."""
        boxed = last_boxed(completion)
        if boxed is not None:
            return boxed
        text = completion[-MAX_SCAN:]
        lenient = self.pick("mode") == "lenient"
        return text.strip() if countdown_value(text, item.data["numbers"], lenient) is not None else None

    def reference(self, item: Item) -> str:
        expr = item.data["solution"]
        assert countdown_value(expr, item.data["numbers"]) == item.data["target"]
        return f"Combining the numbers: {expr} = {item.data['target']}.\n\\boxed{{{expr}}}"

    def expert(self, item: Item) -> str:
        """The solver's solution (exhaustive search), written as a short derivation then the boxed answer."""
        d = item.data
        expr = solve(d["numbers"], d["target"]) or d["solution"]
        return f"Using each of {d['numbers']} once: {expr} = {d['target']}.\n\\boxed{{{expr}}}"

    def wrong(self, item: Item) -> str:
        n = item.data["numbers"]
        return f"\\boxed{{{' + '.join(map(str, n))} + 1000}}"


SUITE = Countdown()
