"""CDC mode: one log stream per source (one PostgreSQL slot, one binlog connection) for all its cdc tables.

Exactly once across several Delta tables, without a multi-table commit:

1. every lake table (current state and change log) commits its own log position with its data;
2. on restart each lake table skips the changes at or before its own position (a replayed batch is a no-op);
3. the log (slot / GTID) is acknowledged only up to the smallest position every table has committed, so
   nothing a table still needs is released by the server;
4. micro-batches end on source transaction boundaries, so a transaction touching several tables lands in
   each of them whole.

A table with no position yet (first run, or a table newly set to cdc) is loaded from a snapshot consistent
with a log position (PostgreSQL: exported snapshot of a temporary slot; MariaDB: consistent-snapshot
transaction and its binlog position as a GTID). When the log no longer holds what a table needs (lost slot,
purged binlog), the run fails naming the tables, and ``resnapshot=True`` reloads only those.
"""

from __future__ import annotations

import gc
import importlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from lakeforge.errors import ConfigError, SourceError
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.load.cdc_apply import (
    BatchEvent,
    Event,
    apply_batch,
    changes_name,
    checkpoint_for,
    merge_columns,
    state_schema,
)
from lakeforge.load.cdc_state import PendingState
from lakeforge.load.context import LoadContext
from lakeforge.load.killpoint import kill_at
from lakeforge.load.table import TableResult
from lakeforge.sources.base import Source, TablePlan, TableRef
from lakeforge.sources.cdc import CdcReader, Position, RowBatch, Txn
from lakeforge.sources.records import BadRecord

READERS = {
    "postgres": "lakeforge.sources.postgres.cdc:PostgresCdc",
    "mysql": "lakeforge.sources.mysql.cdc:MySQLCdc",
    "kafka": "lakeforge.sources.kafka.debezium:DebeziumCdc",
}


class CdcLost(SourceError):
    """The log no longer holds changes some tables need: they must be re-snapshotted."""


@dataclass
class CdcTable:
    ref: TableRef
    name: str
    """Current-state lake table ``bronze.<name>``; the change log is ``bronze.<name>_changes``."""
    plan: TablePlan
    state_at: int = -1
    log_at: int = -1
    texts: dict[int, str] = field(default_factory=dict)
    """Position text (GTID set, LSN) by value, to resume the log from."""
    events: list[Event | BatchEvent] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    """Malformed events read since the last commit, for ``quarantine.<table>``."""
    good_read: int = 0
    bad_read: int = 0
    """Events read this run, for ``max_bad_fraction``."""
    rows: int = 0
    notes: list[str] = field(default_factory=list)
    """What the run should say about this table (a snapshot read another way than asked)."""
    started: float = field(default_factory=time.perf_counter)
    pending: PendingState = field(default_factory=PendingState)
    """State changes of deferred micro-batches (load/cdc_state.py); only the commit thread touches it."""


def create_reader(source: Source, plans: list[TablePlan]) -> CdcReader:
    if not source.SUPPORTS_CDC or source.type_name not in READERS:
        raise ConfigError(f"source '{source.name}' ({source.type_name}) does not support mode: cdc")
    module, _, cls = READERS[source.type_name].partition(":")
    reader: CdcReader = getattr(importlib.import_module(module), cls)(source, plans)
    return reader


def _position(cp: Checkpoint | None, texts: dict[int, str]) -> int | None:
    if cp is None or cp.mode != "cdc" or "value" not in cp.position:
        return None
    texts[int(cp.position["value"])] = str(cp.position.get("text", ""))
    return int(cp.position["value"])


def load_cdc_source(
    ctx: LoadContext,
    source: Source,
    items: list[tuple[TableRef, Any, str]],
    *,
    follow: bool = False,
    stop: threading.Event | None = None,
    resnapshot: bool = False,
    idle_seconds: float = 1.0,
) -> list[TableResult]:
    """Snapshot what needs it, then apply the log until caught up (or, with ``follow``, until ``stop``)."""
    from lakeforge.lake.arrow_import import skip_pandas_check

    skip_pandas_check()  # micro-batches are built from Python lists
    plans = [source.describe(ref, options) for ref, options, _ in items]
    for plan in plans:
        merge_columns(plan)
    reader = create_reader(source, plans)
    tables = {ref: CdcTable(ref, name, plan) for (ref, _, name), plan in zip(items, plans, strict=True)}
    try:
        problems = reader.check()
        if problems:
            raise SourceError(source.name, "not ready for CDC:\n  - " + "\n  - ".join(str(p) for p in problems))
        oldest = reader.prepare()
        _snapshot_missing(ctx, reader, tables, oldest, resnapshot)
        _stream(ctx, reader, tables, follow=follow, stop=stop or threading.Event(), idle_seconds=idle_seconds)
    finally:
        reader.close()
    results = []
    for t in tables.values():
        version = ctx.lake.version(t.name) if ctx.lake.exists(t.name) else None
        results.append(
            TableResult(
                source.name,
                t.ref.qualified,
                t.name,
                "cdc",
                "success" if t.rows else "unchanged",
                t.rows,
                time.perf_counter() - t.started,
                version,
                reason="; ".join(t.notes) or None,
            )
        )
    return results


def _snapshot_missing(
    ctx: LoadContext, reader: CdcReader, tables: dict[TableRef, CdcTable], oldest: Position | None, resnapshot: bool
) -> None:
    need, lost = [], []
    for t in tables.values():
        state = _position(ctx.lake.checkpoint(t.name), t.texts)
        log = _position(ctx.lake.checkpoint(changes_name(t.name)), t.texts)
        t.state_at = -1 if state is None else state
        t.log_at = -1 if log is None else log
        if t.state_at < 0 or t.log_at < 0:  # never loaded, or stopped between the snapshot's two commits
            need.append(t)
        elif oldest is None or oldest.value > min(t.state_at, t.log_at):
            lost.append(t)
    if lost and not resnapshot:
        names = ", ".join(t.name for t in lost)
        raise CdcLost(
            reader.source.name,
            f"the {reader.LOG_NAME} log no longer holds changes that {names} need "
            "(replication slot lost or binlog purged); re-snapshot only those tables with: "
            f"lakeforge cdc resnapshot {reader.source.name}",
        )
    need += lost
    if not need:
        return
    with reader.snapshot([t.plan for t in need]) as snap:
        for t in need:
            _load_snapshot(ctx, reader, t, snap.position, snap.read(t.plan, ctx.run.batch_size), snap.shared)


def _load_snapshot(
    ctx: LoadContext, reader: CdcReader, t: CdcTable, position: Position, batches: Any, shared: dict[str, str]
) -> None:
    import pyarrow as pa

    from lakeforge.lake.schema import evolve
    from lakeforge.load.batches import stamp_and_cast, with_meta
    from lakeforge.load.cdc_apply import cdc_fields

    def with_cdc(batch: pa.RecordBatch) -> pa.RecordBatch:
        n = batch.num_rows
        extra = {
            "_lf_op": pa.array(["snapshot"] * n, pa.string()),
            "_lf_position": pa.array([position.text] * n, pa.string()),
            "_lf_position_value": pa.array([position.value] * n, pa.int64()),
            "_lf_deleted": pa.array([False] * n, pa.bool_()),
        }
        for key, array in extra.items():
            batch = batch.append_column(key, array)
        return batch

    def counted() -> Any:
        for batch in batches:
            t.rows += batch.num_rows
            ctx.on_rows(batch.num_rows)
            kill_at("cdc_snapshot", t.name)
            yield with_cdc(batch)

    schema = evolve(t.name, None, state_schema(t.plan)).schema
    noted = len(ctx.notes)
    distributed = _distributed_snapshot(ctx, reader, t, schema, position, shared)
    t.notes += ctx.notes[noted:]
    if distributed is None:
        ctx.lake.write(
            t.name,
            stamp_and_cast(counted(), schema, ctx.stamp),
            schema=schema,
            mode="overwrite",
            checkpoint=checkpoint_for(ctx, t.name, t.plan, position, None),
            schema_mode="overwrite",
        )
    else:
        rows, position = distributed  # MariaDB: the range tasks' own snapshot, at its own GTID
        t.rows += rows
    kill_at("cdc_snapshot_committed", t.name)
    log = changes_name(t.name)
    log_schema = evolve(log, ctx.lake.schema(log), with_meta(pa.schema([*t.plan.arrow_schema(), *cdc_fields()])))
    ctx.lake.write(
        log,
        iter(()),
        schema=log_schema.schema,
        mode="append",
        checkpoint=checkpoint_for(ctx, log, t.plan, position, None),
    )
    t.state_at = t.log_at = position.value
    t.texts[position.value] = position.text


def _distributed_snapshot(
    ctx: LoadContext, reader: CdcReader, t: CdcTable, schema: Any, position: Position, shared: dict[str, str]
) -> tuple[int, Position] | None:
    """``engine: {type: ray}`` (or any extractor): a large table's snapshot read by range tasks sharing one
    snapshot (docs/scale-out.md): the reader's own at ``position`` (PostgreSQL), or one the tasks take together
    at a log position of their own (MariaDB). Returns the rows and that position; None when read in this
    process."""
    from lakeforge.sources.sql import SqlSource

    extractor, source = ctx.extractor, reader.source
    if extractor is None or not shared or not isinstance(source, SqlSource):
        return None
    if extractor.refuses(ctx.lake, source, t.plan, ctx.run) is not None:
        return None
    used = [position]

    def stamp(at: dict[str, Any]) -> tuple[Checkpoint, dict[str, Any]]:
        used[0] = reader.snapshot_position(at) or position
        constants = {
            "_lf_op": "snapshot",
            "_lf_position": used[0].text,
            "_lf_position_value": used[0].value,
            "_lf_deleted": False,
        }
        return checkpoint_for(ctx, t.name, t.plan, used[0], None), constants

    rows = extractor.load_snapshot(ctx, source, t.plan, t.name, schema=schema, shared=shared, stamp=stamp)
    return None if rows is None else (rows, used[0])


def _stream(
    ctx: LoadContext,
    reader: CdcReader,
    tables: dict[TableRef, CdcTable],
    *,
    follow: bool,
    stop: threading.Event,
    idle_seconds: float,
) -> None:
    start = min(min(t.state_at, t.log_at) for t in tables.values())
    texts = {v: text for t in tables.values() for v, text in t.texts.items()}
    ahead = sorted({v for t in tables.values() for v in (t.state_at, t.log_at) if v > start})
    reader.resume_points([Position(v, texts.get(v, "")) for v in ahead])
    pending = 0
    first_at: float | None = None
    last: Txn | None = None
    deferred: Txn | None = None  # the last micro-batch whose state MERGE waits (load/cdc_state.py)
    seq = 0
    committing = _Committer(ctx, reader, tables)
    _GC.raise_threshold()
    try:
        for txn in reader.changes(Position(start, texts.get(start, "")), idle_seconds):
            if txn is not None:
                seq = _buffer(reader, tables, txn, seq)
                last = txn
                pending += txn.count()
                first_at = first_at if first_at is not None else time.monotonic()
            committing.settle(wait=False)
            full = pending >= ctx.run.cdc_commit_changes
            due = first_at is not None and (full or time.monotonic() - first_at >= ctx.run.cdc_commit_seconds)
            finished = stop.is_set() or (txn is None and not follow)
            if last is None and deferred is not None and (finished or txn is None):
                committing.submit(deferred, backlog=False)  # caught up or stopping: MERGE what waits
                committing.settle(wait=True)
                deferred = None
            if last is not None and (due or finished):
                backlog = full and not finished
                committing.submit(last, backlog=backlog)
                if not full:  # only a backlog (a full micro-batch) overlaps its commit with reading on
                    committing.settle(wait=True)
                deferred = last if backlog else None
                pending, first_at, last = 0, None, None
            if finished:
                committing.settle(wait=True)
                return
    finally:
        committing.close()
        gc.unfreeze()  # a failed read leaves buffered changes frozen by _buffer: hand them back to the collector
        _GC.restore()


@dataclass
class _Work:
    """What one table commits in a micro-batch, taken from it when the micro-batch is handed over."""

    table: CdcTable
    plan: TablePlan
    events: list[Event | BatchEvent]
    bad: list[BadRecord]
    read: tuple[int, int]
    """Good and malformed events read this run so far (for ``max_bad_fraction``)."""
    backlog: bool
    """A full micro-batch with more to read: its state MERGE may wait for the next (load/cdc_state.py)."""


class _Committer:
    """Commits micro-batches on one worker thread while the log is read on: decoding (Python) overlaps the
    Delta writes and MERGEs (native code that lets go of the GIL), which pays on two cores while a backlog is
    read (``cdc_commit_changes`` reached). A micro-batch due by time (a follower that has caught up) is
    waited for at once, as the reading thread would only compete with it for the GIL (on a busy machine that
    lengthened the commit-to-visible delay). One micro-batch commits at a time, in order, each table as
    before (see :func:`_flush`); the log is acknowledged from the reading thread (a PostgreSQL replication
    connection is not shared between threads), once the commit has landed. A micro-batch handed over while
    the previous one commits waits for it first."""

    def __init__(self, ctx: LoadContext, reader: CdcReader, tables: dict[TableRef, CdcTable]) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.ctx, self.reader, self.tables = ctx, reader, tables
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="cdc-commit")
        self.inflight: tuple[Any, Txn] | None = None

    def submit(self, last: Txn, *, backlog: bool) -> None:
        self.settle(wait=True)
        work = []
        for t in self.tables.values():
            work.append(_Work(t, t.plan, t.events, t.bad, (t.good_read, t.bad_read), backlog))
            t.events, t.bad = [], []
        self.inflight = (self.pool.submit(_flush, self.ctx, self.reader, work, last), last)

    def settle(self, *, wait: bool) -> None:
        """Once the micro-batch in flight has committed (``wait``: wait for it), acknowledge it; its error,
        if it failed, is raised here."""
        if self.inflight is None or not (wait or self.inflight[0].done()):
            return
        future, last = self.inflight
        self.inflight = None
        future.result()
        tables = self.tables.values()
        self.reader.ack(Position(min(min(t.state_at, t.log_at) for t in tables), last.position.text))

    def close(self) -> None:
        """Wait for a commit in flight (a failed read still lets it land, as before); no acknowledgement."""
        self.pool.shutdown(wait=True)


class _Collections:
    """Fewer young-generation collections while log changes stream in: decoding makes a list or tuple per
    row, and with the default threshold (700 allocations) the collector ran every few rows (measured: ~0.5 us
    of ~3 us per PostgreSQL row). Buffered rows hold no reference cycles. Counted, as several sources stream
    at once on threads and the process-wide threshold must come back only when the last one ends."""

    YOUNG = 100_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = gc.get_threshold()

    def raise_threshold(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved = gc.get_threshold()
                gc.set_threshold(max(self._saved[0], self.YOUNG), *self._saved[1:])
            self._users += 1

    def restore(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                gc.set_threshold(*self._saved)


_GC = _Collections()


def _buffer(reader: CdcReader, tables: dict[TableRef, CdcTable], txn: Txn, seq: int) -> int:
    """Queue ``txn``'s changes on their tables: once per change, or once per row batch (the readers' usual
    form). A transaction's changes mostly hit one table, so the table, its plan and its column names are
    looked up again only when the table changes."""
    position, commit_time = txn.position, txn.commit_time
    last_ref: TableRef | None = None
    t: CdcTable | None = None
    names: set[str] = set()
    buffered = seq
    for change in txn.changes:
        if change.table is not last_ref:
            last_ref, t = change.table, tables.get(change.table)
            if t is not None and position.value <= min(t.state_at, t.log_at):
                t = None
            if t is not None:
                t.plan = reader.plans.get(t.ref, t.plan)  # the reader may have replanned (a type changed)
                names = {c.name for c in t.plan.columns}
        if t is None:
            continue
        if isinstance(change, RowBatch):
            if not names.issuperset(change.columns):
                t.plan = reader.replan(t.ref, list(change.columns))
                names = {c.name for c in t.plan.columns}
            count = len(change.ops)
            t.good_read += count
            t.events.append(BatchEvent(change, position, commit_time, seq + 1))
            seq += count
            kill_at("cdc_buffer", t.name)
            continue
        if change.row is not None and not change.row.keys() <= names:
            t.plan = reader.replan(t.ref, list(change.row))
            names = {c.name for c in t.plan.columns}
        seq += 1
        t.good_read += 1
        t.events.append(Event(change, position, commit_time, seq))
        kill_at("cdc_buffer", t.name)
    for ref, record in txn.bad:
        t = tables.get(ref)
        if t is not None and position.value > min(t.state_at, t.log_at):
            t.bad.append(record)
            t.bad_read += 1
    if seq != buffered:
        # Buffered changes hold no reference cycles and live until the next flush: keep the cyclic garbage
        # collector from walking them again and again (measured: ~40% of the decoding CPU); _flush unfreezes.
        gc.freeze()
    return seq


def _flush(ctx: LoadContext, reader: CdcReader, work: list[_Work], last: Txn) -> None:
    try:
        for w in work:
            t = w.table
            if last.position.value <= min(t.state_at, t.log_at):
                continue
            kill_at("cdc_flush", t.name)
            if w.bad:
                _quarantine(ctx, reader, w)
            applied, merged = apply_batch(
                ctx,
                reader,
                w.plan,
                t.name,
                w.events,
                t.log_at,
                t.state_at,
                last.position,
                last.commit_time,
                t.pending,
                defer=w.backlog,
            )
            t.rows += applied
            ctx.on_rows(applied)
            t.log_at = last.position.value
            if merged:
                t.state_at = last.position.value
            else:
                kill_at("cdc_state_deferred", t.name)
            kill_at("cdc_committed", t.name)
    finally:
        gc.unfreeze()  # what _buffer froze goes back to the collector (the events are released by now)


def _quarantine(ctx: LoadContext, reader: CdcReader, w: _Work) -> None:
    """Commit the table's malformed events to ``quarantine.<table>`` before the commit that moves past them
    (a rerun after a crash in between reads them again and writes only those not there yet); fails the
    table instead when more than ``max_bad_fraction`` of the events read this run are malformed."""
    from lakeforge.load.quarantine import quarantine_table, write_quarantine

    t = w.table
    limit = w.plan.options.max_bad_fraction
    if limit is None:
        limit = reader.source.config.defaults.max_bad_fraction
    good_read, bad_read = w.read
    read = good_read + bad_read
    if limit is not None and read and bad_read / read > limit:
        raise SourceError(
            reader.source.name,
            f"table {t.name}: {bad_read} of {read} events ({bad_read / read:.1%}) are malformed, more than "
            f"max_bad_fraction {limit}: nothing more was committed (fix the input or raise the threshold)",
        )
    written = write_quarantine(
        ctx.lake, t.name, w.bad, source=reader.source.name, run_id=ctx.stamp.run_id, for_sequence=None
    )
    kill_at("quarantined", t.name)
    if written:
        ctx.note(f"{written} malformed event(s) quarantined in {quarantine_table(t.name)}")
