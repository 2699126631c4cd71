"""Record sources (files, streams, HTTP, Python) into bronze: ``append`` (default), ``full`` or ``incremental``.

The source's chunks are gathered into *commit intervals*. At a safe point (a chunk carrying a position), once
``run.commit_bytes`` of Arrow data wait (or, following a stream, ``run.stream_commit_seconds`` /
``run.stream_commit_records`` have passed), the interval is committed: its bad records to
``quarantine.<table>`` first (idempotently, see load/quarantine.py), then its rows in one bronze commit that
carries the position (and the cursor). A bounded read ends with one last commit, so a small input is one
commit per run. A crash before a bronze commit leaves the previous position in the lake: the next run reads
the same records again from there, so nothing is lost and nothing is loaded twice.

- ``append``: rows are appended; the next run starts at the committed position.
- ``full``: the read starts from nothing and the run's first commit replaces the table.
- ``incremental``: rows past the committed cursor (filtered in Arrow unless the source does it,
  ``SUPPORTS_CURSOR``) are merged by ``merge_key``/``primary_key``; the position advances too.

``max_bad_fraction`` is checked before every commit over the records this run has read: above it the table
fails and the interval is not committed (neither its rows nor its bad records).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConfigError, SourceError
from lakeforge.lake.checkpoint import Checkpoint, encode_value
from lakeforge.lake.schema import evolve
from lakeforge.load import killpoint
from lakeforge.load.batches import with_meta
from lakeforge.load.context import LoadContext
from lakeforge.load.cursor_filter import CursorFilter
from lakeforge.load.interval_files import IntervalFiles, Staged, interval_schema, same_schema
from lakeforge.load.quarantine import quarantine_table, write_quarantine
from lakeforge.sources.base import TablePlan
from lakeforge.sources.records import BadRecord, Chunk, Position, ReadRequest, RecordSource

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class _Interval:
    batches: list[pa.RecordBatch] = field(default_factory=list)
    bad: list[BadRecord] = field(default_factory=list)
    nbytes: int = 0
    records: int = 0
    started: float = field(default_factory=time.monotonic)
    position: Position | None = None
    staged: Staged | None = None
    """Its rows being encoded into staged files as they arrive (load/interval_files.py)."""

    def add(self, chunk: Chunk) -> None:
        if chunk.batch is not None and chunk.batch.num_rows:
            self.batches.append(chunk.batch)
            self.nbytes += chunk.batch.nbytes
            self.records += chunk.batch.num_rows
            if self.staged is not None:
                self.staged.add(chunk.batch)
        self.bad += chunk.bad
        self.records += len(chunk.bad)


@dataclass
class _Totals:
    good: int = 0
    bad: int = 0
    commits: int = 0


def load_records(ctx: LoadContext, source: RecordSource, plan: TablePlan, name: str, mode: str) -> bool:
    """Read ``source``'s table into ``name``; True when something was committed."""
    if mode == "cdc":
        raise ConfigError(f"table {name}: mode cdc needs a database log; source type {source.type_name} has none")
    previous = ctx.lake.checkpoint(name)
    start = dict(previous.position) if previous is not None and mode != "full" else {}
    cursor = _cursor_filter(source, plan, previous if mode != "full" else None)
    keys = _merge_keys(plan, name) if mode == "incremental" else []
    request = ReadRequest(start, ctx.run.batch_size, follow=ctx.follow and source.SUPPORTS_STREAM, stop=ctx.stop)
    totals = _Totals()
    commits = _Committer(ctx, source, plan, name, mode, totals, cursor, keys, start, background=not request.follow)
    interval = commits.new_interval()
    try:
        try:
            for chunk in prefetched(source.read(plan, request)):
                if chunk.batch is not None:
                    chunk = Chunk(_lake_names(chunk.batch, source, name), chunk.bad, chunk.position)
                if chunk.batch is not None and cursor is not None and chunk.batch.num_rows:
                    totals.good += chunk.batch.num_rows
                    chunk = Chunk(cursor.apply(chunk.batch), chunk.bad, chunk.position)
                elif chunk.batch is not None:
                    totals.good += chunk.batch.num_rows
                totals.bad += len(chunk.bad)
                interval.add(chunk)
                if chunk.position is not None:
                    interval.position = chunk.position
                    if _due(ctx, interval, request.follow):
                        _check_bad(source, plan, name, totals)
                        commits.submit(interval)
                        interval = commits.new_interval()
            commits.wait()
        finally:
            commits.close()
        if interval.records and interval.position is None:
            raise SourceError(source.name, f"table {plan.ref.name}: the read ended without a position (a source bug)")
        if interval.position is not None:
            _check_bad(source, plan, name, totals)
            commits.submit(interval, now=True)
    finally:
        if interval.staged is not None:
            interval.staged.abort()  # files no commit took: a failure, or nothing to commit
    if totals.bad:
        ctx.note(f"{totals.bad} bad record(s) quarantined in {quarantine_table(name)}")
    return totals.commits > 0


class _Committer:
    """Commits the intervals in order, one at a time. On a bounded read (``background``) a commit runs in its
    own thread while the next interval is gathered (the parse goes on during the lake write); the next
    commit waits for it, so at most one interval is being written and one gathered. The source is told of a
    commit (``acknowledge``) on the loader's thread, once it has landed."""

    def __init__(
        self,
        ctx: LoadContext,
        source: RecordSource,
        plan: TablePlan,
        name: str,
        mode: str,
        totals: _Totals,
        cursor: CursorFilter | None,
        keys: list[str],
        committed: Position,
        *,
        background: bool,
    ) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.args = (ctx, source, plan, name, mode)
        self.totals, self.cursor, self.keys, self.committed = totals, cursor, keys, committed
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="commit") if background else None
        self.running: tuple[Any, Position] | None = None
        # a bounded read on a lake that commits staged files; a followed stream's small intervals keep one writer
        staged = background and mode != "incremental" and ctx.lake.STAGED_FULL_LOAD
        self.files = IntervalFiles(ctx, plan, name, replace_first=mode == "full") if staged else None

    def new_interval(self) -> _Interval:
        return _Interval(staged=self.files.start() if self.files is not None else None)

    def submit(self, interval: _Interval, *, now: bool = False) -> None:
        self.wait()
        position = interval.position or {}
        cursor = _cursor_state(self.cursor)  # now: the read goes on past this interval's rows
        if self.pool is None or now:
            self._done(self._commit(interval, self.committed, cursor), position)
            return
        self.running = (self.pool.submit(self._commit, interval, self.committed, cursor), position)

    def wait(self) -> None:
        if self.running is not None:
            future, position = self.running
            self.running = None
            self._done(future.result(), position)

    def close(self) -> None:
        """Let a running commit finish (its error, if any, is not raised here: the read's error is)."""
        if self.pool is not None:
            self.pool.shutdown(wait=True)

    def _commit(self, interval: _Interval, committed: Position, cursor: dict[str, Any] | None) -> bool:
        ctx, source, plan, name, mode = self.args
        try:
            return _commit(
                ctx, source, plan, name, mode, interval, self.totals, cursor, self.keys, committed, self.files
            )
        finally:
            if interval.staged is not None:
                interval.staged.abort()  # files not handed to the commit (written the usual way, or a failure)

    def _done(self, landed: bool, position: Position) -> None:
        if landed:
            self.committed = position
            self.args[1].acknowledge(self.args[2], position)


def prefetched(chunks: Iterator[Chunk], depth: int = 4) -> Iterator[Chunk]:
    """``chunks`` read ahead by a thread (at most ``depth`` waiting), so the source parses the next records
    while the lake writes a commit interval; the source's exception is raised here, in order."""
    import queue
    import threading

    ahead: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)
    done = threading.Event()

    def put(item: tuple[str, Any]) -> bool:
        while not done.is_set():
            try:
                ahead.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def run() -> None:
        try:
            for chunk in chunks:
                if not put(("chunk", chunk)):
                    return
            put(("end", None))
        except BaseException as exc:  # handed to the consumer, which raises it
            put(("error", exc))

    thread = threading.Thread(target=run, name="record-reader", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ahead.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        done.set()
        thread.join(timeout=5)


def _lake_names(batch: pa.RecordBatch, source: RecordSource, name: str) -> pa.RecordBatch:
    from lakeforge.lake.naming import lake_column_names

    data = [n for n in batch.schema.names if n not in source.META_COLUMNS]
    renamed = dict(zip(data, lake_column_names(data, table=name), strict=True))
    if all(k == v for k, v in renamed.items()):
        return batch
    return batch.rename_columns([renamed.get(n, n) for n in batch.schema.names])


def _due(ctx: LoadContext, interval: _Interval, follow: bool) -> bool:
    if interval.nbytes >= ctx.run.commit_bytes:
        return True
    if not follow:
        return False
    return (
        interval.records >= ctx.run.stream_commit_records
        or time.monotonic() - interval.started >= ctx.run.stream_commit_seconds
    )


def _check_bad(source: RecordSource, plan: TablePlan, name: str, totals: _Totals) -> None:
    limit = plan.options.max_bad_fraction
    if limit is None:
        limit = source.config.defaults.max_bad_fraction
    read = totals.good + totals.bad
    if limit is None or not read or totals.bad / read <= limit:
        return
    raise SourceError(
        plan.source,
        f"table {name}: {totals.bad} of {read} records ({totals.bad / read:.1%}) are malformed, more than "
        f"max_bad_fraction {limit}: nothing more was committed (fix the input or raise the threshold)",
    )


def _commit(
    ctx: LoadContext,
    source: RecordSource,
    plan: TablePlan,
    name: str,
    mode: str,
    interval: _Interval,
    totals: _Totals,
    cursor: dict[str, Any] | None,
    keys: list[str],
    committed: Position,
    staged: IntervalFiles | None,
) -> bool:
    """Commit one interval (quarantine, then bronze); False when there was nothing to commit.

    ``staged``: the rows are encoded by several Parquet writers (load/staged.py, as they were read when
    ``interval.staged`` has them) and join the table through ``Lake.commit_files`` with the checkpoint, when
    the table's schema does not change (a new column or type goes through ``Lake.write``, which evolves the
    table's schema)."""
    position = interval.position or {}
    overwrite = mode == "full" and totals.commits == 0
    if not interval.batches and not interval.bad and position == committed and not overwrite:
        return False
    sequence = ctx.lake.next_sequence(name)
    if interval.bad:
        write_quarantine(
            ctx.lake, name, interval.bad, source=source.name, run_id=ctx.stamp.run_id, for_sequence=sequence
        )
        killpoint.kill_at("quarantined", name)
    lake_schema = None if overwrite else ctx.lake.schema(name)
    evolution = evolve(name, lake_schema, with_meta(interval_schema(name, plan, interval.batches)))
    checkpoint = Checkpoint(
        run_id=ctx.stamp.run_id,
        mode=mode,
        sequence=sequence,
        cursor=cursor,
        position=position,
        source=source.name,
        source_table=plan.ref.qualified,
    )
    if evolution.rewrite and lake_schema is not None:
        from lakeforge.load.incremental import rewrite_widened

        rewrite_widened(ctx, name, evolution.schema, ctx.lake.checkpoint(name))
        ctx.note(evolution.rewrite_reason())
        checkpoint = Checkpoint(**{**checkpoint.__dict__, "sequence": ctx.lake.next_sequence(name)})
    from lakeforge.load.full import stream

    if mode == "incremental" and lake_schema is not None:
        rows = stream(ctx, name, _batches(interval), evolution.schema)
        counts = ctx.lake.merge(name, rows, schema=evolution.schema, keys=keys, checkpoint=checkpoint)
        if not any(int(v or 0) for v in counts.values()):
            ctx.lake.commit_checkpoint(name, checkpoint, evolution.schema)
    elif staged and same_schema(ctx.lake.schema(name) if lake_schema is None else lake_schema, evolution.schema):
        from lakeforge.load.staged import write_staged

        written = interval.staged.files(evolution.schema) if interval.staged is not None else None
        if written is None:
            rows = stream(ctx, name, _batches(interval), evolution.schema, for_staged=True)
            files = write_staged(ctx.lake, name, rows, schema=evolution.schema)
        else:
            files, count = written
            interval.batches.clear()
            ctx.on_rows(count)
        killpoint.kill_at("files", name)  # crash test: the interval's files written, its commit not made
        ctx.lake.commit_files(
            name, files, schema=evolution.schema, mode="overwrite" if overwrite else "append", checkpoint=checkpoint
        )
    else:
        ctx.lake.write(
            name,
            stream(ctx, name, _batches(interval), evolution.schema),
            schema=evolution.schema,
            mode="overwrite" if overwrite else "append",
            checkpoint=checkpoint,
            schema_mode="overwrite" if overwrite else "merge",
        )
    if staged is not None:
        staged.committed(evolution.schema)
    totals.commits += 1
    killpoint.kill_at("interval_committed", name)
    return True


def _batches(interval: _Interval) -> Iterator[pa.RecordBatch]:
    while interval.batches:
        yield interval.batches.pop(0)  # the writer's copy is the only one left: memory goes down as it writes


def _cursor_filter(source: RecordSource, plan: TablePlan, previous: Checkpoint | None) -> CursorFilter | None:
    from lakeforge.lake.naming import normalize

    if not plan.options.cursor or source.SUPPORTS_CURSOR:
        return None
    columns = [normalize(c) for c in plan.options.cursor]
    lower = None
    if previous is not None and previous.cursor and previous.cursor.get("columns") == columns:
        lower = previous.cursor_values()
    return CursorFilter(columns, lower, highest=lower)


def _cursor_state(cursor: CursorFilter | None) -> dict[str, Any] | None:
    if cursor is None or cursor.highest is None:
        return None
    return {"columns": cursor.columns, "values": [encode_value(v) for v in cursor.highest]}


def _merge_keys(plan: TablePlan, name: str) -> list[str]:
    from lakeforge.lake.naming import normalize

    keys = plan.options.merge_key or plan.options.primary_key
    if not keys:
        raise ConfigError(
            f"table {name}: mode incremental merges by key: set tables.{plan.ref.name}.merge_key "
            f"(or primary_key) in lakeforge.yml"
        )
    return [normalize(k) for k in keys]
