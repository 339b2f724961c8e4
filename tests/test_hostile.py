"""What forgetbench promises under hostile or careless input (fake engine, tiny files). Read the test names.

Security: a checkpoint, a registry, a store or a results file never chooses where a file lands; the store and
the site never follow a link they did not create; YAML aliases are refused; a pickle that would run code is
a one-line refusal; a huge completion is cut in the HTML and kept whole in the records.
Bad input: one line naming the file, entry or flag (exit 2), with "did you mean" for a near miss.
Faults: the leaderboard site is swapped in as one unit; stale build dirs are cleaned; two builds both succeed;
a full disk is one line.

    python -m pytest tests/test_hostile.py -q
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import random
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from harness.checkpoints.registry import Checkpoint, Registry, RegistryError, detect_format
from harness.cli import app
from harness.errors import ForgetbenchError
from harness.leaderboard import SITE_MARKER, LeaderboardError, build_site
from harness.store import Store, StoreError
from harness.types import Record, RecordKey
from tests.fakes import write_fake
from tests.test_leaderboard import write_run

runner = CliRunner()
REGISTRY = """default_suites: [arithmetic, capitals]
checkpoints:
  - id: base
    path: base.fake.json
    method: base
  - id: sft
    path: sft.fake.json
    method: sft
    base: base
    trained_on: [capitals]
"""


@pytest.fixture
def ws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    write_fake(tmp_path / "base.fake.json", {"arithmetic": 1.0, "capitals": 1.0}, 4, seed=1)
    write_fake(tmp_path / "sft.fake.json", {"arithmetic": 0.5, "capitals": 1.0}, 4, seed=2)
    (tmp_path / "checkpoints.yaml").write_text(REGISTRY)
    return tmp_path


def _compare(*args: str) -> object:
    return runner.invoke(app, ["compare", "base", "sft", "--engine", "fake", "--limit", "4", "--n-boot", "50",
                               "--no-noise-floor", *args])  # fmt: skip


def _one_line_error(res: object, needle: str) -> None:
    out = res.output.strip()  # type: ignore[attr-defined]
    assert res.exit_code == 2, out  # type: ignore[attr-defined]
    assert out.startswith("error:") and len(out.splitlines()) == 1 and "Traceback" not in out, out
    assert needle in out, out


def _record(fp: str = "fp1") -> Record:
    return Record(fp, "arithmetic", "1", "i1", "h", "greedy", "fake@1", "42", "stop", 1)


# == security ==================================================================================================


def _pt(path: Path, tiny_model_dir: Path, tokenizer: dict[str, str], metadata: dict | None = None) -> Path:
    """A self-describing .pt built from the tiny model, with the given embedded tokenizer files and metadata."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    blob = {"forgetbench_format": 1, "config": model.config.to_dict(), "tokenizer": tokenizer,
            "state_dict": model.state_dict(), "metadata": metadata or {"method": "sft"}}  # fmt: skip
    torch.save(blob, path)
    return path


@pytest.mark.parametrize("name", ["../../escaped.txt", "ABSOLUTE", "sub/tokenizer.json", "..", "x\\..\\y"])
def test_a_checkpoint_never_chooses_where_its_tokenizer_files_land(
    tmp_path: Path, tiny_model_dir: Path, name: str
) -> None:
    from harness.checkpoints.weights import home, materialise

    target = tmp_path / "outside" / "escaped.txt"
    target.parent.mkdir()
    name = str(target) if name == "ABSOLUTE" else name
    evil = _pt(tmp_path / "evil.pt", tiny_model_dir, {"tokenizer.json": "{}", name: "attacker text"})
    ckpt = Checkpoint(id="evil", path=str(evil), format="pt")
    with pytest.raises(ForgetbenchError, match="tokenizer file"):
        Registry([], ("arithmetic",), None).resolve(str(evil))
    with pytest.raises(ForgetbenchError, match="tokenizer file"):
        materialise(ckpt)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p != evil]
    assert [p for p in files if "attacker text" in p.read_text(errors="replace")] == []
    assert not (home().parent / "escaped.txt").exists()


def test_store_refuses_a_planted_claim_lock_link_and_leaves_its_target_alone(tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    store = Store(tmp_path / "runs")
    key = RecordKey("fp1", "arithmetic", "1", "greedy", "fake@1")
    lock = tmp_path / "runs" / "claims" / "fp1" / "arithmetic@1" / "greedy__fake@1.lock"
    lock.parent.mkdir(parents=True)
    lock.symlink_to(victim)
    with pytest.raises(StoreError, match="symbolic link"), store.claim([key]):
        pass
    assert victim.read_text() == "precious"


@pytest.mark.parametrize("url", [False, True])
def test_store_refuses_a_linked_folder_or_part_file(tmp_path: Path, url: bool) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    store = Store(f"file://{tmp_path}/runs" if url else tmp_path / "runs")
    (tmp_path / "runs" / "records").mkdir(parents=True)
    (tmp_path / "runs" / "records" / "fp1").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link"):
        store.append([_record()])
    assert list(elsewhere.rglob("*")) == []  # nothing written through the link
    # a part file that is a link to a record file outside the store is not read as this store's record
    outside = tmp_path / "outside.parquet"
    pq.write_table(pa.Table.from_pylist([asdict(_record("fp2"))]), outside)
    part_dir = store.key_dir(RecordKey("fp2", "arithmetic", "1", "greedy", "fake@1"))
    Path(part_dir).mkdir(parents=True)
    (Path(part_dir) / "part-1-1-00001-aaaaaa.parquet").symlink_to(outside)
    with pytest.raises(StoreError, match="symbolic link"):
        store.load(RecordKey("fp2", "arithmetic", "1", "greedy", "fake@1"))


def test_leaderboard_never_copies_a_report_that_links_outside_its_run(tmp_path: Path) -> None:
    secret = tmp_path / "secret.html"
    secret.write_text("TOP-SECRET-CONTENT")
    run = write_run(tmp_path / "reports" / "a", ["sft"], report=False)
    (run / "report.html").symlink_to(secret)
    warnings: list[str] = []
    site = build_site(tmp_path / "reports", tmp_path / "site", warnings=warnings)
    assert not any("TOP-SECRET" in p.read_text(errors="replace") for p in site.rglob("*") if p.is_file())
    assert any("symbolic link" in w and "a" in w for w in warnings)
    assert (site / "index.html").is_file()  # the run is still on the board, its report re-rendered


def test_a_symlinked_out_is_refused_in_one_line_and_left_as_it_was(ws: Path) -> None:
    real = ws / "real-out"
    real.mkdir()
    (ws / "link-out").symlink_to(real, target_is_directory=True)
    _one_line_error(_compare("--out", "link-out"), "symbolic link")
    assert (ws / "link-out").is_symlink() and list(real.iterdir()) == []
    write_run(ws / "reports" / "a", ["sft"])
    res = runner.invoke(app, ["leaderboard", "reports", "--out", "link-out"])
    _one_line_error(res, "symbolic link")
    assert (ws / "link-out").is_symlink() and list(real.iterdir()) == []


LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcd", "bcde", strict=True)
)


def test_yaml_aliases_are_refused_in_the_registry_and_the_gate_config(tmp_path: Path) -> None:
    write_fake(tmp_path / "a.fake.json", {"arithmetic": 1.0}, 2)
    reg = tmp_path / "checkpoints.yaml"
    reg.write_text("checkpoints:\n  - id: a\n    path: a.fake.json\n    notes: &n hello\n    hparams: {note: *n}\n")
    with pytest.raises(RegistryError, match="aliases"):
        Registry.load(reg)
    reg.write_text(f"checkpoints: []\n{LAUGHS}")  # billion laughs, 5 levels: refused before any expansion
    with pytest.raises(RegistryError, match="aliases"):
        Registry.load(reg)
    from harness.gate import GateConfigError, load_config

    gate = tmp_path / "gate.yaml"
    gate.write_text("max_drop: &d 2.0\nmax_suite_drop: *d\n")
    with pytest.raises(GateConfigError, match="aliases"):
        load_config(gate)


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):  # runs os.system at unpickling time, if anything ever unpickled it
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("layout", ["hf", "peft"])
def test_a_pickle_payload_in_a_bin_file_is_a_one_line_refusal(ws: Path, layout: str) -> None:
    marker = ws / "pwned"
    d = ws / "evil"
    d.mkdir()
    if layout == "hf":
        (d / "config.json").write_text('{"model_type": "llama"}')
        (d / "pytorch_model.bin").write_bytes(pickle.dumps({"w": _Payload(str(marker))}))
    else:
        (d / "adapter_config.json").write_text('{"base_model_name_or_path": "base.fake.json"}')
        (d / "adapter_model.bin").write_bytes(pickle.dumps({"w": _Payload(str(marker))}))
    with pytest.raises(RegistryError, match="refused: its pickle imports"):
        detect_format(str(d))
    _one_line_error(runner.invoke(app, ["eval", "evil", "--engine", "hf", "--suites", "arithmetic"]), "refused")
    assert not marker.exists()


def test_a_huge_completion_is_cut_in_the_html_and_kept_whole_in_results(ws: Path) -> None:
    from harness.suites import get_suite, load_items

    s = get_suite("capitals")
    item = load_items(s, 4)[0]
    huge = "<b>" * 400_000  # 1.2 MB of markup a browser would choke on, 4.8 MB once escaped
    spec = json.loads((ws / "sft.fake.json").read_text())
    spec["responses"][s.prompt(item)[-1]["content"]] = huge
    (ws / "sft.fake.json").write_text(json.dumps(spec))
    res = _compare("--out", "out")
    assert res.exit_code == 0, res.output
    html = (ws / "out" / "report.html").read_text()
    assert huge not in html and "1,200,000 characters in all" in html
    from harness.report import plotly_js

    assert (ws / "out" / "report.html").stat().st_size < len(plotly_js()) + 500_000  # plotly.js is most of it
    assert huge in {f["answer"] for f in json.loads((ws / "out" / "results.json").read_text())["forgotten"]}


# == bad input =================================================================================================


@pytest.mark.parametrize(
    "setup, needle",
    [
        (lambda p: p.write_bytes(b"checkpoints: []\nnotes: \xff\xfe\n"), "not UTF-8"),
        (lambda p: p.mkdir(), "is a directory"),
        (lambda p: p.write_text("checkpoints: []\n1: x\n"), "unknown top-level key"),
        (lambda p: p.write_text("checkpoints: []\n? [a, b]\n: x\n"), "a key must be a string"),
        (lambda p: p.write_text("checkpoints:\n  - {id: a, path: a.fake.json, 3: x}\n"), "unknown field"),
        (lambda p: p.write_text("default_suites: [aritmetic]\ncheckpoints: []\n"), "did you mean 'arithmetic'"),
    ],
)
def test_a_bad_registry_is_one_line_naming_it(ws: Path, setup: object, needle: str) -> None:
    write_fake(ws / "a.fake.json", {"arithmetic": 1.0}, 2)
    reg = ws / "bad.yaml"
    setup(reg)  # type: ignore[operator]
    with pytest.raises(RegistryError, match=needle):
        Registry.load(reg)
    res = runner.invoke(app, ["checkpoints", "--registry", str(reg)])
    assert res.exit_code != 0 and "Traceback" not in res.output and needle.split("'")[0] in res.output


def test_pt_metadata_naming_an_unknown_suite_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    pt = _pt(tmp_path / "m.pt", tiny_model_dir, {}, {"method": "sft", "trained_on": ["countdwon"]})
    with pytest.raises(RegistryError, match="did you mean 'countdown'"):
        Registry([], ("arithmetic",), None).resolve(str(pt))


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--suites", "aritmetic"], "did you mean 'arithmetic'"),
        (["--suites", "mmlu:lenint"], "did you mean 'lenient'"),
        (["--suite-limit", "aritmetic=2"], "did you mean 'arithmetic'"),
        (["--trained-on", "capitols"], "did you mean 'capitals'"),
        (["--runs-dir", "://x"], "not a URL"),
        (["--dtype", "bfloat16", "--engine-opt", "dtype=float16"], "conflicts with --dtype"),
        (["--engine", "hf", "--engine-opt", "batchng=static"], "did you mean 'batching'"),
    ],
)
def test_every_name_a_user_types_is_checked_with_a_suggestion(ws: Path, args: list[str], needle: str) -> None:
    specs = ["base.fake.json", "sft.fake.json"] if "--trained-on" in args else []
    if specs:
        res = runner.invoke(app, ["compare", *specs, "--engine", "fake", "--limit", "4", *args])
    else:
        res = _compare(*args)
    _one_line_error(res, needle)
    assert not (ws / ":").exists()


def test_an_unknown_engine_option_fails_even_on_a_fully_cached_run(ws: Path) -> None:
    assert _compare("--out", "out").exit_code == 0
    before = (ws / "out" / "config.json").read_text()
    _one_line_error(_compare("--out", "out", "--engine-opt", "no_such=1", "--cached-only"), "no_such")
    assert (ws / "out" / "config.json").read_text() == before


def test_report_of_a_comparison_made_without_a_registry_never_reads_the_cwd_registry(ws: Path) -> None:
    args = ["base.fake.json", "sft.fake.json", "--engine", "fake", "--limit", "4", "--n-boot", "50"]
    res = runner.invoke(app, ["compare", *args, "--no-noise-floor", "--registry", "none.yaml", "--out", "out"])
    assert res.exit_code == 0, res.output
    (ws / "checkpoints.yaml").write_text("checkpoints: [\n")  # would fail if read
    res = runner.invoke(app, ["report", "out"])
    assert res.exit_code == 0, res.output
    assert json.loads((ws / "out" / "config.json").read_text())["registry"] == ""


def test_leaderboard_skips_each_malformed_run_with_one_warning_and_builds_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "reports"
    write_run(root / "good", ["sft"])
    for name, edit in [
        ("meta-list", lambda r, c: r.update(meta=[])),
        ("eval-list", lambda r, c: c.update(eval=[1])),
        ("unknown-field", lambda r, c: r["summaries"][0].update(surprise=1)),
    ]:
        run = write_run(root / name, ["sft"], report=name != "unknown-field")
        r, c = json.loads((run / "results.json").read_text()), json.loads((run / "config.json").read_text())
        edit(r, c)
        (run / "results.json").write_text(json.dumps(r))
        (run / "config.json").write_text(json.dumps(c))
    res = runner.invoke(app, ["leaderboard", str(root), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    warned = [line for line in res.output.splitlines() if line.startswith("warning:")]
    assert sorted(w.split()[2].rstrip(":") for w in warned) == ["eval-list", "meta-list", "unknown-field"]
    assert "good" in (tmp_path / "site" / "leaderboard.json").read_text()


def test_leaderboard_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    write_run(tmp_path / "reports" / "a", ["sft"])
    (tmp_path / "afile").write_text("mine")
    _one_line_error(runner.invoke(app, ["leaderboard", str(tmp_path / "reports"), "--out", str(tmp_path / "afile")]),
                    "not a directory")  # fmt: skip
    assert (tmp_path / "afile").read_text() == "mine"


@pytest.mark.parametrize("home", ["memo-list", "home-is-a-file"])
def test_a_broken_forgetbench_home_is_ignored_for_fingerprints(ws: Path, monkeypatch: pytest.MonkeyPatch,
                                                               home: str) -> None:  # fmt: skip
    h = ws / "fbhome"
    if home == "memo-list":
        h.mkdir()
        (h / "fingerprints.json").write_text("[]")
    else:
        h.write_text("not a folder")  # unwritable as a folder, whoever we run as
    monkeypatch.setenv("FORGETBENCH_HOME", str(h))
    assert _compare("--out", "out").exit_code == 0


# == faults ====================================================================================================


def _site(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "reports"
    if not root.exists():
        write_run(root / "a", ["sft"])
    return root, build_site(root, tmp_path / "site")


def test_a_kill_at_the_swap_leaves_a_whole_site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, site = _site(tmp_path)

    def die(*a: object, **k: object) -> None:
        raise KeyboardInterrupt  # the process dies where a rename would move the new site in

    monkeypatch.setattr(os, "replace", die)
    monkeypatch.setattr(os, "rename", die)
    try:
        build_site(root, site)
    except KeyboardInterrupt:
        pass
    assert (site / "index.html").is_file() and (site / SITE_MARKER).is_file()


def test_kill_9_during_builds_never_leaves_a_half_site(tmp_path: Path) -> None:
    root, site = _site(tmp_path)
    code = (
        "from pathlib import Path; from harness.leaderboard import build_site as b\n"
        f"while True: b(Path({str(root)!r}), Path({str(site)!r}))"
    )
    rng = random.Random(0)
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", code], env=os.environ | {"PYTHONPATH": os.getcwd()})
        time.sleep(rng.uniform(1.0, 2.5))
        proc.kill()
        proc.wait()
        assert {p.name for p in site.iterdir()} >= {"index.html", SITE_MARKER, "leaderboard.json", "reports"}
    build_site(root, site)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []


def test_stale_build_dirs_of_dead_processes_are_cleaned(tmp_path: Path) -> None:
    root, site = _site(tmp_path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f".site.building-{dead.stdout.strip()}"
    (stale / "assets").mkdir(parents=True)
    build_site(root, site)
    assert not stale.exists() and (site / "index.html").is_file()


def test_two_builds_to_one_out_both_succeed(tmp_path: Path) -> None:
    root, site = _site(tmp_path)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            for _ in range(3):
                build_site(root, site)
        except BaseException as e:  # noqa: BLE001 (collected for the assert)
            errors.append(e)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and (site / "index.html").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".site")] == []


def test_a_full_disk_during_leaderboard_is_one_line_and_keeps_the_old_site(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, site = _site(tmp_path)
    before = (site / "index.html").read_bytes()
    real = Path.write_text

    def full(self: Path, *a: object, **k: object) -> int:
        if self.name == "index.html":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "write_text", full)
    with pytest.raises(LeaderboardError, match="No space left"):
        build_site(root, site)
    assert (site / "index.html").read_bytes() == before
    monkeypatch.undo()
    res = runner.invoke(app, ["leaderboard", str(root), "--out", str(site)])
    assert res.exit_code == 0
