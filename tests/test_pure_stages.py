"""scoring, compare, report, gate, leaderboard and the cached pipeline must work without torch installed."""

from __future__ import annotations

import subprocess
import sys

BLOCK = """
import sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'transformers', 'vllm'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, _Block())
import importlib
for mod in MODULES:
    try:
        importlib.import_module(mod)
    except ModuleNotFoundError as e:
        if e.name and e.name.startswith('harness.'):  # a stage not written yet is not a torch leak
            continue
        raise
print('ok')
"""


def test_pure_stages_import_without_torch() -> None:
    mods = [
        "harness.scoring",
        "harness.compare",
        "harness.report",
        "harness.gate",
        "harness.pipeline",
        "harness.outputs",
        "harness.deadline",
        "harness.mathcheck",
        "harness.leaderboard",
        "harness.table",
        "harness.types",
        "harness.store",
        "harness.evaluate",
        "harness.checkpoints.registry",
        "harness.cli",
        "harness.suites",
        "harness.engines",
        "harness.engines.fake",
        "harness.simulate.gaussians",
    ]
    code = f"MODULES = {mods!r}\n" + BLOCK
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"
