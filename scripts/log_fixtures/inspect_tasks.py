"""Inspect logs for tests/data/logs/inspect/ (run by scripts/make_log_fixtures.sh in Inspect's own venv).

Two tasks on one 6-sample local dataset: `arith_match` (scorer match: C/I, 0/1) and `arith_f1` (scorer f1:
continuous). mockllm answers from a script keyed by the question, so base and cand differ on known samples.

    python scripts/log_fixtures/inspect_tasks.py /tmp/inspect-logs
"""

import sys

from inspect_ai import Task, eval, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.model import GenerateConfig, ModelOutput, ModelUsage, get_model
from inspect_ai.scorer import f1, match
from inspect_ai.solver import generate, system_message

QUESTIONS = [(f"What is {a} + {b}?", str(a + b)) for a, b in ((2, 3), (4, 4), (7, 5), (9, 1), (6, 8), (3, 3))]
# which samples each model answers right (by index); the rest hedge "A or A+1": match 0, f1 0.5 (continuous)
RIGHT = {"base": {0, 1, 2, 3}, "cand": {0, 1, 4}}
FLAKY = {"base": 5, "cand": 2}  # with flaky=True (the epochs runs): this sample is right on every second try


def dataset() -> MemoryDataset:
    return MemoryDataset([Sample(id=f"s{i}", input=q, target=a) for i, (q, a) in enumerate(QUESTIONS)], name="arith6")


@task
def arith_match() -> Task:
    return Task(
        dataset=dataset(), solver=[system_message("Answer with a number."), generate()], scorer=match(), version=1
    )


@task
def arith_f1() -> Task:
    return Task(dataset=dataset(), solver=[system_message("Answer with a number."), generate()], scorer=f1(), version=1)


def model(who: str, flaky: bool = False):
    answers = {q: a if i in RIGHT[who] else f"{a} or {int(a) + 1}" for i, (q, a) in enumerate(QUESTIONS)}
    calls = dict.fromkeys(answers, 0)

    def reply(messages, tools, tool_choice, config) -> ModelOutput:
        question = messages[-1].text
        calls[question] += 1
        content = answers[question]
        if flaky and question == QUESTIONS[FLAKY[who]][0] and calls[question] % 2 == 0:
            content = QUESTIONS[FLAKY[who]][1]  # right on every second try: epochs differ on this sample
        out = ModelOutput.from_content(model=f"mock-{who}", content=content)
        # usage given: mockllm would otherwise count tokens with tiktoken, which downloads its vocabulary
        out.usage = ModelUsage(
            input_tokens=len(question.split()), output_tokens=2, total_tokens=len(question.split()) + 2
        )
        return out

    return get_model(f"mockllm/{who}", custom_outputs=reply, memoize=False)


def main(log_root: str) -> None:
    tasks = [arith_match(), arith_f1()]
    runs = {
        "base": dict(who="base", config=GenerateConfig(temperature=0.0, max_tokens=16)),
        "cand": dict(who="cand", config=GenerateConfig(temperature=0.0, max_tokens=16)),
        "cand-temp": dict(who="cand", config=GenerateConfig(temperature=0.7, max_tokens=16)),
        "cand-limit": dict(who="cand", config=GenerateConfig(temperature=0.0, max_tokens=16), limit=4),
        # two epochs each, sampled: the base's two epochs are its noise floor
        "base-epochs": dict(who="base", config=GenerateConfig(temperature=0.7, max_tokens=16), epochs=2, flaky=True),
        "cand-epochs": dict(who="cand", config=GenerateConfig(temperature=0.7, max_tokens=16), epochs=2, flaky=True),
        # Inspect's other log format: one JSON document per task
        "base-json": dict(who="base", config=GenerateConfig(temperature=0.0, max_tokens=16), log_format="json"),
        "cand-json": dict(who="cand", config=GenerateConfig(temperature=0.0, max_tokens=16), log_format="json"),
    }
    for name, run in runs.items():
        logs = eval(
            tasks,
            model=model(run["who"], run.get("flaky", False)),
            epochs=run.get("epochs"),
            log_format=run.get("log_format", "eval"),
            log_dir=f"{log_root}/{name}",
            display="none",
            limit=run.get("limit"),
            **run["config"].model_dump(exclude_none=True),
        )
        assert all(log.status == "success" for log in logs), [str(log.error.message)[:300] for log in logs if log.error]


if __name__ == "__main__":
    main(sys.argv[1])
