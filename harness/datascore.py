"""How off-policy is a training set for a model: the base's per-token negative log-likelihood of the assistant
tokens (the paper's mechanism: the further SFT data is from the model's own distribution, the more it forgets).

DATA is a chat jsonl (harness/chatdata.py), `suite:NAME[:options]` (that suite's SFT data as `train sft` builds
it: train split, the suite's expert response per item) or `rollouts:PATH[:step=N]` (an RL run's rollouts.jsonl,
the rollouts of step N, default 0: the sequences an RL step trains on, each closed by the end-of-turn token only
when it finished, as harness/train/data.py builds them). The score is the token-mean NLL over every assistant
token (response + end of turn, the tokens an SFT step trains on), the fraction of those tokens whose perplexity
exp(NLL) is above a threshold, and the examples with the highest mean NLL. Every SFT run computes the same at
step 0 from its own sequences (harness/train/sft.py), and every RL run from its first step's rollouts
(harness/train/rl.py), and records it as `data_score`.

    forgetbench data-score suite:addsub --base smollm2-135m --limit 200
    forgetbench data-score rollouts:runs/grpo/rollouts.jsonl:step=0 --base smollm2-135m
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from harness.chatdata import Chat, read_chats

PPL_THRESHOLD = 10.0  # a token the model gives under 10% probability
TOP = 20


@dataclass(frozen=True)
class OffPolicy:
    """One example, by its mean NLL (nats per assistant token)."""

    where: str
    mean_nll: float
    n_tokens: int
    response: str  # the first 200 characters


@dataclass(frozen=True)
class DataScore:
    mean_nll: float  # token-mean over all assistant tokens, nats
    frac_above: float  # fraction of those tokens with perplexity above ppl_threshold
    ppl_threshold: float
    n_examples: int
    n_tokens: int
    top: tuple[OffPolicy, ...] = ()  # the most off-policy examples, highest mean NLL first

    def summary(self) -> dict[str, Any]:
        """What a checkpoint's metadata and registry entry keep (no example texts)."""
        return {
            "mean_nll": round(self.mean_nll, 4),
            "frac_above": round(self.frac_above, 4),
            "ppl_threshold": self.ppl_threshold,
            "n_examples": self.n_examples,
            "n_tokens": self.n_tokens,
        }


def score_tokens(
    logprobs: Sequence[Sequence[float]],
    wheres: Sequence[str],
    responses: Sequence[str],
    ppl_threshold: float = PPL_THRESHOLD,
    top: int = TOP,
) -> DataScore:
    """The data score from per-token log-probs of each example's assistant tokens (pure)."""
    nll = [[-x for x in row] for row in logprobs]
    n_tokens = sum(len(r) for r in nll)
    if not n_tokens:
        raise ValueError("data score: no assistant tokens")
    cut = math.log(ppl_threshold)
    ranked = sorted(
        (
            OffPolicy(w, sum(r) / len(r), len(r), resp[:200])
            for r, w, resp in zip(nll, wheres, responses, strict=True)
            if r
        ),
        key=lambda o: -o.mean_nll,
    )
    return DataScore(
        mean_nll=sum(map(sum, nll)) / n_tokens,
        frac_above=sum(x > cut for r in nll for x in r) / n_tokens,
        ppl_threshold=ppl_threshold,
        n_examples=len(nll),
        n_tokens=n_tokens,
        top=tuple(ranked[:top]),
    )


def suite_chats(spec: str, limit: int | None = None) -> list[Chat]:
    """A suite's SFT data as `train sft --suite` builds it: train split, prompt + the suite's expert response."""
    from harness.chatdata import DataError
    from harness.suites import Suite, get_suite, train_items

    suite = get_suite(spec)
    if not suite.has_reference and type(suite).expert is Suite.expert:
        raise DataError(f"suite:{spec}: the suite has no gold or expert responses, so no SFT data to score")
    return [
        Chat(tuple(suite.prompt(it)), suite.expert(it), f"suite {suite.name}: {it.id}")
        for it in train_items(suite, limit)
    ]


@dataclass(frozen=True)
class Rollouts:
    """An RL run's logged rollouts of one step: prompts already rendered by the run's chat template."""

    prompts: tuple[str, ...]
    completions: tuple[str, ...]
    finished: tuple[bool, ...]
    wheres: tuple[str, ...]


def load_rollouts(spec: str, limit: int | None = None) -> Rollouts:
    """`PATH[:step=N]` -> the rollouts of step N (default 0) in the order the run logged them."""
    from harness.chatdata import DataError
    from harness.train.rollout import read_rollouts

    path, _, opt = spec.partition(":step=")
    try:
        step = int(opt) if opt else 0
    except ValueError:
        raise DataError(f"rollouts:{spec}: step must be an integer, got {opt!r}") from None
    try:
        rows = [r for r in read_rollouts(Path(path)) if r.get("step") == step]
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"rollouts:{path}: cannot read the rollouts ({e})") from None
    if not rows:
        raise DataError(f"rollouts:{path}: no rollouts of step {step}")
    if missing := {"prompt", "completion", "finish_reason"} - set(rows[0]):
        raise DataError(f"rollouts:{path}: not a rollouts.jsonl (rows lack {', '.join(sorted(missing))})")
    rows = rows[:limit] if limit else rows
    return Rollouts(
        tuple(r["prompt"] for r in rows),
        tuple(r["completion"] for r in rows),
        tuple(r["finish_reason"] == "stop" for r in rows),
        tuple(f"{path}: step {step} {r.get('item_id', '?')} sample {r.get('sample', '?')}" for r in rows),
    )


def rollout_score(engine: Any, ro: Rollouts, ppl_threshold: float = PPL_THRESHOLD, top: int = TOP) -> DataScore:
    """Score an RL step's rollouts as the trainer's step-0 score does: an unfinished rollout has no end of turn."""
    lps = engine.token_logprobs(list(ro.prompts), list(ro.completions))
    lps = [row if done else row[:-1] for row, done in zip(lps, ro.finished, strict=True)]
    return score_tokens(lps, ro.wheres, ro.completions, ppl_threshold, top)


def load_data(data: str, limit: int | None = None) -> list[Chat]:
    """`suite:NAME[:options]` or a chat jsonl path; the first `limit` examples when asked."""
    if data.startswith("suite:"):
        return suite_chats(data.removeprefix("suite:"), limit)
    chats = read_chats(Path(data))
    return chats[:limit] if limit else chats


def engine_score(
    engine: Any,
    chats: Sequence[Chat],
    system_prompt: str | None = None,
    ppl_threshold: float = PPL_THRESHOLD,
    top: int = TOP,
) -> DataScore:
    """Score the chats under the model the engine serves (its chat template and system-prompt policy)."""
    prompts = [engine.render(c.messages, system_prompt) for c in chats]
    lps = engine.token_logprobs(prompts, [c.response for c in chats])
    return score_tokens(lps, [c.where for c in chats], [c.response for c in chats], ppl_threshold, top)


def print_score(console: Console, ds: DataScore, label: str) -> None:
    console.print(
        f"{label}: mean NLL {ds.mean_nll:.3f} nats per assistant token (perplexity {math.exp(ds.mean_nll):.2f}) "
        f"over {ds.n_tokens} tokens of {ds.n_examples} examples; {ds.frac_above:.1%} of tokens above "
        f"perplexity {ds.ppl_threshold:g}",
        highlight=False,
    )
    if not ds.top:
        return
    table = Table(title=f"the {len(ds.top)} most off-policy examples", title_justify="left")
    for col in ("#", "example", "mean NLL", "tokens", "response"):
        table.add_column(col, overflow="fold")
    for k, o in enumerate(ds.top, 1):
        table.add_row(str(k), o.where, f"{o.mean_nll:.2f}", str(o.n_tokens), o.response[:80].replace("\n", " "))
    console.print(table)


def data_score_cmd(
    data: Annotated[
        str, typer.Argument(help="a chat jsonl file, suite:NAME (that suite's SFT data) or rollouts:PATH[:step=N]")
    ],
    base: Annotated[str, typer.Option("--base", help="the model scoring it: registry id or path")],
    registry: Annotated[Path, typer.Option("--registry", help="resolves --base")] = Path("checkpoints.yaml"),
    limit: Annotated[int | None, typer.Option("--limit", help="first N examples")] = None,
    ppl_threshold: Annotated[float, typer.Option(help="count tokens with a perplexity above this")] = PPL_THRESHOLD,
    top: Annotated[int, typer.Option(help="how many of the most off-policy examples to list")] = TOP,
    engine: Annotated[str, typer.Option("--engine", help="hf (or fake, for tests)")] = "hf",
    as_json: Annotated[bool, typer.Option("--json", help="print the score as JSON only")] = False,
) -> None:
    """How off-policy DATA is for --base: mean per-token NLL of its assistant tokens and the worst examples."""
    from harness.checkpoints.registry import Registry, RegistryError
    from harness.checkpoints.weights import materialise
    from harness.engines import EngineError, make_engine
    from harness.errors import ForgetbenchError

    err = Console(stderr=True)
    try:
        if ppl_threshold <= 1:
            raise typer.BadParameter("--ppl-threshold must be above 1")
        # validated whole before any model loads
        rollouts = load_rollouts(data.removeprefix("rollouts:"), limit) if data.startswith("rollouts:") else None
        chats = load_data(data, limit) if rollouts is None else []
        reg = Registry.load(registry)
        ckpt = reg.resolve(base)
        if ckpt.format == "fake" and engine != "fake":
            raise RegistryError(f"--base {base}: a fake checkpoint needs --engine fake")
        eng = make_engine(engine)
        try:
            eng.load(materialise(ckpt, reg.lineage(ckpt)))
            if rollouts is not None:
                ds = rollout_score(eng, rollouts, ppl_threshold, top)
            else:
                ds = engine_score(eng, chats, ckpt.system_prompt, ppl_threshold, top)
        finally:
            eng.close()
    except (ForgetbenchError, EngineError) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    if as_json:
        print(json.dumps(asdict(ds) | {"data": data, "base": ckpt.id}, indent=1))
        return
    print_score(Console(), ds, f"{data} under {ckpt.id}")


def register(app: typer.Typer) -> None:
    """Add `data-score` to the main forgetbench app."""
    app.command("data-score")(data_score_cmd)
