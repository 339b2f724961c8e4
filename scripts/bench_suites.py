"""The suite lists bench.py and bench_track.py share (a module of its own, so neither imports the other)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHORT_SUITES = ("countdown", "arithmetic", "capitals", "elements")
MIXED_SUITES = (
    "countdown",
    "ifeval",
    "mmlu",
    "gsm8k",
    "arithmetic",
    "capitals",
    "elements",
    "harmbench",
    "overrefusal",
)
DEMO_SUITES = "countdown,ifeval,mmlu,gsm8k,arithmetic,capitals,elements,arc_challenge,harmbench,overrefusal"
