"""Every third-party import in harness/ and suites/ (function-local ones included, such as the suites' hub
loaders' `import datasets`) is a package pyproject.toml declares, not one that arrives as someone's dependency."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).parents[1]
LOCAL = {"harness", "suites", "tests", "__future__"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared() -> dict[str, set[str]]:
    """Distribution name -> the groups declaring it ("default" or an extra's name)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    groups = {"default": project["dependencies"]} | project["optional-dependencies"]
    out: dict[str, set[str]] = {}
    for group, reqs in groups.items():
        for req in reqs:
            out.setdefault(_norm(re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0]), set()).add(group)
    return out


def third_party_imports() -> dict[str, set[str]]:
    """Top-level module -> the files importing it (anywhere in the file, at any depth)."""
    found: dict[str, set[str]] = {}
    for f in sorted([*ROOT.glob("suites/*.py"), *ROOT.glob("harness/**/*.py")]):
        for node in ast.walk(ast.parse(f.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for top in {n.split(".")[0] for n in names} - LOCAL - set(sys.stdlib_module_names):
                found.setdefault(top, set()).add(str(f.relative_to(ROOT)))
    return found


def test_every_import_is_declared() -> None:
    dists = packages_distributions()
    have = declared()
    missing = []
    for module, files in sorted(third_party_imports().items()):
        names = {_norm(d) for d in dists.get(module, [])} | {_norm(module)}  # not installed: its own name
        if not names & set(have):
            missing.append(f"{module} (imported by {', '.join(sorted(files))})")
    assert not missing, "undeclared imports: " + "; ".join(missing)


def test_hub_paths_are_declared_by_the_hub_extra() -> None:
    have = declared()
    assert "hub" in have["datasets"] and "hub" in have["huggingface-hub"]
    imports = third_party_imports()
    assert "suites/wildjailbreak.py" in imports["datasets"]  # the suites' shared hub loader
    assert "harness/checkpoints/hub.py" in imports["huggingface_hub"]
