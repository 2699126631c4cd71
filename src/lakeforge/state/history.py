"""Run history: a lake table in the lakehouse (``_lakeforge.runs``, in the lake's format and storage), one row
per event.

A run appends a ``running`` row for itself when it starts, a row per table when that table ends, and a
final row for itself. The newest row of a (run, table) pair is its state; a run whose process died keeps
``running`` and is shown as ``interrupted`` once no process holds the run lock.

The table's schema is versioned (the lake property ``lakeforge.state.version=N``: Delta keeps it in the
table description, since it rejects unknown table properties); ``MIGRATIONS[n]`` brings a
version ``n`` table to ``n + 1``, so later releases can change it without losing history.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from lakeforge.lake.base import INTERNAL, Lake

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.load.table import TableResult

RUNS = f"{INTERNAL}.runs"
VERSION = 2
VERSION_KEY = "lakeforge.state.version"
RUN_ROW = "*"


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
    reason: str | None = None
    """Why a table's load did more than its mode says (a full reload after a cursor change, a rewrite)."""
    recorded_at: dt.datetime | None = None
    """When the event was appended; orders events (a Delta scan has no order)."""

    @classmethod
    def of(cls, result: TableResult, run_id: str, started: dt.datetime, finished: dt.datetime) -> Event:
        """The history event of a table's load."""
        return cls(
            run_id,
            result.table,
            result.status,
            started,
            finished,
            result.source,
            result.source_table,
            result.mode,
            result.rows,
            round(result.seconds, 3),
            result.delta_version,
            result.error,
            result.reason,
        )


def _schema() -> pa.Schema:
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            ("run_id", pa.string()),
            ("table", pa.string()),
            ("status", pa.string()),
            ("started_at", ts),
            ("finished_at", ts),
            ("source", pa.string()),
            ("source_table", pa.string()),
            ("mode", pa.string()),
            ("rows", pa.int64()),
            ("seconds", pa.float64()),
            ("delta_version", pa.int64()),
            ("error", pa.string()),
            ("recorded_at", ts),
            ("reason", pa.string()),
        ]
    )


def _add_reason(lake: Lake) -> None:
    """Version 1 -> 2: the ``reason`` column (NULL for older events), in one commit (idempotent: a crash before
    the version property is written reruns it harmlessly)."""
    import pyarrow as pa

    old = lake.read(RUNS)
    if "reason" not in old.column_names:
        old = old.append_column("reason", pa.nulls(old.num_rows, pa.string()))
    new = old.select(_schema().names).cast(_schema())
    lake.write(
        RUNS,
        new.to_batches(),
        schema=_schema(),
        mode="overwrite",
        schema_mode="overwrite",
        properties={VERSION_KEY: "2"},
    )


MIGRATIONS: dict[int, Callable[[Lake], None]] = {1: _add_reason}
"""``MIGRATIONS[n]`` brings a version-``n`` runs table to version ``n + 1``."""


class RunHistory:
    def __init__(self, lake: Lake) -> None:
        self.lake = lake
        self._ready = False
        """The runs table was checked (and migrated) once by this RunHistory: a run records several events.
        The lake keeps its internal tables open between writes (Delta: no log re-read per event)."""
        self._pending: list[Event] = []
        """Events held for the next write (``defer``)."""

    def record(self, *events: Event, defer: bool = False) -> None:
        """Append ``events`` (with any held ones) in one commit. ``defer``: hold them for the next write instead,
        writing only the ones held before: a table's event goes in with the next table's or the run's final
        event, so a run of N tables makes N + 1 history commits, not N + 2 (each one a commit on object storage).
        A run killed by SIGKILL loses the held event from the history, as one killed between its table's commit
        and the history write always did: the table's commit carries its run id and position regardless."""
        held, self._pending = self._pending, list(events) if defer else []
        if not defer:
            held += events
        if not held:
            return
        try:
            self._write(held)
        except BaseException:
            self._pending = held + self._pending
            raise

    def _write(self, events: list[Event]) -> None:
        self._migrate()
        data = _to_arrow(tuple(events), dt.datetime.now(dt.UTC))
        append_retrying(
            lambda: self.lake.write(
                RUNS, data.to_batches(), schema=data.schema, mode="append", properties={VERSION_KEY: str(VERSION)}
            )
        )

    def _migrate(self) -> None:
        """Bring the runs table to ``VERSION`` on first use (nothing to do before its first event)."""
        if self._ready:
            return
        version = int(self.lake.properties(RUNS).get(VERSION_KEY) or VERSION)  # {} before the first event
        while version < VERSION:
            MIGRATIONS[version](self.lake)
            version += 1
        self._ready = True

    def events(self) -> list[dict[str, Any]]:
        if not self.lake.exists(RUNS):
            return []
        return list(self.lake.read(RUNS).to_pylist())

    def latest(self, *, limit: int = 20, lock_free: bool = True) -> list[dict[str, Any]]:
        """Newest state of each (run, table), newest runs first, at most ``limit`` runs."""
        state: dict[tuple[str, str], dict[str, Any]] = {}
        for event in sorted(self.events(), key=lambda e: e["recorded_at"]):
            if ":" in event["table"]:  # job:<name> and alert:<key> rows belong to lakeforge.ops
                continue
            state[(event["run_id"], event["table"])] = event  # the newest event wins
        run_ids = sorted({k[0] for k in state}, reverse=True)[:limit]
        rows = []
        for run_id in run_ids:
            run = state.get((run_id, RUN_ROW))
            if run and run["status"] == "running" and lock_free:
                run = {**run, "status": "interrupted"}
            tables = sorted(
                (v for k, v in state.items() if k[0] == run_id and k[1] != RUN_ROW), key=lambda e: e["started_at"]
            )
            rows.append({"run": run, "tables": tables})
        return rows


ATTEMPTS = 5


def append_retrying(write: Callable[[], None]) -> None:
    """An append to an internal table, made again when a concurrent commit (``lakeforge maintain``, or another
    process trimming the table, lake/iceberg/trim.py) won the race: the lost append landed nothing."""
    import time

    from lakeforge.errors import LakeError

    for attempt in range(ATTEMPTS):
        try:
            write()
            return
        except LakeError as exc:
            if not exc.transient or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)


def _to_arrow(events: tuple[Event, ...], now: dt.datetime) -> pa.Table:
    """The events as an Arrow table, through Arrow's JSON reader.

    ``pa.Table.from_pylist`` would make pyarrow import pandas (it checks every Python sequence for pandas
    objects), ~0.5 s of CPU in every ``lakeforge run`` (docs/benchmarks.md, Profiles).
    """
    import io
    import json

    import pyarrow.json as pajson

    from lakeforge.errors import shorten

    lines = []
    for event in events:
        row = {**asdict(event), "recorded_at": now}
        for key in ("error", "reason"):  # a 50 MB value quoted by a database stays out of the history
            row[key] = shorten(row[key]) if row[key] else row[key]
        lines.append(json.dumps({k: v.isoformat() if isinstance(v, dt.datetime) else v for k, v in row.items()}))
    options = pajson.ParseOptions(explicit_schema=_schema(), unexpected_field_behavior="error")
    data = "\n".join(lines).encode()
    read = pajson.ReadOptions(use_threads=False, block_size=max(len(data) + 1, 1 << 20))  # one block
    return pajson.read_json(io.BytesIO(data), parse_options=options, read_options=read)
