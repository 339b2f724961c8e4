"""ForgettingCallback: a transformers TrainerCallback (TRL's SFTTrainer, GRPOTrainer, ... and the plain HF
Trainer) that scores each saved checkpoint on a fixed probe set, logs `forgetting/gain`, `forgetting/drop` and
per-suite deltas with their 95% CIs through the trainer's own `log` (so W&B, TensorBoard or trackio show them),
writes the records into the store `forgetbench track` reads, and can stop training once the drop is resolved
above a budget. Install with `pip install 'forgetbench[trl]'`.

    trainer = SFTTrainer(model=..., args=SFTConfig(output_dir="out", save_steps=100), train_dataset=...)
    trainer.add_callback(ForgettingCallback(trainer, base="HuggingFaceTB/SmolLM2-135M-Instruct",
                                            suites="arithmetic,capitals,countdown", trained_on="countdown",
                                            limit=50, stop_on_drop=5.0))
    # afterwards, at no cost: forgetbench track out --base HuggingFaceTB/SmolLM2-135M-Instruct --suites ...
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from harness.integrations.probe import ForgettingProbe


class ForgettingCallback(TrainerCallback):
    """Scores `checkpoint-<step>/` on every save (main process only). `trainer`: whose `log` carries the
    metrics (set `.trainer` later if the trainer is built after the callback); without one, the metrics are
    appended to the trainer state's log history only. `stop_on_drop`: stop once the drop's CI is above it."""

    def __init__(self, trainer: Any = None, *, stop_on_drop: float | None = None, **probe: Any) -> None:
        self.trainer = trainer
        self.stop_on_drop = stop_on_drop
        self._probe_args = probe
        self.probe: ForgettingProbe | None = None
        self.history: list[dict[str, Any]] = []  # every scored point, in order

    def on_save(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if not state.is_world_process_zero:
            return control
        if self.probe is None:
            self.probe = ForgettingProbe(**({"run": Path(args.output_dir).name} | self._probe_args))
        ckpt = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        point = self.probe.score(ckpt, state.global_step)
        if point is None:
            return control
        self.history.append(point)
        metrics = ForgettingProbe.metrics(point)
        if self.trainer is not None:
            self.trainer.log(metrics)
        else:
            state.log_history.append({**metrics, "step": state.global_step})
        if self.stop_on_drop is not None and ForgettingProbe.drop_resolved_above(point, self.stop_on_drop):
            lo, hi = point["drop_ci"]
            print(
                f"forgetting: drop {point['drop']:+.1f} [{lo:+.1f}, {hi:+.1f}] at step {state.global_step} is "
                f"resolved above {self.stop_on_drop:g}: stopping training"
            )
            control.should_training_stop = True
        return control

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> Any:
        if self.probe is not None:
            self.probe.close()
        return control
