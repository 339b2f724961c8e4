"""Static leaderboard built from stored comparisons: sortable tables, gain-vs-drop frontiers, a page per checkpoint.

    forgetbench leaderboard reports/ --out site/

Scans a directory recursively for `forgetbench compare` (or `gate`) output dirs (results.json + config.json),
never loads a model, and writes a site that works from file:// and any static host:

    site/index.html                 tables per (base, protocol), filters by base and method, frontier plots
    site/checkpoints/<id>-<h>.html  one page per checkpoint: lineage, per-suite deltas, forgotten examples
    site/reports/<run>-<h>/report.html   the run's full report (copied, or re-rendered from results.json)
    site/assets/plotly.min.js       plotly.js, once, locally (no CDN)
    site/leaderboard.json           the same numbers for machines

The site is built in a fresh directory beside --out and swapped in with one rename (harness/outputs.py): a
kill leaves the previous site or the new one, two builds both succeed, and a run that cannot be read (bad
JSON, a field of the wrong shape, a report.html that is a link) is skipped with one warning naming it.

Runs whose suite versions, decoding or item set (limit) differ measure different things: they get a different
protocol key (hash of suite@version + decoding + limit) and are never ranked in one table. Rebuilding is
deterministic: the same inputs give the same bytes except the one "generated" line of index.html.
Model output is untrusted: jinja2 autoescapes, JSON inside <script> escapes < > &, the page script only
reorders rows and sets textContent.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from jinja2 import Environment, FileSystemLoader
from markupsafe import Markup

from harness.decisions import interval_dominators
from harness.errors import ForgetbenchError
from harness.fmt import pp as _pp
from harness.fsio import UnsafePathError, read_nofollow
from harness.outputs import InputError, check_not_link, commit
from harness.report import error_bars
from harness.types import SCHEMA_VERSION, CheckpointSummary, Comparison, Delta, ForgottenItem, stable_hash

TEMPLATES = Path(__file__).parent / "templates"
SITE_MARKER = ".forgetbench-site"  # only a directory carrying this is ever replaced by a rebuild
MAX_EXAMPLES = 5  # forgotten items shown per suite on a checkpoint page (the full report has all)
MAX_TEXT = 2000  # characters of a prompt or answer shown on a page


class LeaderboardError(ForgetbenchError):
    """No results, or an output directory we must not replace (one line, names the path)."""


@dataclass
class Entry:
    """One checkpoint under one (base, protocol): a row of the index and a page of its own."""

    checkpoint: str
    base: str
    method: str
    trained_on: tuple[str, ...]
    fingerprint: str
    is_base: bool
    gain: float | None
    gain_ci: tuple[float, float] | None
    drop: float | None
    drop_ci: tuple[float, float] | None
    suites: dict[str, dict[str, Any]]  # suite -> score, and for candidates delta, CI, q, n, flips
    engines: tuple[str, ...]
    lineage: dict[str, Any]
    source: str  # the run dir, relative to the scanned root
    report: str  # the run's report, relative to the site root
    also_in: list[str] = field(default_factory=list)  # other runs with the same checkpoint and protocol
    forgotten: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dominated_by: list[str] = field(default_factory=list)
    paired_dominated_by: tuple[str, ...] = ()  # what its own comparison resolved (paired resamples, base included)
    page: str = ""

    def key(self) -> str:
        return f"{self.checkpoint}\0{self.fingerprint}"


@dataclass
class Group:
    base: str
    base_fingerprint: str
    protocol: str
    info: dict[str, Any]
    suites: list[str]  # column order: the first run's
    entries: list[Entry]
    notes: list[str] = field(default_factory=list)


def script_json(obj: Any) -> Markup:
    """JSON that cannot end its <script> element or open a tag: < > & (and line separators) as \\u escapes."""
    text = json.dumps(obj, sort_keys=True, allow_nan=False, default=str)
    for ch in "<>&\u2028\u2029":
        text = text.replace(ch, f"\\u{ord(ch):04x}")
    return Markup(text)


def _slug(text: str, n: int = 40) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text)[:n].strip("._") or "x"


def _clip(text: Any) -> str:
    text = str(text or "")
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + f" … [{len(text) - MAX_TEXT} more characters]"


# -- reading runs -------------------------------------------------------------------------------------------


def find_runs(root: Path) -> list[Path]:
    """Compare output dirs under root (sorted; hidden dirs and in-progress temp dirs skipped)."""
    runs = []
    for results in root.rglob("results.json"):
        rel = results.parent.relative_to(root)
        if any(part.startswith(".") for part in rel.parts) or not (results.parent / "config.json").is_file():
            continue
        runs.append(results.parent)
    return sorted(runs, key=lambda p: p.relative_to(root).as_posix())


def protocol_of(data: Mapping[str, Any], config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """What must match for two numbers to be ranked together: suites@version, decoding, item set (limit)."""
    meta = data.get("meta", {})
    versions, decoding = meta.get("data_versions") or meta.get("suite_versions", {}), meta.get("decoding", {})
    suites = sorted(data.get("suites", []))
    info = {
        "suites": [f"{s}@{versions.get(s, '?')}" for s in suites],
        "decoding": {s: decoding.get(s, "?") for s in suites},
        "limit": config.get("eval", {}).get("limit"),
    }
    limits = {s: n for s, n in (config.get("eval", {}).get("limits") or {}).items() if s in suites}
    if limits:  # --suite-limit: another item set for those suites (absent otherwise: older keys stay as they were)
        info["limits"] = dict(sorted(limits.items()))
    system = config.get("lineage", {}).get(data.get("base"), {}).get("system_prompt")
    if system is not None:  # our system turn is part of every prompt of the run (compare refuses a mismatch)
        info["system_prompt"] = system
    return stable_hash(info, 8), info


def load_run(path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(results.json, config.json) of a run dir; LeaderboardError naming the file when unusable."""
    out = []
    for name in ("results.json", "config.json"):
        try:  # a link is refused: a run's files must not pull in what lies outside the scanned folder
            doc = json.loads(read_nofollow(path / name))
        except (OSError, ValueError, UnsafePathError) as e:
            raise LeaderboardError(f"{path / name}: unreadable ({e})") from None
        if not isinstance(doc, dict):
            raise LeaderboardError(f"{path / name}: not a JSON object")
        out.append(doc)
    data, config = out
    if data.get("schema") != SCHEMA_VERSION:
        raise LeaderboardError(f"{path / 'results.json'}: schema {data.get('schema')!r} != {SCHEMA_VERSION}")
    for key in ("base", "suites", "scores", "summaries"):
        if key not in data:
            raise LeaderboardError(f"{path / 'results.json'}: missing key {key!r}")
    shapes = [
        ("results.json", data, "base", str),
        ("results.json", data, "suites", list),
        ("results.json", data, "scores", dict),
        ("results.json", data, "summaries", list),
        ("results.json", data, "meta", dict),
        ("results.json", data, "forgotten", list),
        ("config.json", config, "eval", dict),
        ("config.json", config, "lineage", dict),
    ]
    for name, doc, key, kind in shapes:
        if key in doc and not isinstance(doc[key], kind):
            want = {str: "a string", list: "a list", dict: "a mapping"}[kind]
            raise LeaderboardError(f"{path / name}: {key!r} must be {want}, got {type(doc[key]).__name__}")
    if not all(isinstance(s, dict) for s in data["summaries"]):
        raise LeaderboardError(f"{path / 'results.json'}: every entry of 'summaries' must be a mapping")
    return data, config


def own_report(run: Path) -> Path | None:
    """The run's report.html when it is a plain file of the run (not a link, nothing outside the run dir)."""
    report = run / "report.html"
    if report.is_symlink() or not report.is_file():
        return None
    return report if report.resolve().parent == run.resolve() else None


def comparison_from_dict(d: Mapping[str, Any]) -> Comparison:
    """Rebuild a Comparison from results.json (for re-rendering a report that was not kept)."""

    def pair(x: Any) -> tuple[float, float] | None:
        return tuple(x) if x is not None else None  # type: ignore[return-value]

    summaries = tuple(
        CheckpointSummary(
            **{
                **s,
                "trained_on": tuple(s["trained_on"]),
                "gain_ci": pair(s["gain_ci"]),
                "drop_ci": pair(s["drop_ci"]),
                "deltas": tuple(Delta(**x) for x in s["deltas"]),
                "dominated_by": tuple(s.get("dominated_by", ())),
                "notes": tuple(s.get("notes", ())),
            }
        )
        for s in d["summaries"]
    )
    return Comparison(
        base=d["base"],
        suites=tuple(d["suites"]),
        scores=d["scores"],
        summaries=summaries,
        forgotten=tuple(ForgottenItem(**f) for f in d.get("forgotten", ())),
        meta=d.get("meta", {}),
    )


def _entries(data: dict[str, Any], config: dict[str, Any], rel: str) -> list[Entry]:
    """The base and every candidate of one run, as leaderboard rows."""
    meta, base = data.get("meta", {}), data["base"]
    fps, lineage = meta.get("fingerprints", {}), config.get("lineage", {})
    common = {"base": base, "engines": tuple(meta.get("engines", ())), "source": rel, "report": ""}
    base_scores = {s: {"score": data["scores"].get(base, {}).get(s)} for s in data["suites"]}
    out = [
        Entry(checkpoint=base, method="base", trained_on=(), fingerprint=fps.get(base, base), is_base=True,
              gain=None, gain_ci=None, drop=None, drop_ci=None, suites=base_scores, lineage=lineage.get(base, {}),
              **common)
    ]  # fmt: skip
    keep = ("score", "base_score", "delta", "ci_low", "ci_high", "q_value", "n", "forgotten", "learned", "is_target")
    for s in data["summaries"]:
        cid = s["checkpoint"]
        lost: dict[str, list[dict[str, str]]] = {}
        for f in data.get("forgotten", []):
            if f["checkpoint"] == cid and len(lost.setdefault(f["suite"], [])) < MAX_EXAMPLES:
                lost[f["suite"]].append({k: _clip(v) for k, v in f.items()})
        out.append(
            Entry(checkpoint=cid, method=s.get("method", "other"), trained_on=tuple(s.get("trained_on", ())),
                  fingerprint=fps.get(cid, cid), is_base=False, gain=s.get("gain"), gain_ci=_pair(s.get("gain_ci")),
                  drop=s.get("drop"), drop_ci=_pair(s.get("drop_ci")),
                  suites={d["suite"]: {k: d[k] for k in keep} for d in s["deltas"]}, lineage=lineage.get(cid, {}),
                  forgotten=[x for v in lost.values() for x in v], notes=list(s.get("notes", ())),
                  paired_dominated_by=tuple(s.get("dominated_by", ())), **common)
        )  # fmt: skip
    return out


def _pair(x: Any) -> tuple[float, float] | None:
    return (float(x[0]), float(x[1])) if x else None


def collect(root: Path, warn: list[str]) -> tuple[list[Group], dict[str, Path]]:
    """Groups by (base fingerprint, protocol), entries de-duplicated by fingerprint; and the reports to copy."""
    groups: dict[tuple[str, str], Group] = {}
    reports: dict[str, Path] = {}
    for run in find_runs(root):
        rel = run.relative_to(root).as_posix() or "."
        try:
            data, config = load_run(run)
            entries = _entries(data, config, rel)
            protocol, info = protocol_of(data, config)
            if (run / "report.html").is_symlink():
                warn.append(f"{rel}: report.html is a symbolic link; not copied, re-rendered from results.json")
            if own_report(run) is None:  # its report is re-rendered: the numbers must rebuild a Comparison
                comparison_from_dict(data)
        except (LeaderboardError, KeyError, TypeError, ValueError, AttributeError, IndexError) as e:
            why = str(e) if isinstance(e, LeaderboardError) else f"malformed results ({type(e).__name__}: {e})"
            warn.append(f"skipped {rel}: {why}")
            continue
        report = f"reports/{_slug(rel.replace('/', '__'))}-{stable_hash(rel, 6)}/report.html"
        reports[report] = run
        base_fp = entries[0].fingerprint
        group = groups.setdefault(
            (base_fp, protocol), Group(data["base"], base_fp, protocol, info, list(data["suites"]), [])
        )
        # the same weights are one row, whatever id a run gave them (a registry id, a file name)
        known = {(e.is_base, e.fingerprint): e for e in group.entries}
        for e in entries:
            e.report = report
            prior = known.get((e.is_base, e.fingerprint))
            if prior is None:  # runs are sorted by path: the first one wins, deterministically
                group.entries.append(e)
            elif rel not in prior.also_in and rel != prior.source:
                prior.also_in.append(rel)
    out = sorted(groups.values(), key=lambda g: (g.base, g.protocol))
    by_base: dict[str, int] = {}
    for g in out:
        by_base[g.base] = by_base.get(g.base, 0) + 1
    for g in out:
        _rank(g)
        if by_base[g.base] > 1:
            g.notes.append(
                f"{g.base} was evaluated under {by_base[g.base]} protocols (suite versions, decoding or item set "
                "differ): each has its own table, and rows of different tables are not comparable"
            )
        engines = sorted({x for e in g.entries for x in e.engines})
        if len(engines) > 1:
            g.notes.append(f"engines differ within this table: {', '.join(engines)}")
    return out, reports


def _rank(g: Group) -> None:
    """Default order (base first, then least drop) and resolved Pareto dominance among same-target checkpoints.
    Rows of one comparison keep what it resolved on paired resamples (the base included: it is in every
    comparison); rows of comparisons run apart share no resamples, so there by 95% intervals that do not overlap."""
    g.entries.sort(key=lambda e: (not e.is_base, e.drop is None, e.drop if e.drop is not None else 0.0, e.checkpoint))
    by_target: dict[tuple[str, ...], dict[str, tuple[float, tuple[float, float], float, tuple[float, float]]]] = {}
    by_key = {e.key(): e for e in g.entries}
    for e in g.entries:
        if e.gain is not None and e.drop is not None:
            gain_ci, drop_ci = e.gain_ci or (e.gain, e.gain), e.drop_ci or (e.drop, e.drop)
            by_target.setdefault(tuple(sorted(e.trained_on)), {})[e.key()] = (e.gain, gain_ci, e.drop, drop_ci)
    for points in by_target.values():
        # gain is only comparable between checkpoints trained for the same suites
        apart = interval_dominators(points)
        for k in points:
            e = by_key[k]
            same = [o.checkpoint for o in (by_key[x] for x in points) if o.source == e.source and o is not e]
            doms = [n for n in e.paired_dominated_by if n in same]
            doms += [by_key[x].checkpoint for x in apart[k] if by_key[x].source != e.source]
            e.dominated_by = sorted(set(doms) | ({g.base} if g.base in e.paired_dominated_by else set()))
    for e in g.entries:
        h = stable_hash([g.base_fingerprint, g.protocol, e.fingerprint, e.checkpoint], 8)
        e.page = f"checkpoints/{_slug(e.checkpoint)}-{h}.html"


# -- rendering ----------------------------------------------------------------------------------------------


def _items(info: Mapping[str, Any]) -> str:
    """A protocol's item set in words: "first 100 items (countdown: first 5)"."""
    text = "all items" if info.get("limit") is None else f"first {info['limit']} items"
    limits = info.get("limits") or {}
    return text + (f" ({', '.join(f'{k}: first {v}' for k, v in limits.items())})" if limits else "")


def _num(x: float | None) -> str:
    return "" if x is None else f"{x:.6f}"


def frontier_figure(g: Group) -> dict[str, Any] | None:
    """Gain vs drop of the group's checkpoints (one trace per method), the base at (0, 0)."""
    pts = [e for e in g.entries if e.gain is not None and e.drop is not None]
    if not pts:
        return None
    traces = []
    for method in sorted({e.method for e in pts}):
        grp = [e for e in pts if e.method == method]
        traces.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": method,
                "x": [round(e.drop, 4) for e in grp],
                "y": [round(e.gain, 4) for e in grp],
                "text": [e.checkpoint for e in grp],
                "customdata": [", ".join(e.trained_on) for e in grp],
                "textposition": "top center",
                "marker": {"size": 11, "symbol": ["x" if e.dominated_by else "circle" for e in grp]},
                "error_x": error_bars([e.drop for e in grp], [e.drop_ci for e in grp]),
                "error_y": error_bars([e.gain for e in grp], [e.gain_ci for e in grp]),
                "hovertemplate": "%{text}<br>trained on %{customdata}<br>gain %{y:.1f}, drop %{x:.1f}<extra></extra>",
            }
        )
    traces.append({"type": "scatter", "mode": "markers+text", "name": "base", "x": [0.0], "y": [0.0],
                   "text": [g.base], "textposition": "bottom center",
                   "marker": {"size": 11, "symbol": "diamond", "color": "#444"}})  # fmt: skip
    layout = {
        "title": {"text": "gain vs drop (points; up and left is better; x = dominated, resolved)"},
        "xaxis": {"title": {"text": "drop (positive = forgetting)"}, "zeroline": True},
        "yaxis": {"title": {"text": "gain on target suites"}, "zeroline": True},
        "height": 420,
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
    }
    return {"data": traces, "layout": layout}


def _env() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, keep_trailing_newline=True)
    env.filters["pp"] = _pp
    env.filters["num"] = _num
    env.filters["items"] = _items
    return env


def _generated_at() -> str:
    # SOURCE_DATE_EPOCH (reproducible-builds convention) pins even the one varying line
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC)
    return when.strftime("%Y-%m-%d %H:%M:%S UTC")


def check_site_out(out: Path) -> None:
    """--out may take the site: a new path, an empty dir or an earlier site; not a file, a link or a foreign dir."""
    try:
        check_not_link(out)
    except InputError as e:
        raise LeaderboardError(str(e)) from None
    if out.exists() and not out.is_dir():
        raise LeaderboardError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and not (out / SITE_MARKER).exists() and any(out.iterdir()):
        raise LeaderboardError(f"{out}: exists and is not a forgetbench site ({SITE_MARKER} missing); not replacing")


def build_site(root: Path, out: Path, generated_at: str | None = None, warnings: list[str] | None = None) -> Path:
    """Render the whole site into a fresh dir beside `out`, then swap it in with one rename (harness/outputs.py):
    a kill leaves the old site or the new one, never half of either; two builds each commit a whole site."""
    if not root.is_dir():
        raise LeaderboardError(f"{root}: no such directory")
    warn = warnings if warnings is not None else []
    groups, reports = collect(root, warn)
    if not groups:
        raise LeaderboardError(f"{root}: no compare results (a dir with results.json and config.json) found")
    out = out.absolute()
    try:
        commit(out, lambda stage: _write_site(stage, groups, reports, warn, generated_at), check=check_site_out)
    except InputError as e:
        raise LeaderboardError(str(e)) from None
    except OSError as e:  # a full disk, a folder we may not write: the previous site stays as it was
        raise LeaderboardError(
            f"--out {out}: cannot write the site ({e.strerror or e}); the previous one is kept"
        ) from None
    return out


def _write_site(
    tmp: Path, groups: list[Group], reports: dict[str, Path], warn: list[str], generated_at: str | None
) -> None:
    from harness.report import plotly_js, render_html

    (tmp / "assets").mkdir(parents=True)
    (tmp / "checkpoints").mkdir()
    (tmp / SITE_MARKER).write_text("built by `forgetbench leaderboard`; the next build replaces this dir\n")
    (tmp / "assets" / "plotly.min.js").write_text(plotly_js())
    for dest, run in sorted(reports.items()):
        (tmp / dest).parent.mkdir(parents=True)
        report = own_report(run)
        if report is not None:
            shutil.copyfile(report, tmp / dest, follow_symlinks=False)
        else:  # the run kept only its numbers (or a link): re-render from results.json (no model, no records)
            data, config = load_run(run)
            render_html(comparison_from_dict(data), tmp / dest, config=config)
    env = _env()
    figures = {f"fig-{i}": f for i, g in enumerate(groups) if (f := frontier_figure(g))}
    bases = sorted({g.base for g in groups})
    methods = sorted({e.method for g in groups for e in g.entries})
    page = env.get_template("leaderboard_index.html.j2").render(
        groups=groups,
        bases=bases,
        methods=methods,
        figures=script_json(figures),
        warnings=warn,
        generated=generated_at or _generated_at(),
        n_runs=len(reports),
    )
    (tmp / "index.html").write_text(page)
    ckpt_tpl = env.get_template("leaderboard_checkpoint.html.j2")
    for g in groups:
        for e in g.entries:
            (tmp / e.page).write_text(ckpt_tpl.render(e=e, g=g, root="../"))
    dump = {"schema": SCHEMA_VERSION, "groups": [_group_dict(g) for g in groups]}
    (tmp / "leaderboard.json").write_text(json.dumps(dump, indent=1, sort_keys=True) + "\n")


def _group_dict(g: Group) -> dict[str, Any]:
    return {
        "base": g.base,
        "base_fingerprint": g.base_fingerprint,
        "protocol": g.protocol,
        "protocol_info": g.info,
        "notes": g.notes,
        "entries": [{k: v for k, v in asdict(e).items() if k != "forgotten"} for e in g.entries],
    }


# -- command ------------------------------------------------------------------------------------------------


def leaderboard_cmd(
    runs_dir: Annotated[Path, typer.Argument(help="where to look for compare output dirs (recursively)")] = Path(
        "reports"
    ),
    out: Annotated[Path, typer.Option("--out", help="site directory (replaced on rebuild)")] = Path("site"),
) -> None:
    """Build a static leaderboard site from stored comparison results; never loads a model."""
    from rich.console import Console

    err = Console(stderr=True)
    warnings: list[str] = []
    try:
        site = build_site(runs_dir, out, warnings=warnings)
    except LeaderboardError as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    for w in warnings:
        err.print(f"[yellow]warning:[/] {w}", highlight=False, soft_wrap=True)
    err.print(f"leaderboard: {site / 'index.html'}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add `leaderboard` to a typer app (the main CLI wires it in)."""
    app.command("leaderboard")(leaderboard_cmd)
