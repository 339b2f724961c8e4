"""Write fake checkpoints (scripted answers) from the suites' own prompts, for pipeline tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

from harness.suites import get_suite, load_items


def write_fake(
    path: Path,
    accuracy: dict[str, float],
    limit: int,
    seed: int = 0,
    latency_s: float = 0.0,
    extra: dict[str, str] | None = None,
) -> Path:
    """A fake model that answers each suite's first `limit` items correctly with the given probability."""
    rng = random.Random(seed)
    responses = {}
    for name, acc in accuracy.items():
        s = get_suite(name)
        for it in load_items(s, limit):
            responses[s.prompt(it)[-1]["content"]] = s.reference(it) if rng.random() < acc else s.wrong(it)
    responses.update(extra or {})
    path.write_text(json.dumps({"responses": responses, "latency_s": latency_s}))
    return path
