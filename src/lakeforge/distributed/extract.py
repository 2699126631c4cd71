"""The driver of a distributed full load: one snapshot, range tasks, ONE commit of their files.

1. Open the source's :class:`Snapshot` (and read the range bounds inside it).
2. Submit one :class:`RangeTask` per range to the executor; each writes Parquet files into the table's
   staging folder and returns their names.
3. When every range has returned, commit all the files together with the table's checkpoint
   (``Lake.commit_files``): the table changes in one step or not at all.
4. Delete the files of this load that were not committed (a killed attempt's partial file; everything,
   when the load failed). Files nobody deletes (the driver itself killed) are invisible: no commit names them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from lakeforge.distributed.executor import Executor
from lakeforge.distributed.ranges import range_queries
from lakeforge.distributed.snapshot import NotShared, Snapshot, snapshot_class
from lakeforge.distributed.task import RangeFailed, RangeResult, RangeTask
from lakeforge.errors import ConversionError, LakeError, LakeforgeError, SourceError
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.files import discard_orphans
from lakeforge.load.full import fetch_rows, plan_evolution

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.config.models import RunConfig
    from lakeforge.lake.base import Lake
    from lakeforge.load.context import LoadContext
    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.sql import SqlSource

FILE_ROWS = 1_000_000
"""Rows per Parquet file a task writes before starting the next (a task's range may be much larger)."""


class DistributedExtractor:
    """Full loads of large tables as range tasks on an :class:`Executor`."""

    def __init__(self, executor: Executor, *, retries: int = 3, snapshot_timeout: float = 120.0) -> None:
        self.executor = executor
        self.retries = retries
        self.snapshot_timeout = snapshot_timeout
        self.results: list[RangeResult] = []
        """The last load's task results (rows, seconds, peak RSS per worker): the benchmark reads them."""

    def refuses(self, lake: Lake, source: SqlSource, plan: TablePlan, run: RunConfig) -> str | None:
        """Why this table loads in one process instead (None: it is distributed)."""
        if plan.estimated_rows < run.parallel_min_rows:
            return f"estimated {plan.estimated_rows} rows, under run.parallel_min_rows"
        if not lake.SUPPORTS_COMMIT_FILES:
            return f"lake format {lake.FORMAT} cannot commit files written by workers"
        if snapshot_class(source.type_name) is None:
            return f"source type {source.type_name} has no shared snapshot for range tasks"
        return None

    def load_full(self, ctx: LoadContext, source: SqlSource, plan: TablePlan, name: str) -> Checkpoint:
        cls = snapshot_class(source.type_name)
        assert cls is not None
        schema = plan_evolution(name, ctx.lake.schema(name), plan).schema
        token = _token(ctx)
        snapshot = cls(source, token.replace("-", "_"), timeout=self.snapshot_timeout)

        def checkpoint() -> Checkpoint:
            return Checkpoint(
                run_id=ctx.stamp.run_id,
                mode="full",
                sequence=ctx.lake.next_sequence(name),
                position=dict(snapshot.position),
                source=source.name,
                source_table=plan.ref.qualified,
            )

        return self._load(ctx, source, plan, name, schema, snapshot, token, lambda _: (checkpoint(), {}))

    def load_snapshot(
        self,
        ctx: LoadContext,
        source: SqlSource,
        plan: TablePlan,
        name: str,
        *,
        schema: pa.Schema,
        shared: dict[str, str],
        stamp: Callable[[dict[str, Any]], tuple[Checkpoint, dict[str, Any]]],
    ) -> int | None:
        """A CDC initial snapshot read by range tasks that share one snapshot with the log: the log reader's own
        (``shared``: PostgreSQL's exported snapshot) or one they take together at a log position (MariaDB's
        read-lock dance). ``stamp(position)`` gives the checkpoint and the CDC columns' values once the
        snapshot is open (``position``: the snapshot's own log position; empty when it is the reader's).
        Returns the rows loaded, or None when this source cannot share a CDC snapshot (load it in one process).
        """
        cls = snapshot_class(source.type_name)
        token = _token(ctx)
        snapshot = cls.adopt(source, token.replace("-", "_"), shared, timeout=self.snapshot_timeout) if cls else None
        if snapshot is None:
            return None
        try:
            self._load(ctx, source, plan, name, schema, snapshot, token, stamp)
        except NotShared:
            return None
        return sum(r.rows for r in self.results)

    def _load(
        self,
        ctx: LoadContext,
        source: SqlSource,
        plan: TablePlan,
        name: str,
        schema: pa.Schema,
        snapshot: Snapshot,
        token: str,
        stamp: Callable[[dict[str, Any]], tuple[Checkpoint, dict[str, Any]]],
    ) -> Checkpoint:
        folder = ctx.lake.staging(name, schema)
        results: list[RangeResult] = []
        committed: set[str] = set()
        try:
            snapshot.open()
            cp, constants = stamp(dict(snapshot.position))
            queries = range_queries(source, plan, snapshot, ctx.run.partitions)
            tasks = [
                RangeTask(
                    table=name,
                    index=i,
                    sql=sql,
                    source_name=source.name,
                    source_config=source.config,
                    ticket=snapshot.ticket(i),
                    source_schema=plan.arrow_schema(),
                    schema=ctx.lake.file_schema(schema),
                    stamp=ctx.stamp,
                    storage=ctx.lake.file_storage(),
                    folder=folder,
                    prefix=f"lf-{token}-r{i}",
                    fetch_rows=fetch_rows(ctx.run.batch_size, plan.arrow_schema()),
                    batch_size=ctx.run.batch_size,
                    file_rows=FILE_ROWS,
                    constants=constants,
                )
                for i, sql in enumerate(queries)
            ]
            results = self._run(snapshot, tasks, ctx)
            files = [f for r in sorted(results, key=lambda r: r.index) for f in r.files]
            ctx.lake.commit_files(name, files, schema=schema, mode="overwrite", checkpoint=cp)
            committed = {f.path for f in files}
        finally:
            snapshot.close()
            for note in snapshot.notes:
                ctx.note(note)
            self.results = results
            with contextlib.suppress(Exception):
                discard_orphans(ctx.lake, folder, f"lf-{token}-", committed)
        ctx.note(f"read by {len(tasks)} range tasks on {self.executor.name}")
        return cp

    def _run(self, snapshot: Snapshot, tasks: list[RangeTask], ctx: LoadContext) -> list[RangeResult]:
        retries = self.retries if snapshot.verified() else 0
        running = self.executor.start(tasks, retries=retries)
        results = []
        try:
            snapshot.started(running.finished, len(tasks))
            for result in running.results():
                ctx.on_rows(result.rows)
                results.append(result)
        except RangeFailed as exc:
            running.cancel()
            raise _as_error(exc, snapshot.source.name) from None
        except BaseException:
            running.cancel()
            raise
        return results


def _token(ctx: LoadContext) -> str:
    """Names this load's files and markers: the run id and a random suffix (a retried load gets a new one)."""
    return f"{ctx.stamp.run_id}-{uuid.uuid4().hex[:8]}".replace(".", "_")


def _as_error(exc: RangeFailed, source: str) -> LakeforgeError:
    """The task's error as the driver's own error class (its message already names the source)."""
    kinds: dict[str, type[LakeforgeError]] = {"LakeError": LakeError, "ConversionError": ConversionError}
    cls = kinds.get(exc.kind)
    if cls is not None:
        return cls(exc.message, transient=exc.transient)
    error = SourceError.__new__(SourceError)
    LakeforgeError.__init__(error, exc.message, transient=exc.transient)
    error.source = source
    return error
