"""Summarise runs (medians), judge the targets, and write the results as JSON and Markdown."""

from __future__ import annotations

import json
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.cdc import P95_TARGET, RATE_TARGET
from bench.contenders import CONTENDERS

MB = 1_000_000


@dataclass
class Run:
    """One measured run of one contender on one table."""

    source: str
    table: str
    rows: int
    contender: str
    repetition: int
    seconds: float
    peak_rss: int
    ok: bool
    problem: str = ""
    amount_type: str = ""
    load_before: float = 0.0
    """1-minute load average just before the run (other work on the machine)."""
    cpu_seconds: float = 0.0
    """CPU time of the process tree (user + system), not counting the database server."""
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Summary:
    source: str
    table: str
    rows: int
    contender: str
    runs: int
    seconds: float
    """Median wall time of the process (start to exit)."""
    rows_per_s: float
    mb_per_s: float
    peak_rss_mb: float
    """Median of each run's peak RSS of the process tree."""
    ok: bool
    problem: str
    amount_type: str
    load: float
    """Median 1-minute load average before the runs."""
    cpu_seconds: float
    """Median CPU time of the process tree."""
    seconds_all: list[float]


def summarise(runs: list[Run], table_mb: dict[tuple[str, str], float]) -> list[Summary]:
    groups: dict[tuple[str, str, str], list[Run]] = {}
    for r in runs:
        groups.setdefault((r.source, r.table, r.contender), []).append(r)
    out = []
    for (source, table, contender), rs in groups.items():
        good = [r for r in rs if r.ok] or rs
        secs = statistics.median(r.seconds for r in good)
        rows = rs[0].rows
        out.append(Summary(
            source, table, rows, contender, len(rs), secs, rows / secs if secs else 0.0,
            table_mb.get((source, table), 0.0) / secs if secs else 0.0,
            statistics.median(r.peak_rss for r in good) / MB,
            all(r.ok for r in rs), "; ".join(sorted({r.problem for r in rs if r.problem})),
            rs[0].amount_type, statistics.median(r.load_before for r in rs),
            statistics.median(r.cpu_seconds for r in good), [round(r.seconds, 2) for r in rs],
        ))
    return out


@dataclass
class Target:
    name: str
    case: str
    value: str
    met: bool | None
    """None when the figure is missing (contender not run)."""


_RIVALS = ("duckdb", "sling", "dlt", "pandas")
"""Contenders that land the table (raw writes nothing: it is the driver's ceiling, not a rival)."""


def judge_targets(summaries: list[Summary], figures: dict[str, Any]) -> list[Target]:
    by = {(s.source, s.table, s.contender): s for s in summaries}
    targets: list[Target] = []
    for (source, table, contender), lf in sorted(by.items()):
        if contender != "lakeforge":
            continue
        case = f"{source} {table}"
        raw, dlt, pandas = (by.get((source, table, c)) for c in ("raw", "dlt", "pandas"))
        if raw:
            ratio = lf.rows_per_s / raw.rows_per_s
            targets.append(Target("full load >= 0.8x raw driver rate", case, f"{ratio:.2f}x", ratio >= 0.8))
        rivals = [s for (so, t, c), s in by.items() if so == source and t == table and c in _RIVALS and s.ok]
        if rivals:  # issue #14: at least as fast as the fastest correct contender that writes the lake
            best = min(rivals, key=lambda s: s.seconds)
            ratio = best.seconds / lf.seconds
            targets.append(Target("full load >= 1.0x the fastest contender", case,
                                  f"{ratio:.2f}x ({best.contender} {best.seconds:.2f} s)", ratio >= 1.0))
        for other, goal, label in ((dlt, 3, "dlt"), (pandas, 15, "pandas")):
            if other:
                ratio = other.seconds / lf.seconds
                value = f"{ratio:.1f}x"
                if raw:  # no loader can beat the driver it reads with: this is the most anyone could reach
                    value += f" (raw driver alone: {other.seconds / raw.seconds:.1f}x)"
                targets.append(Target(f">= {goal}x faster than {label}", case, value, ratio >= goal))
        iceberg = by.get((source, table, "lakeforge-iceberg"))
        if iceberg:
            ratio = iceberg.rows_per_s / lf.rows_per_s
            targets.append(Target("Iceberg full load >= 0.8x the Delta path", case, f"{ratio:.2f}x", ratio >= 0.8))
        if lf.rows >= 10_000_000:
            targets.append(Target("peak RSS <= 1 GB at 10M rows", case, f"{lf.peak_rss_mb:.0f} MB",
                                  lf.peak_rss_mb <= 1000))
        smaller = [s for (so, _t, c), s in by.items()
                   if so == source and c == "lakeforge" and s.rows < lf.rows and _shape(s.table) == _shape(table)]
        for small in smaller:
            growth = lf.peak_rss_mb / small.peak_rss_mb
            targets.append(Target(
                "RSS not growing with rows (<= 1.5x for 10x rows)", f"{case} vs {small.table}",
                f"{small.peak_rss_mb:.0f} -> {lf.peak_rss_mb:.0f} MB ({growth:.2f}x)", growth <= 1.5,
            ))
    for key, inc in sorted(figures.get("incremental", {}).items()):
        noop = inc.get("noop_seconds")
        if noop is not None:
            targets.append(Target("no-op incremental run <= 2 s", key, f"{noop:.2f} s", noop <= 2))
        for kind in ("spread", "newest"):
            ratio = inc.get(f"{kind}_ratio")
            if ratio is not None:
                targets.append(Target(f"1% change ({kind}) merged in <= 2x reading it", key, f"{ratio:.2f}x",
                                      ratio <= 2))
    for key, cdc in sorted(figures.get("cdc", {}).items()):
        rate, p95 = cdc.get("changes_per_s"), cdc.get("delay_p95_s")
        if rate is not None:
            targets.append(
                Target(f"CDC >= {RATE_TARGET:,} changes/s applied", key, f"{rate:,.0f}/s", rate >= RATE_TARGET)
            )
        if p95 is not None:
            targets.append(Target(f"CDC p95 delay <= {P95_TARGET:g} s", key, f"{p95:.2f} s", p95 <= P95_TARGET))
    return targets


def _cdc_lines(cdc: dict[str, Any]) -> list[str]:
    """The CDC table: catch-up throughput (fresh ``lakeforge run`` after N source changes, lakeforge's default
    ``cdc_commit_seconds``) and delay under ``run --follow`` (the ``cdc_commit_seconds`` it used is shown)."""
    lines = ["", "CDC (from `bench/cdc.py`): catch-up run after N changes; delay of one-row transactions under "
             "`run --follow`:", "",
             "| case | changes | catch-up s | changes/s | in-run changes/s | CPU s | peak RSS MB | delay p50 s "
             "| delay p95 s | delay max s | rows/s written | cdc_commit_seconds | follow RSS MB | check |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for key, f in sorted(cdc.items()):
        if "error" in f:
            lines.append(f"| {key} | | | | | | | | | | | | | **failed**: {f['error']} |")
            continue
        ok = f.get("ok") and f.get("delay_ok")
        problem = "; ".join(p for p in (f.get("problem"), f.get("delay_problem")) if p)
        lines.append(
            f"| {key} | {f.get('changes', 0):,} | {f.get('seconds', 0):.2f} | {f.get('changes_per_s', 0):,.0f} "
            f"| {f.get('changes_per_s_in_run') or 0:,.0f} | {f.get('cpu_seconds', 0):.1f} | {f.get('peak_rss_mb', 0)} "
            f"| {f.get('delay_p50_s', 0):.2f} | {f.get('delay_p95_s', 0):.2f} | {f.get('delay_max_s') or 0:.2f} "
            f"| {f.get('delay_changes_per_s', 0):.0f} | {f.get('cdc_commit_seconds')} "
            f"| {f.get('follow_peak_rss_mb', 0)} | {'ok' if ok else '**WRONG** ' + problem} |")
    return lines


def _shape(table: str) -> str:
    return table.rsplit("_", 1)[0]


def markdown(summaries: list[Summary], targets: list[Target], figures: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [f"Run {meta['started']} on {meta['machine']}; repetitions: {meta['repetitions']} "
             f"(runs longer than {meta['long_run']} s are not repeated); load average {meta['load']}.", ""]
    lines += ["| source | table | rows | contender | wall s (median) | runs | M rows/s | MB/s | peak RSS MB "
              "| CPU s | lakeforge faster by | check |", "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    order = {c: i for i, c in enumerate(CONTENDERS)}
    by = {(s.source, s.table, s.contender): s for s in summaries}
    for s in sorted(summaries, key=lambda s: (s.source, s.rows, s.table, order.get(s.contender, 9))):
        lf = by.get((s.source, s.table, "lakeforge"))
        vs = f"{s.seconds / lf.seconds:.2f}x" if lf and s.contender != "lakeforge" else ""
        check = "ok" if s.ok else "**WRONG**"
        if s.problem:
            check += f" ({s.problem})"
        lines.append(f"| {s.source} | {s.table} | {s.rows:,} | {s.contender} | {s.seconds:.2f} | {s.runs} "
                     f"| {s.rows_per_s / 1e6:.2f} | {s.mb_per_s:.0f} | {s.peak_rss_mb:.0f} | {s.cpu_seconds:.1f} "
                     f"| {vs} "
                     f"| {check} |")
    if figures.get("incremental"):
        lines += ["", "Incremental (lakeforge, narrow table, cursor `updated_at`, MERGE by `id`):", "",
                  "| case | initial load s | no-op run s (process) | no-op in-run s | 1% changed: rows | 1% run s "
                  "| read the 1% s | ratio (CPU ratio) | newest 1%: run s | read s | ratio (CPU ratio) "
                  "| peak RSS MB | check |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        for key, inc in sorted(figures["incremental"].items()):
            lines.append(
                f"| {key} | {inc.get('initial_seconds', 0):.2f} | {inc.get('noop_seconds', 0):.2f} "
                f"| {inc.get('noop_run_seconds', 0):.2f} | {inc.get('changed_rows', 0):,} "
                f"| {inc.get('changed_seconds', 0):.2f} | {inc.get('spread_read_seconds', 0):.2f} "
                f"| {inc.get('spread_ratio') or 0:.2f}x ({inc.get('spread_cpu_ratio') or 0:.2f}x) "
                f"| {inc.get('newest_seconds', 0):.2f} | {inc.get('newest_read_seconds', 0):.2f} "
                f"| {inc.get('newest_ratio') or 0:.2f}x ({inc.get('newest_cpu_ratio') or 0:.2f}x) "
                f"| {inc.get('changed_peak_rss_mb', 0):.0f} "
                f"| {'ok' if inc.get('ok') else '**WRONG** ' + inc.get('problem', '')} |")
    if figures.get("cdc"):
        lines += _cdc_lines(figures["cdc"])
    lines += ["", "| target | case | value | met |", "|---|---|---|---|"]
    for t in targets:
        met = "n/a" if t.met is None else ("yes" if t.met else "**no**")
        lines.append(f"| {t.name} | {t.case} | {t.value} | {met} |")
    return "\n".join(lines) + "\n"


def render(folder: Path) -> Path:
    """Rebuild ``latest.md`` (and the summaries and targets in ``latest.json``) from the recorded runs."""
    js = folder / "latest.json"
    saved = json.loads(js.read_text(encoding="utf-8"))
    runs = [Run(**r) for r in saved["runs"]]
    mb = {(s["source"], s["table"]): s["mb_per_s"] * s["seconds"] for s in saved["summaries"]}
    summaries = summarise(runs, mb)
    targets = judge_targets(summaries, saved["figures"])
    return write(folder, runs, summaries, targets, saved["figures"], saved["meta"])[1]


def write(folder: Path, runs: list[Run], summaries: list[Summary], targets: list[Target],
          figures: dict[str, Any], meta: dict[str, Any]) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / "latest.json", folder / "latest.md"
    js.write_text(json.dumps({"meta": meta, "summaries": [asdict(s) for s in summaries],
                              "targets": [asdict(t) for t in targets], "figures": figures,
                              "runs": [asdict(r) for r in runs]}, indent=1, default=str), encoding="utf-8")
    md.write_text(markdown(summaries, targets, figures, meta), encoding="utf-8")
    return js, md
