"""The operations view: recent runs, table freshness, data-quality checks, CDC lag and lineage."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
from typing import TYPE_CHECKING, Any, Protocol

from lakeforge.errors import LakeforgeError
from lakeforge.serve.web.render import text

if TYPE_CHECKING:
    from lakeforge.lake.base import TableInfo
    from lakeforge.load.cdc_ops import CdcSourceStatus
    from lakeforge.transform.lineage import Lineage

_GOOD = {"success", "pass", "published", "unchanged"}
_BAD = {"failed", "fail", "error"}


class OpsData(Protocol):
    """What the view reads; :class:`lakeforge.Project` provides it."""

    def runs(self, limit: int = 20) -> list[dict[str, Any]]: ...
    def tables(self, layers: list[str] | None = None) -> list[TableInfo]: ...
    def checks(self) -> list[dict[str, Any]]: ...
    def lineage(self, table: str | None = None) -> Lineage: ...
    def cdc_status(self, source: str | None = None) -> list[CdcSourceStatus]: ...


def section(title: str, inner: str, section_id: str) -> str:
    return f'<section class="tile w3" id="{section_id}"><h2>{html.escape(title)}</h2>{inner}</section>'


def rows_table(rows: list[dict[str, Any]], columns: list[str] | None = None, status: str = "status") -> str:
    if not rows:
        return '<p class="muted">nothing yet</p>'
    columns = columns or list(rows[0])
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = ""
    for row in rows:
        cells = ""
        for c in columns:
            value = text(row.get(c))
            cls = ""
            if c == status:
                cls = ' class="ok"' if value in _GOOD else (' class="bad"' if value in _BAD else ' class="warn"')
            cells += f"<td{cls}>{html.escape(value)}</td>"
        body += f"<tr>{cells}</tr>"
    return f'<table class="data"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def guarded(title: str, section_id: str, build: Any) -> str:
    """A section whose data could not be read shows why; the rest of the page still renders."""
    try:
        return section(title, build(), section_id)
    except LakeforgeError as exc:
        return section(title, f'<div class="tile-error">{html.escape(str(exc))}</div>', section_id)


def runs(data: OpsData) -> list[dict[str, Any]]:
    """One row per run: its summary and how many tables it loaded (naming the failed ones)."""
    rows = []
    for item in data.runs(20):
        run, tables = item.get("run") or {}, item.get("tables") or []
        failed = [t.get("table") for t in tables if t.get("status") == "failed"]
        rows.append(
            {
                "run": run.get("run_id"),
                "status": run.get("status"),
                "started": run.get("started_at"),
                "seconds": run.get("seconds"),
                "rows": run.get("rows"),
                "tables": len(tables),
                "failed tables": ", ".join(str(f) for f in failed),
                "error": run.get("error"),
            }
        )
    return rows


def freshness(data: OpsData) -> str:
    now = dt.datetime.now(dt.UTC)
    rows = []
    for info in data.tables():
        age = ""
        if info.last_load:
            seconds = (now - dt.datetime.fromisoformat(info.last_load)).total_seconds()
            age = _age(seconds)
        rows.append(
            {
                "table": info.name,
                "rows": info.rows,
                "version": info.version,
                "last write": info.last_load,
                "age": age,
                "mode": info.mode,
            }
        )
    return rows_table(rows)


def _age(seconds: float) -> str:
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def lineage(data: OpsData) -> str:
    graph = data.lineage()
    if not graph.edges:
        return '<p class="muted">no models</p>'
    inputs: dict[str, list[str]] = {}
    for upstream, model in graph.edges:
        inputs.setdefault(model, []).append(upstream)
    rows = [
        {"model": m, "built from": ", ".join(sorted(ups)), "file": graph.files.get(m, "")}
        for m, ups in sorted(inputs.items())
    ]
    return rows_table(rows)


def cdc(data: OpsData) -> str:
    rows = []
    for status in data.cdc_status():
        for table in status.tables:
            rows.append({"source": status.source, **dataclasses.asdict(table), "error": status.error})
    return rows_table(rows) if rows else '<p class="muted">no mode: cdc tables</p>'


def ops_page(data: OpsData) -> str:
    checks_cols = ["model", "check", "status", "severity", "failing_rows", "checked_at", "message"]
    return "".join(
        [
            guarded("Recent runs", "runs", lambda: rows_table(runs(data))),
            guarded("Table freshness", "freshness", lambda: freshness(data)),
            guarded(
                "Data-quality checks (newest result of each)",
                "checks",
                lambda: rows_table(data.checks(), _present(data.checks(), checks_cols)),
            ),
            guarded("CDC lag", "cdc", lambda: cdc(data)),
            guarded("Lineage", "lineage", lambda: lineage(data)),
        ]
    )


def _present(rows: list[dict[str, Any]], wanted: list[str]) -> list[str] | None:
    if not rows:
        return None
    cols = [c for c in wanted if c in rows[0]]
    return cols or None
