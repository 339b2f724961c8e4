"""arithmetic: generated multi-step integer arithmetic with a numeric answer (non-target math probe).

Source: generated here, seeded (seed 11), 500 eval items; train split seed 12, 5,000 items.
Each problem chains 2-4 operations on integers 2-99 in words or symbols; answers are integers.
Licence: ours. Scoring: the number in the last \\boxed{} (else the last number in the output) equals
the answer exactly (commas ignored).

    forgetbench eval embedded:smollm2-135m-instruct --suites arithmetic --limit 8
"""

from __future__ import annotations

import random
from functools import cache

from harness.scoring import last_number, numbers_equal
from harness.suites import Suite
from harness.types import Decoding, Item

SIZES = {"eval": (500, 11), "train": (5000, 12)}
WORDS = {"+": "add", "-": "subtract", "*": "multiply by"}


@cache
def _generate(split: str) -> tuple[Item, ...]:
    count, seed = SIZES[split]
    rng = random.Random(seed)
    items = []
    while len(items) < count:
        value = rng.randint(2, 99)
        steps = [f"Start with {value}."]
        for _ in range(rng.randint(2, 4)):
            op = rng.choice("+-*" if abs(value) < 1000 else "+-")
            n = rng.randint(2, 12) if op == "*" else rng.randint(2, 99)
            value = value + n if op == "+" else value - n if op == "-" else value * n
            steps.append(f"Then {WORDS[op]} {n}.")
        question = " ".join(steps) + " What number do you get?"
        items.append(Item(f"ar-{split}-{len(items):05d}", {"question": question, "answer": value}))
    return tuple(items)


class Arithmetic(Suite):
    name = "arithmetic"
    version = "1"
    area = "math"
    description = "Multi-step integer arithmetic in words; exact numeric answer"
    decoding = Decoding(max_new_tokens=256)

    def load(self, split: str = "eval") -> list[Item]:
        return list(_generate(split))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        q = item.data["question"]
        return [
            {
                "role": "user",
                "content": f"{q}\nWork it out step by step and put the final number in \\boxed{{}}.",
            }
        ]

    parses = True

    def score(self, item: Item, completion: str) -> float:
        return float(numbers_equal(last_number(completion), item.data["answer"]))

    def parse(self, item: Item, completion: str) -> str | None:
        return last_number(completion)

    def reference(self, item: Item) -> str:
        return f"The result is \\boxed{{{item.data['answer']}}}."

    def wrong(self, item: Item) -> str:
        return f"The result is \\boxed{{{item.data['answer'] + 1}}}."


SUITE = Arithmetic()
