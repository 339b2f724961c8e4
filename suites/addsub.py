"""addsub: one-step integer addition or subtraction, answered with the number only (the demo's target task).

Why it exists: the embedded 135M model scores 0 on Countdown (also on 3 small numbers) and on the multi-step
`arithmetic` suite, so neither can be learned from its own samples; on this task its greedy pass@1 is about 21%
and about a third of 8-sample groups at temperature 0.7 have unequal rewards (pilot in the README's "What the
demo shows"), so GRPO gets a learning signal, and the answer is about 10 tokens, so rollouts are cheap.
Source: generated here, seeded. a in 2-60, b in 2-40, + or - (a - b never negative). Splits: eval = 1,000
distinct problems (seed 21), train = 10,000 rows (seed 22) over the other 2,861 of the 3,861 possible problems
(train rows repeat problems; no eval problem is ever in train). `addsub:dev` evaluates on 200 dev problems
instead: train problems that never occur in the first 2,000 train rows, so a run with --train-limit <= 2,000
never trained on them (for choosing hyper-parameters without touching the eval items).
Licence: ours. Scoring: the number in the last \\boxed{} (else the last number in the output) equals the
answer exactly. The expert (SFT) response is the equation with its result (`39 + 36 = 75`), the form the base
writes itself; the study's far-off-policy arm trains on the bare number instead (scripts/paper_demo.sh).

    forgetbench eval embedded:smollm2-135m-instruct --suites addsub --limit 8
"""

from __future__ import annotations

import random
from functools import cache

from harness.scoring import last_number, numbers_equal
from harness.suites import Option, Suite, SuiteError
from harness.types import Decoding, Item

PROMPT = "Calculate {a} {op} {b}. Reply with the number only."
SIZES = {"eval": (1000, 21), "train": (10000, 22)}
DEV_AFTER, DEV_SIZE = 2000, 200  # dev problems: in train, never in its first DEV_AFTER rows


def _problem(rng: random.Random) -> tuple[int, str, int]:
    op = rng.choice("+-")
    a, b = rng.randint(2, 60), rng.randint(2, 40)
    if op == "-" and b > a:
        a, b = b, a
    return a, op, b


@cache
def _generate(split: str) -> tuple[Item, ...]:
    count, seed = SIZES[split]
    rng = random.Random(seed)
    held_out = {(it.data["a"], it.data["op"], it.data["b"]) for it in _generate("eval")} if split == "train" else set()
    seen: set[tuple[int, str, int]] = set()
    items = []
    while len(items) < count:
        a, op, b = _problem(rng)
        key = (a, op, b)
        if key in held_out or (split == "eval" and key in seen):
            continue
        seen.add(key)
        answer = a + b if op == "+" else a - b
        items.append(Item(f"as-{split}-{len(items):05d}", {"a": a, "op": op, "b": b, "answer": answer}))
    return tuple(items)


@cache
def _dev() -> tuple[Item, ...]:
    """The first DEV_SIZE distinct train problems after row DEV_AFTER that no earlier row holds."""
    rows = _generate("train")
    key = lambda it: (it.data["a"], it.data["op"], it.data["b"])  # noqa: E731
    early = {key(it) for it in rows[:DEV_AFTER]}
    out: list[Item] = []
    for it in rows[DEV_AFTER:]:
        if key(it) not in early:
            early.add(key(it))
            out.append(Item(f"as-dev-{len(out):05d}", it.data))
            if len(out) == DEV_SIZE:
                break
    return tuple(out)


class AddSub(Suite):
    name = "addsub"
    version = "1"
    area = "math"
    description = "One-step integer + or - (2-60, 2-40), number-only answer; the demo's learnable target"
    decoding = Decoding(max_new_tokens=32)
    options = (Option("dev", "data", f"{DEV_SIZE} train problems absent from the first {DEV_AFTER:,} train rows"),)

    def load(self, split: str = "eval") -> list[Item]:
        if split not in SIZES:
            raise SuiteError(f"suite addsub has splits eval (1,000) and train (10,000), not {split!r}")
        if split == "eval" and "dev" in self.chosen:
            return list(_dev())
        return list(_generate(split))

    def prompt(self, item: Item) -> list[dict[str, str]]:
        d = item.data
        return [{"role": "user", "content": PROMPT.format(a=d["a"], op=d["op"], b=d["b"])}]

    parses = True

    def score(self, item: Item, completion: str) -> float:
        return float(numbers_equal(last_number(completion), item.data["answer"]))

    def parse(self, item: Item, completion: str) -> str | None:
        return last_number(completion)

    def reference(self, item: Item) -> str:
        return str(item.data["answer"])

    def expert(self, item: Item) -> str:
        """The SFT target: the equation with its exact result, as a careful solver writes it."""
        d = item.data
        return f"{d['a']} {d['op']} {d['b']} = {d['answer']}"

    def wrong(self, item: Item) -> str:
        return str(item.data["answer"] + 1)


SUITE = AddSub()
