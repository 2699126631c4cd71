"""Daft and the lake's files: lake tables read on Daft's workers, model results written from them.

- :func:`read_table`: a pinned table version as a Daft DataFrame over its Parquet files, one Daft scan task
  per file (:class:`LakeFiles`), run on the workers. A task reads its file with pyarrow's dataset reader and
  the version's Arrow schema, exactly as the driver's dataset of the same version reads it (same types,
  columns matched by name), through its own filesystem built from ``lake.storage`` (S3 endpoint, region,
  path style, credentials). Daft's native Parquet reader (``daft.read_parquet``) is not used: Daft 0.7.26
  refuses a file whose embedded Arrow schema has a view type ("Unsupported Arrow DataType: Utf8View"),
  which delta-rs writes on every MERGE (docs/scale-out.md).
- :class:`LakeSink`: a Daft ``DataSink`` whose ``write`` runs on the workers and streams each partition's
  rows into Parquet files in the table's staging folder; the driver gets back file names, row counts and
  sizes only, and commits them (``Lake.commit_files``) in one commit with the checkpoint.

Imported only by :class:`~lakeforge.engines.daft.DaftEngine` (Daft is the ``scale`` extra).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from daft.io.sink import DataSink, WriteResult  # noqa: TID253 - this module is imported only with Daft
from daft.io.source import DataSource, DataSourceTask  # noqa: TID253

from lakeforge.engines.base import FileTarget
from lakeforge.lake.base import DataFile

if TYPE_CHECKING:
    import pyarrow as pa
    from daft.io.pushdowns import Pushdowns
    from daft.recordbatch import MicroPartition, RecordBatch
    from daft.schema import Schema

    from lakeforge.lake.base import TableFiles
    from lakeforge.lake.storage import Storage


def read_table(files: TableFiles, schema: pa.Schema) -> Any:
    """A Daft DataFrame of ``files``' rows with ``schema`` (the pinned version's Arrow schema)."""
    return LakeFiles(files, schema).read()


class LakeFiles(DataSource):
    """The Parquet files of one pinned table version: one scan task per file."""

    def __init__(self, files: TableFiles, schema: pa.Schema) -> None:
        self.files = files
        self.arrow = schema

    @property
    def name(self) -> str:
        return "lakeforge table files"

    @property
    def schema(self) -> Schema:
        from daft.schema import Schema

        return Schema.from_pyarrow_schema(self.arrow)

    async def get_tasks(self, pushdowns: Pushdowns) -> AsyncIterator[DataSourceTask]:
        wanted = None  # Daft filters the rows after the scan: the filter's columns are read too
        if pushdowns.columns is not None:
            try:
                wanted = set(pushdowns.columns) | pushdowns.filter_required_column_names()
            except AttributeError:  # Daft 0.7.26 cannot list the columns of an IN (...): read them all
                wanted = None
        columns = [f.name for f in self.arrow if wanted is None or f.name in wanted]
        for path in self.files.paths:
            yield FileTask(path, self.arrow, columns, self.files.storage, pushdowns.limit)


@dataclass
class FileTask(DataSourceTask):
    """One Parquet file, read on a worker with pyarrow (only ``columns``; at most about ``limit`` rows)."""

    path: str
    table_schema: pa.Schema
    columns: list[str]
    storage: Storage
    limit: int | None = None

    @property
    def schema(self) -> Schema:
        import pyarrow as pa
        from daft.schema import Schema

        return Schema.from_pyarrow_schema(pa.schema([self.table_schema.field(c) for c in self.columns]))

    async def read(self) -> AsyncIterator[RecordBatch]:
        from daft.recordbatch import RecordBatch

        batches = self._batches()
        while True:
            batch = await asyncio.to_thread(next, batches, None)
            if batch is None:
                break
            yield RecordBatch.from_arrow_record_batches([batch], batch.schema)

    def _batches(self) -> Iterator[pa.RecordBatch]:
        import pyarrow.dataset as ds

        from lakeforge.lake.files import fs_path

        fs, _ = self.storage.filesystem()
        data = ds.dataset([fs_path(self.path)], schema=self.table_schema, format="parquet", filesystem=fs)
        seen = 0
        for batch in data.to_batches(columns=self.columns):
            yield batch
            seen += batch.num_rows
            if self.limit is not None and seen >= self.limit:
                return


class LakeSink(DataSink[tuple[DataFile, int]]):
    """Writes a DataFrame's partitions, on the workers, as Parquet files of ``target.schema``."""

    def __init__(self, target: FileTarget) -> None:
        self.target = target
        self.files: list[DataFile] = []
        """The files written, once ``finalize`` ran (on the driver)."""
        self.writers: set[int] = set()
        """Process ids of the workers that wrote them."""

    def name(self) -> str:
        return "lakeforge lake files"

    def schema(self) -> Schema:
        from daft import DataType
        from daft.schema import Schema

        return Schema.from_field_name_and_types(
            [("path", DataType.string()), ("rows", DataType.int64()), ("bytes", DataType.int64())]
        )

    def write(self, micropartitions: Iterator[MicroPartition]) -> Iterator[WriteResult[tuple[DataFile, int]]]:
        import pyarrow.parquet as pq

        from lakeforge.lake.files import fs_path
        from lakeforge.transform.write import conform

        t = self.target
        fs, _ = t.storage.filesystem()
        if t.storage.is_local:
            fs.create_dir(fs_path(t.folder), recursive=True)
        writer: pq.ParquetWriter | None = None
        path, rows = "", 0
        try:
            for part in micropartitions:
                for batch in part.to_arrow().to_batches():
                    if writer is not None and rows >= t.file_rows:
                        writer.close()
                        yield _written(fs, path, rows)
                        writer = None
                    if writer is None:
                        path = f"{t.folder.rstrip('/')}/{t.prefix}-{uuid.uuid4().hex}.parquet"
                        writer, rows = pq.ParquetWriter(fs_path(path), t.schema, filesystem=fs), 0
                    writer.write_batch(conform(batch, t.schema))
                    rows += batch.num_rows
            if writer is not None:
                writer.close()
                writer = None
                yield _written(fs, path, rows)
        finally:
            if writer is not None:
                writer.close()

    def finalize(self, write_results: list[WriteResult[tuple[DataFile, int]]]) -> MicroPartition:
        from daft.recordbatch import MicroPartition

        self.files = [r.result[0] for r in write_results]
        self.writers = {r.result[1] for r in write_results}
        return MicroPartition.from_pydict(
            {
                "path": [f.path for f in self.files],
                "rows": [f.rows for f in self.files],
                "bytes": [f.bytes for f in self.files],
            }
        )


def _written(fs: Any, path: str, rows: int) -> WriteResult[tuple[DataFile, int]]:
    import os

    from lakeforge.lake.files import fs_path

    size = int(fs.get_file_info(fs_path(path)).size)
    return WriteResult(result=(DataFile(path, rows, size), os.getpid()), bytes_written=size, rows_written=rows)
