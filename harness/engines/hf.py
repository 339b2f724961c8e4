"""The `hf` engine: transformers on CPU or GPU, continuous batching, per-row EOS and stop strings.

By default (batching="continuous") generation runs the decode loop in harness.engines.hf_decode: a
finished row's slot is refilled with the next prompt, so no step decodes padding. batching="static" (and
any model that loop cannot serve) uses `model.generate` on left-padded, length-sorted batches. Both give
the same greedy tokens, finish reasons and n_tokens.

python -c "from harness.engines.hf import HFEngine; e=HFEngine(); e.load('/tmp/tiny'); print(e.version)"
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig, StoppingCriteria

from harness.engines import Engine, EngineError, swap
from harness.engines import prefix as prefixes
from harness.engines.hf_decode import ContinuousDecoder, greedy, sampler, supports
from harness.types import Completion, Decoding

if TYPE_CHECKING:
    from harness.types import Checkpoint

transformers.utils.logging.disable_progress_bar()  # our own progress bars carry the ETA


def _device(requested: str | None) -> str:
    if requested:
        return requested
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFEngine(Engine):
    name = "hf"
    streams = True

    def __init__(
        self,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
        batching: str = "continuous",
        share_prefixes: bool = True,
    ) -> None:
        if batching not in ("continuous", "static"):
            raise EngineError(f"hf engine option batching={batching!r}: choose continuous or static")
        self.batching = batching
        self.share_prefixes = share_prefixes  # continuous batching: shared prompt prefixes prefilled once
        self.device = _device(device)
        # float32 unless asked: bf16 is emulated (slow) on AVX2 CPUs, and the dtype is part of the cache
        # key, so it must be known before any model (or torch) is loaded. Pass dtype="bfloat16" on GPU.
        self.dtype_name = dtype or "float32"
        self.dtype = getattr(torch, self.dtype_name)
        self.batch_size = batch_size  # rows decoded at once (continuous: slots; static: prompts per batch)
        self.model = None
        self.tokenizer = None
        self.model_dir: Path | None = None
        self._arch: str | None = None  # architecture key of the resident model (engines/swap.py)
        self._arch_name = ""
        self._tok_hash = ""
        self.starts = 0  # models constructed (a fresh load), and checkpoints swapped into the resident model
        self.switches = 0
        self.last_load = ""  # what the last load did and why, for the track command's log

    @property
    def version(self) -> str:
        return f"{transformers.__version__}-{self.dtype_name}"

    def load(self, model_dir: Path | str) -> None:
        """Serve `model_dir`. A checkpoint of the resident architecture is swapped in place (its weights copied
        into the resident model: no model is constructed); anything else is loaded afresh, and `last_load`
        says why (the track command logs it)."""
        model_dir = Path(model_dir)
        if self.model_dir == model_dir:
            return
        try:
            config = swap.read_config(model_dir)
        except (OSError, ValueError) as e:
            raise EngineError(f"hf engine cannot load {model_dir}: {str(e).splitlines()[0]}") from e
        why = self._why_not_swap(config)
        if why is None:
            why = self._swap(model_dir, config)
            if why is None:
                return
        self._load_fresh(model_dir, config, why)

    def _why_not_swap(self, config: dict) -> str | None:
        if self.model is None or self._arch is None:
            return "first load"
        if swap.architecture(config) != self._arch:
            return f"architecture differs: {swap.architecture_name(config)} vs resident {self._arch_name}"
        return None

    def _swap(self, model_dir: Path, config: dict) -> str | None:
        """Copy `model_dir`'s weights into the resident model; None when done, else why it could not be."""
        state = swap.read_weights(model_dir)
        if not state:
            return "no safetensors or pytorch_model.bin weights to swap in"
        with torch.no_grad():
            missing, unexpected = self.model.load_state_dict(state, strict=False)
        tied = bool(config.get("tie_word_embeddings"))
        missing = [k for k in missing if not (tied and k == "lm_head.weight")]
        if missing or unexpected:  # e.g. renamed keys a fresh from_pretrained would map: let it do that
            return f"weight names differ from the resident model's (missing {missing[:2]}, unexpected {unexpected[:2]})"
        if tied:
            self.model.tie_weights()
        tok_hash = swap.tokenizer_hash(model_dir)
        if tok_hash != self._tok_hash:
            self.tokenizer, self._tok_hash = _tokenizer(model_dir), tok_hash
        self.model.generation_config = _generation_config(model_dir, self.model.config)
        self.model_dir = model_dir
        self.switches += 1
        self.last_load = f"swapped weights in place from {model_dir}"
        return None

    def _load_fresh(self, model_dir: Path, config: dict, why: str) -> None:
        try:
            tok = _tokenizer(model_dir)
            model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=self.dtype)
        except (OSError, ValueError) as e:
            raise EngineError(f"hf engine cannot load {model_dir}: {str(e).splitlines()[0]}") from e
        self.close()
        self.tokenizer, self.model, self.model_dir = tok, model.to(self.device).eval(), model_dir
        self._arch, self._arch_name = swap.architecture(config), swap.architecture_name(config)
        self._tok_hash = swap.tokenizer_hash(model_dir)
        self.starts += 1
        self.last_load = f"loaded {model_dir} ({why})"

    def load_checkpoint(self, ckpt: Checkpoint, lineage: Sequence[Checkpoint] = ()) -> None:
        """A PEFT adapter is merged into the resident base (its weights swapped back in first): the base model
        is neither reloaded nor written out merged. Every other format goes through `materialise`."""
        from harness.checkpoints.weights import local_files, materialise

        if ckpt.format != "peft" or not lineage:
            return super().load_checkpoint(ckpt, lineage)
        adapter_dir = local_files(ckpt)
        if self.model_dir == adapter_dir:
            return
        base_dir = materialise(lineage[0], lineage[1:])
        self.model_dir = None  # the resident weights may be another adapter's merge: always restore the base's
        self.load(base_dir)
        _merge_adapter_in_place(self.model, adapter_dir, base_dir)
        if any((adapter_dir / n).exists() for n in ("tokenizer.json", "tokenizer_config.json")):
            self.tokenizer, self._tok_hash = _tokenizer(adapter_dir), swap.tokenizer_hash(adapter_dir)
        self.model_dir = adapter_dir
        self.last_load += f", then merged the adapter {adapter_dir} in place"

    def use_model(self, model: torch.nn.Module, tokenizer: object) -> None:
        """Serve an in-memory model (the trainer's policy): no copy, sees every update at once."""
        tokenizer.padding_side = "left"
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self.model, self.tokenizer, self.model_dir = model, tokenizer, None
        self._arch = None  # never swap files into a trainer's live policy

    def _require(self) -> None:
        if self.model is None:
            raise EngineError("hf engine: no checkpoint loaded (call load first)")

    def render(self, messages: list[dict[str, str]], system_prompt: str | None = None) -> str:
        self._require()
        msgs = ([{"role": "system", "content": system_prompt}] if system_prompt is not None else []) + messages
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    def _encode(self, texts: list[str]) -> list[list[int]]:
        # The rendered template already carries any BOS: adding special tokens again would double it.
        return self.tokenizer(texts, add_special_tokens=False)["input_ids"]

    def generate(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        out: list[Completion | None] = [None] * len(prompts)
        for i, c in self.generate_stream(prompts, decoding):
            out[i] = c
        return [c for c in out if c is not None]

    def generate_stream(self, prompts: list[str], decoding: Decoding) -> Iterator[tuple[int, Completion]]:
        """(prompt index, completion) as rows finish; hand over all prompts at once for the fewest steps."""
        self._require()
        why_not = supports(self.model) if self.batching == "continuous" else "batching=static"
        if why_not is not None:
            yield from enumerate(self._generate_static(prompts, decoding))
            return
        eos = self._eos_ids()
        sample = decoding.temperature > 0
        decoder = self._decoder()
        with torch.no_grad():
            rows = decoder.run(
                self._encode(prompts),
                decoding.max_new_tokens,
                set(eos),
                sampler(decoding.temperature, decoding.top_p) if sample else greedy,
                _StopCheck(self.tokenizer, decoding.stop) if decoding.stop else None,
                seed=decoding.seed if sample else None,
            )
            for i, tokens in rows:
                yield i, self._finish(tokens, eos, decoding)

    def _decoder(self) -> ContinuousDecoder:
        min_shared = prefixes.MIN_SAVED if self.share_prefixes else None  # read per call: tests lower it
        return ContinuousDecoder(self.model, self.tokenizer.pad_token_id, self.batch_size, min_shared)

    @torch.no_grad()
    def _generate_static(self, prompts: list[str], decoding: Decoding) -> list[Completion]:
        encoded = self._encode(prompts)
        order = sorted(range(len(prompts)), key=lambda i: -len(encoded[i]))  # similar lengths share a batch
        out: list[Completion | None] = [None] * len(prompts)
        eos = self._eos_ids()
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            batch = self.tokenizer.pad({"input_ids": [encoded[i] for i in idx]}, return_tensors="pt")
            batch = {k: v.to(self.device) for k, v in batch.items()}
            sample = decoding.temperature > 0
            if sample:
                torch.manual_seed(decoding.seed + start)
            gen = self.model.generate(
                **batch,
                max_new_tokens=decoding.max_new_tokens,
                do_sample=sample,
                temperature=decoding.temperature if sample else None,
                top_p=decoding.top_p if sample else None,
                top_k=None,
                eos_token_id=eos,
                pad_token_id=self.tokenizer.pad_token_id,
                stopping_criteria=[_StopOnStrings(self.tokenizer, decoding.stop, batch["input_ids"].shape[1])]
                if decoding.stop
                else None,
            )
            new = gen[:, batch["input_ids"].shape[1] :].tolist()
            for row, i in enumerate(idx):
                out[i] = self._finish(new[row], eos, decoding)
        return [c for c in out if c is not None]

    def _eos_ids(self) -> list[int]:
        ids = self.model.generation_config.eos_token_id
        ids = ids if isinstance(ids, list) else [ids] if ids is not None else []
        if self.tokenizer.eos_token_id is not None and self.tokenizer.eos_token_id not in ids:
            ids.append(self.tokenizer.eos_token_id)
        return ids

    def _finish(self, tokens: list[int], eos: list[int], decoding: Decoding) -> Completion:
        """Cut a generated row at EOS/padding and at the first stop string; decide the finish reason."""
        n, reason = len(tokens), "length"
        for j, t in enumerate(tokens):
            if t in eos:
                n, reason = j, "stop"
                break
        text = self.tokenizer.decode(tokens[:n], skip_special_tokens=True)
        for s in decoding.stop:
            k = text.find(s)
            if k >= 0:
                text, reason = text[:k], "stop"
        # A row that ended (by EOS or a stop string) before the rest of its batch was padded: count only the
        # tokens it really generated.
        real = len(tokens)
        while real and tokens[real - 1] == self.tokenizer.pad_token_id:
            real -= 1
        return Completion(text=text, finish_reason=reason, n_tokens=min(n, real))

    @torch.no_grad()
    def logprobs(self, prompts: list[str], continuations: list[str]) -> list[float]:
        self._require()
        prompt_ids = self._encode(prompts)
        full_ids = self._encode([p + c for p, c in zip(prompts, continuations, strict=True)])
        if self.batching == "continuous" and supports(self.model) is None:
            firsts = [_common_prefix(p, f) for p, f in zip(prompt_ids, full_ids, strict=True)]
            return self._decoder().score(full_ids, firsts)
        out: list[float] = []
        for start in range(0, len(prompts), self.batch_size):
            rows = list(range(start, min(start + self.batch_size, len(prompts))))
            width = max(len(full_ids[i]) for i in rows)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([full_ids[i] + [pad] * (width - len(full_ids[i])) for i in rows])
            mask = torch.tensor([[1] * len(full_ids[i]) + [0] * (width - len(full_ids[i])) for i in rows])
            logits = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device)).logits
            logp = torch.log_softmax(logits.float(), dim=-1).cpu()
            for r, i in enumerate(rows):
                # Tokenisation may merge across the boundary; score from the first differing position.
                k = _common_prefix(prompt_ids[i], full_ids[i])
                targets = torch.tensor(full_ids[i][k:])
                out.append(float(logp[r, k - 1 : len(full_ids[i]) - 1].gather(1, targets[:, None]).sum()))
        return out

    @torch.no_grad()
    def token_logprobs(self, prompts: list[str], responses: list[str]) -> list[list[float]]:
        """Per-token log-probs of the responses, as the trainer's sequences have them: left-padded rows of
        prompt ids + response ids + end-of-turn id, only the response positions through the vocabulary head."""
        self._require()
        from harness.train.data import end_of_turn_id

        end = end_of_turn_id(self.tokenizer)
        prompt_ids = self._encode(prompts)
        response_ids = [ids + [end] for ids in self._encode(responses)]
        out: list[list[float]] = [[] for _ in prompts]
        order = sorted(range(len(prompts)), key=lambda i: -(len(prompt_ids[i]) + len(response_ids[i])))
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            seqs = [prompt_ids[i] + response_ids[i] for i in rows]
            width, window = max(map(len, seqs)), max(len(response_ids[i]) for i in rows)
            pad = self.tokenizer.pad_token_id
            ids = torch.tensor([[pad] * (width - len(s)) + s for s in seqs], device=self.device)
            mask = torch.tensor([[0] * (width - len(s)) + [1] * len(s) for s in seqs], device=self.device)
            logits = self.model(
                input_ids=ids,
                attention_mask=mask,
                position_ids=(mask.cumsum(dim=1) - 1).clamp(min=0),
                logits_to_keep=window + 1,
            ).logits[:, :-1]
            logp = -torch.nn.functional.cross_entropy(
                logits.float().transpose(1, 2), ids[:, -window:], reduction="none"
            )
            for r, i in enumerate(rows):
                out[i] = logp[r, window - len(response_ids[i]) :].cpu().tolist()
        return out

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        self.model_dir = None
        self._arch = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def _tokenizer(model_dir: Path) -> object:
    tok = AutoTokenizer.from_pretrained(model_dir)
    tok.padding_side = "left"  # decoder-only generation needs the prompt flush right
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def _generation_config(model_dir: Path, config: object) -> GenerationConfig:
    """The checkpoint's generation_config.json, or (as from_pretrained does) one derived from its config."""
    try:
        return GenerationConfig.from_pretrained(model_dir)
    except OSError:
        return GenerationConfig.from_model_config(config)


def _merge_adapter_in_place(model: torch.nn.Module, adapter_dir: Path, base_dir: Path) -> None:
    """W <- W + scaled BA in the resident modules (what harness.checkpoints.adapters.merge_adapter writes)."""
    try:
        from peft import PeftModel
    except ImportError:
        raise EngineError(f"{adapter_dir}: PEFT adapters need peft (pip install 'forgetbench[train]')") from None
    try:
        PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    except (ValueError, KeyError, RuntimeError, OSError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise EngineError(f"{adapter_dir}: adapter does not fit its base {base_dir}: {first}") from None


class _StopOnStrings(StoppingCriteria):
    """Per-row stop on a stop string in the *generated* text only.

    transformers' own stop_strings also match across the prompt boundary (a prompt ending in a newline
    plus one generated newline matches a "\n\n" stop), which would cut completions short.
    """

    def __init__(self, tokenizer: object, stops: tuple[str, ...], prompt_len: int) -> None:
        self.tokenizer, self.stops, self.prompt_len = tokenizer, stops, prompt_len

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs: object) -> torch.BoolTensor:
        texts = self.tokenizer.batch_decode(input_ids[:, self.prompt_len :], skip_special_tokens=True)
        return torch.tensor([any(s in t for s in self.stops) for t in texts], device=input_ids.device)


class _StopCheck:
    """Per-row stop-string test for the continuous loop, same rule as _StopOnStrings (generated text only).

    Decoding a row's whole text every step is the cost; a stop string can only newly appear when the new
    token's text holds its last character, so rows whose new token cannot complete one are not decoded.
    Tokens that do not decode to clean text on their own (partial UTF-8, specials) are always checked, and
    so is every token when a stop string ends in whitespace or the tokenizer rewrites spaces on decode.
    """

    def __init__(self, tokenizer: object, stops: tuple[str, ...]) -> None:
        self.tokenizer, self.stops = tokenizer, stops
        self.last_chars = {s[-1] for s in stops if s}
        self.always = (
            "" in stops
            or any(c.isspace() for c in self.last_chars)
            or bool(getattr(tokenizer, "clean_up_tokenization_spaces", False))
        )
        self._may_complete: dict[int, bool] = {}

    def _could_complete(self, token: int) -> bool:
        if token not in self._may_complete:
            piece = self.tokenizer.decode([token], skip_special_tokens=True)
            self._may_complete[token] = not piece or "\ufffd" in piece or any(c in piece for c in self.last_chars)
        return self._may_complete[token]

    def __call__(self, tokens: list[int]) -> bool:
        if not self.always and not self._could_complete(tokens[-1]):
            return False
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return any(s in text for s in self.stops)


def _common_prefix(a: list[int], b: list[int]) -> int:
    k = 0
    while k < min(len(a), len(b)) and a[k] == b[k]:
        k += 1
    return max(k, 1)
