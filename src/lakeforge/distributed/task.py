"""What runs on a worker: stream one key range, inside the driver's snapshot, into Parquet files in the
lake's storage. Memory holds one batch and the Parquet writer's current row group; the files are returned
by name and size, never as data."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.lake.base import DataFile

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.distributed.snapshot import Ticket
    from lakeforge.lake.storage import Storage
    from lakeforge.load.batches import Stamp


@dataclass(frozen=True)
class RangeTask:
    table: str
    """The lake table, ``layer.table``."""
    index: int
    sql: str
    source_name: str
    source_config: Any
    """The source's config model (pickled to the worker: it holds the password; see docs/scale-out.md)."""
    ticket: Ticket
    source_schema: pa.Schema
    """The plan's Arrow schema (what the source's batches are cast to)."""
    schema: pa.Schema
    """The files' schema: the lake table's columns, metadata included."""
    stamp: Stamp
    storage: Storage
    folder: str
    """Where the files go (the lake's own spelling: a local path or ``s3://...``)."""
    prefix: str
    """File names start with it: ``lf-<load token>-r<index>``."""
    fetch_rows: int
    batch_size: int
    file_rows: int
    """Rows per Parquet file before the task starts the next one."""
    constants: dict[str, Any] = field(default_factory=dict)
    """Columns of ``schema`` with one value on every row (a CDC snapshot's ``_lf_op``, ``_lf_position``...)."""


@dataclass(frozen=True)
class RangeResult:
    index: int
    files: list[DataFile]
    rows: int
    seconds: float
    peak_rss: int
    """The worker process's peak resident memory so far, in bytes."""
    pid: int


class RangeFailed(Exception):  # noqa: N818 - plain data that survives pickling between processes
    """A task's lakeforge error, carried back to the driver (the error classes' own constructors differ)."""

    def __init__(self, message: str, kind: str, transient: bool) -> None:
        super().__init__(message, kind, transient)
        self.message, self.kind, self.transient = message, kind, transient

    def __str__(self) -> str:
        return self.message


class RetryableRangeFailed(RangeFailed):
    """A transient failure the executor retries (a dropped connection), the range read again from scratch."""


def run_range(task: RangeTask) -> RangeResult:
    from lakeforge.distributed.mysql import SnapshotMoved
    from lakeforge.errors import LakeforgeError

    try:
        return _run(task)
    except SnapshotMoved as exc:  # retrying the task cannot help: the load starts over
        raise RangeFailed(str(exc), type(exc).__name__, True) from None
    except LakeforgeError as exc:
        cls = RetryableRangeFailed if exc.transient else RangeFailed
        raise cls(str(exc), type(exc).__name__, exc.transient) from None
    except OSError as exc:  # the lake's storage (a refused or dropped S3 request, a full disk)
        first = task.storage.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        message = f"lake table {task.table}: range {task.index} could not write its files: {first}"
        raise RangeFailed(message, "LakeError", False) from None


def _run(task: RangeTask) -> RangeResult:
    import os
    import resource

    import pyarrow.parquet as pq

    from lakeforge.distributed.snapshot import snapshot_class
    from lakeforge.lake.files import fs_path
    from lakeforge.load import killpoint
    from lakeforge.load.batches import rechunk, stamp_and_cast
    from lakeforge.sources import create_source
    from lakeforge.sources.convert import conform
    from lakeforge.sources.sql import SqlSource

    started = time.perf_counter()
    source = create_source(task.source_name, task.source_config)
    assert isinstance(source, SqlSource), "range tasks read SQL sources only"
    reader = snapshot_class(task.ticket.kind)
    assert reader is not None
    fs, _ = task.storage.filesystem()
    if task.storage.is_local:  # object stores have no folders to create
        fs.create_dir(fs_path(task.folder), recursive=True)
    files: list[DataFile] = []
    writer: pq.ParquetWriter | None = None
    path, in_file, rows = "", 0, 0

    def finish() -> None:
        assert writer is not None
        writer.close()
        files.append(DataFile(path, in_file, int(fs.get_file_info(fs_path(path)).size)))

    try:
        raw = reader.stream(source, task.ticket, task.sql, task.fetch_rows)
        conformed = (with_constants(conform(batch, task.source_schema), task) for batch in raw)
        for batch in stamp_and_cast(rechunk(conformed, task.batch_size), task.schema, task.stamp):
            if writer is not None and in_file >= task.file_rows:
                finish()
                writer = None
            if writer is None:
                path = f"{task.folder.rstrip('/')}/{task.prefix}-{uuid.uuid4().hex}.parquet"
                writer = pq.ParquetWriter(fs_path(path), task.schema, filesystem=fs)
                in_file = 0
            writer.write_batch(batch)
            in_file += batch.num_rows
            rows += batch.num_rows
            killpoint.kill_once("range", task.table)
        if writer is not None:
            finish()
    finally:
        source.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return RangeResult(task.index, files, rows, time.perf_counter() - started, peak, os.getpid())


def with_constants(batch: pa.RecordBatch, task: RangeTask) -> pa.RecordBatch:
    import pyarrow as pa

    for name, value in task.constants.items():
        batch = batch.append_column(name, pa.array([value] * batch.num_rows, task.schema.field(name).type))
    return batch
