"""Forgetting measured during training, from inside a trainer: a probe that scores each saved checkpoint against
its base on a fixed set of suites (probe.py), the TRL / HF Trainer callback built on it (trl.py), and the hook
our own trainer calls (`forgetbench train ... --track SUITES`).

    python -c "from harness.integrations.probe import ForgettingProbe; help(ForgettingProbe)"
"""
