"""Where things live on disk: the only settings environment variables may make.

Environment variables never change a measurement (suite options and flags do, and are recorded); they only
say where caches are. FORGETBENCH_HOME: fingerprints, materialised models, generated items
(default ~/.cache/forgetbench); FORGETBENCH_DATA: the suites' fetched data files (default $FORGETBENCH_HOME/data).

    python -c "from harness.places import home; print(home())"
"""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """Where fingerprints and materialised models live ($FORGETBENCH_HOME, default ~/.cache/forgetbench)."""
    return Path(os.environ.get("FORGETBENCH_HOME", Path.home() / ".cache" / "forgetbench"))


def models_dir() -> Path:
    """Materialised models: HF directories written from other formats (harness/cachedir.py frees them)."""
    return home() / "models"
