"""The `fake` engine: scripted answers for tests and demos of the pipeline without a model.

A fake checkpoint is a JSON file `NAME.fake.json`:

    {"responses": {"<last user message>": "<completion>", ...},   # exact lookups
     "default": "I do not know.",                                  # everything else
     "latency_s": 0.0}                                              # sleep per generate call

It is a real checkpoint as far as the registry is concerned (fingerprinted by content), so caching,
resume and comparison behave exactly as with a model.

    python -c "from harness.engines.fake import FakeEngine; print(FakeEngine().version)"
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from pathlib import Path

from harness.engines import Engine, EngineError
from harness.types import Completion, Decoding

_USER = "<|user|>\n"
_ASSISTANT = "\n<|assistant|>\n"


class FakeEngine(Engine):
    name = "fake"

    def __init__(self, responder: Callable[[str], str] | None = None) -> None:
        self.responder = responder
        self.responses: dict[str, str] = {}
        self.default = "I do not know."
        self.latency_s = 0.0
        self.calls = 0  # generate calls served, for tests that count model work

    @property
    def version(self) -> str:
        return "1"

    def load(self, model_dir: Path | str) -> None:
        path = Path(model_dir)
        try:
            spec = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise EngineError(f"fake engine cannot read {path}: {e}") from e
        self.responses = dict(spec.get("responses", {}))
        self.default = spec.get("default", "I do not know.")
        self.latency_s = float(spec.get("latency_s", 0.0))

    def render(self, messages: list[dict[str, str]], system_prompt: str | None = None) -> str:
        parts = [f"<|system|>\n{system_prompt}\n"] if system_prompt else []
        parts += [f"<|{m['role']}|>\n{m['content']}\n" for m in messages]
        return "".join(parts) + _ASSISTANT.lstrip("\n")

    def _answer(self, prompt: str) -> str:
        if self.responder is not None:
            return self.responder(prompt)
        # The last user turn is the lookup key: easy to script from a suite's own prompts.
        user = prompt.rsplit("<|user|>\n", 1)[-1].rsplit("\n<|assistant|>", 1)[0]
        return self.responses.get(user, self.default)

    def generate(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        self.calls += 1
        if self.latency_s:
            time.sleep(self.latency_s)
        out = []
        for p in prompts:
            text = self._answer(p)
            words = text.split()
            if len(words) > decoding.max_new_tokens:  # one "token" per word: enough to test truncation
                out.append(Completion(" ".join(words[: decoding.max_new_tokens]), "length", decoding.max_new_tokens))
            else:
                out.append(Completion(text, "stop", len(words)))
        return out

    def token_logprobs(self, prompts: list[str], responses: list[str]) -> list[list[float]]:
        # One "token" per word, then the end of turn: a word of the scripted answer is likely (p 0.9), any
        # other word unlikely (p 1e-4), so a response the fake model would not write scores off-policy.
        out = []
        for p, r in zip(prompts, responses, strict=True):
            known = set(self._answer(p).split())
            out.append([math.log(0.9) if w in known else math.log(1e-4) for w in r.split()] + [math.log(0.9)])
        return out

    def logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        # The scripted answer is the likeliest continuation; anything else is far less likely.
        return [
            0.0 if self._answer(p).strip() == c.strip() else -10.0 for p, c in zip(prompts, continuations, strict=True)
        ]
