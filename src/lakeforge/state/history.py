"""Run history: a Delta table in the lakehouse (``_lakeforge/runs``), one row per event.

A run appends a ``running`` row for itself when it starts, a row per table when that table ends, and a
final row for itself. The newest row of a (run, table) pair is its state; a run whose process died keeps
``running`` and is shown as ``interrupted`` once no process holds the run lock.

The table's schema is versioned (``lakeforge.state.version=N`` in its description:
Delta rejects unknown table properties); ``MIGRATIONS[n]`` brings a
version ``n`` table to ``n + 1``, so later releases can change it without losing history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.lake.delta import INTERNAL, DeltaLake

if TYPE_CHECKING:
    import pyarrow as pa

RUNS = f"{INTERNAL}.runs"
VERSION = 1
VERSION_KEY = "lakeforge.state.version"
RUN_ROW = "*"
MIGRATIONS: dict[int, Callable[[DeltaLake], None]] = {}


@dataclass
class Event:
    run_id: str
    table: str
    """Lake table, or ``*`` for the run itself."""
    status: str
    """running, success, failed, skipped, unchanged, interrupted."""
    started_at: dt.datetime
    finished_at: dt.datetime | None = None
    source: str | None = None
    source_table: str | None = None
    mode: str | None = None
    rows: int | None = None
    seconds: float | None = None
    delta_version: int | None = None
    error: str | None = None
    recorded_at: dt.datetime | None = None
    """When the event was appended; orders events (a Delta scan has no order)."""


def _schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema([
        ("run_id", pa.string()), ("table", pa.string()), ("status", pa.string()),
        ("started_at", ts), ("finished_at", ts), ("source", pa.string()), ("source_table", pa.string()),
        ("mode", pa.string()), ("rows", pa.int64()), ("seconds", pa.float64()),
        ("delta_version", pa.int64()), ("error", pa.string()), ("recorded_at", ts),
    ])


class RunHistory:
    def __init__(self, lake: DeltaLake) -> None:
        self.lake = lake

    def record(self, *events: Event) -> None:
        import pyarrow as pa
        from deltalake import write_deltalake

        self._migrate()
        now = dt.datetime.now(dt.UTC)
        rows = [{**asdict(e), "recorded_at": now} for e in events]
        table = pa.Table.from_pylist(rows, schema=_schema())
        write_deltalake(
            self.lake.uri(RUNS),
            table,
            mode="append",
            description=f"{VERSION_KEY}={VERSION}",
            storage_options=self.lake.storage_options,
        )

    def _migrate(self) -> None:
        if not self.lake.exists(RUNS):
            return
        description = self.lake.table(RUNS).metadata().description or ""
        version = int(description.rpartition("=")[2] or VERSION)
        while version < VERSION:
            MIGRATIONS[version](self.lake)
            version += 1

    def events(self) -> list[dict[str, Any]]:
        if not self.lake.exists(RUNS):
            return []
        return list(self.lake.read(RUNS).to_pylist())

    def latest(self, *, limit: int = 20, lock_free: bool = True) -> list[dict[str, Any]]:
        """Newest state of each (run, table), newest runs first, at most ``limit`` runs."""
        state: dict[tuple[str, str], dict[str, Any]] = {}
        for event in sorted(self.events(), key=lambda e: e["recorded_at"]):
            state[(event["run_id"], event["table"])] = event  # the newest event wins
        run_ids = sorted({k[0] for k in state}, reverse=True)[:limit]
        rows = []
        for run_id in run_ids:
            run = state.get((run_id, RUN_ROW))
            if run and run["status"] == "running" and lock_free:
                run = {**run, "status": "interrupted"}
            tables = sorted((v for k, v in state.items() if k[0] == run_id and k[1] != RUN_ROW),
                            key=lambda e: e["started_at"])
            rows.append({"run": run, "tables": tables})
        return rows
