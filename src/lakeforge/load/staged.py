"""A full load encoded by several Parquet writers at once, committed in ONE commit with the checkpoint.

``write_deltalake`` encodes a stream on one thread: a full load's Parquet encoding then trails the fetch
(PostgreSQL narrow_1m: 0.8 s of encoding left after the last row arrived, docs/benchmarks.md, Issue #14
round 3). Here the caller's thread pulls the stamped batches and hands them to ``ENCODERS`` threads, each
writing its own Parquet files (pyarrow releases the GIL while it encodes), so encoding runs beside the fetch
on every core. The files join the table through ``Lake.commit_files``, as the distributed extraction's do:
one commit that replaces the rows and carries the checkpoint. A failure, a stop request or a kill before the
commit leaves only files no version references (invisible; removed here when possible, else by vacuum).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from lakeforge import interrupt
from lakeforge.lake.base import DataFile

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.base import Lake

ENCODERS = 2
"""Parquet writers; two use both cores of the bench machine while the fetch threads wait on the server."""
ROW_GROUP_BYTES = 16 * 2**20
"""Arrow bytes gathered into one row group (or ``ROW_GROUP_ROWS``, whichever comes first). Small enough that
the encoding keeps pace with the fetch (what is gathered is encoded only when the group is written: with
64 MiB groups most of narrow_1m was still to encode when the last row arrived) and that memory stays bounded
(delta-rs's 1M-row groups held ~0.5 GB of a wide table, docs/benchmarks.md, Profiles 2); large enough for
100,000+ narrow rows a group."""
ROW_GROUP_ROWS = 1_048_576
FILE_BYTES = 512 * 2**20
"""Arrow bytes per file when the lake sets no ``target_file_size`` (Parquet is several times smaller)."""
DICTIONARY_RATIO = 10
DICTIONARY_SAMPLE = 16_384
"""Rows of the first batch whose distinct text values decide a column's dictionary."""
_END = object()


def write_staged(lake: Lake, name: str, batches: Iterable[pa.RecordBatch], *, schema: pa.Schema) -> list[DataFile]:
    """Write ``batches`` (already of ``schema``) as Parquet files in ``name``'s staging folder; the files,
    not yet part of the table. On any failure the files written so far are deleted and the error raised."""
    writer = StagedWriter(lake, name, schema)
    try:
        for batch in batches:
            writer.add(batch)
        return writer.finish()
    except BaseException:
        writer.abort()
        raise


class StagedWriter:
    """``ENCODERS`` threads encoding the batches handed to :meth:`add` (of ``schema``) into Parquet files in
    ``name``'s staging folder; :meth:`finish` waits for them and returns the files (not yet part of the
    table), :meth:`abort` stops them and deletes what they wrote."""

    def __init__(self, lake: Lake, name: str, schema: pa.Schema) -> None:
        from lakeforge.lake.files import fs_path

        self.lake, self.schema = lake, schema
        folder = lake.staging(name, schema).rstrip("/")
        if lake.is_local:  # object stores have no folders to create
            fs, _ = lake.file_system()
            fs.create_dir(fs_path(folder), recursive=True)
        file_bytes = getattr(lake, "target_file_size", None) or FILE_BYTES
        self.slots: queue.Queue[Any] = queue.Queue(maxsize=2 * ENCODERS)
        self.encoders = [
            _Encoder(lake, folder, lake.file_schema(schema), file_bytes, self.slots) for _ in range(ENCODERS)
        ]
        self.threads = [
            threading.Thread(target=e.run, daemon=True, name=f"lakeforge-encode-{i}")
            for i, e in enumerate(self.encoders)
        ]
        for t in self.threads:
            t.start()
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        _put(self.slots, batch, self.encoders)

    def finish(self) -> list[DataFile]:
        """The files, once every batch is encoded; on a failure the files are deleted and the error raised."""
        try:
            for _ in self.encoders:
                _put(self.slots, _END, self.encoders)
            for t in self.threads:
                while t.is_alive():
                    t.join(timeout=0.2)
                    interrupt.check()
            failed = next((e.error for e in self.encoders if e.error is not None), None)
            if failed is not None:
                raise failed
        except BaseException:
            self.abort()
            raise
        return [f for e in self.encoders for f in e.files]

    def abort(self) -> None:
        """Stop the encoders and delete the files they wrote (none of them is part of the table)."""
        for e in self.encoders:
            e.stop.set()
        for t in self.threads:
            t.join(timeout=5)
        self.lake.discard_files([p for e in self.encoders for p in e.paths])


def _put(slots: queue.Queue[Any], item: object, encoders: list[_Encoder]) -> None:
    """Queue ``item``; an encoder that failed stops the stream (its error is raised)."""
    while True:
        failed = next((e.error for e in encoders if e.error is not None), None)
        if failed is not None:
            raise failed
        try:
            slots.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


class _Encoder:
    """One thread's Parquet files: batches gathered into row groups, a new file every ``file_bytes``."""

    def __init__(self, lake: Lake, folder: str, schema: pa.Schema, file_bytes: int, slots: queue.Queue[Any]) -> None:
        self.lake, self.folder, self.schema, self.file_bytes, self.slots = lake, folder, schema, file_bytes, slots
        self.paths: list[str] = []
        self.files: list[DataFile] = []
        self.error: BaseException | None = None
        self.stop = threading.Event()
        self._writer: Any = None
        self._physical: pa.Schema | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_bytes = self._pending_rows = self._file_bytes = self._file_rows = 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                try:
                    item = self.slots.get(timeout=0.2)
                except queue.Empty:
                    continue
                if item is _END:
                    self._flush()
                    self._close()
                    return
                self._add(item)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread, which raises it
            self.error = _as_lake_error(exc, self.folder)
            self.stop.set()
            if self._writer is not None:
                with contextlib.suppress(Exception):  # the file is deleted anyway; keep the first error
                    self._writer.close()

    def _add(self, batch: pa.RecordBatch) -> None:
        if batch.num_rows == 0:
            return
        self._pending.append(batch)
        self._pending_bytes += batch.nbytes
        self._pending_rows += batch.num_rows
        if self._pending_bytes >= min(ROW_GROUP_BYTES, self.file_bytes) or self._pending_rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        """Write the gathered batches as one row group (opening a file first, rolling it when full)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from lakeforge.lake.files import fs_path
        from lakeforge.lake.naming import counting_columns

        if not self._pending:
            return
        if self._writer is None:
            fs, _ = self.lake.file_system()
            path = f"{self.folder}/part-lf-{uuid.uuid4().hex}.parquet"
            self.paths.append(path)
            counting = counting_columns(self.schema)
            # the batches' own types: a load constant may come as a dictionary array of a string column
            self._physical = self._pending[0].schema
            same = self._physical == self.schema
            self._writer = pq.ParquetWriter(
                fs_path(path),
                self._physical,
                filesystem=fs,
                compression="snappy",
                use_dictionary=[n for n in dictionary_columns(self._pending[0]) if n not in counting],
                column_encoding=dict.fromkeys(counting, "DELTA_BINARY_PACKED") or None,
                store_decimal_as_integer=True,
                store_schema=same,
            )
            if not same:  # readers that honour the stored Arrow schema see the table's types, not dictionaries
                self._writer.add_key_value_metadata({ARROW_SCHEMA: arrow_schema_value(self.schema)})
        table = pa.Table.from_batches(self._pending, schema=self._physical)
        self._writer.write_table(table, row_group_size=max(table.num_rows, 1))
        self._file_bytes += self._pending_bytes
        self._file_rows += self._pending_rows
        self._pending, self._pending_bytes, self._pending_rows = [], 0, 0
        if self._file_bytes >= self.file_bytes:
            self._close()

    def _close(self) -> None:
        if self._writer is None:
            return
        writer, self._writer = self._writer, None
        writer.close()
        from lakeforge.lake.files import fs_path

        fs, _ = self.lake.file_system()
        path = self.paths[-1]
        size = int(fs.get_file_info(fs_path(path)).size)
        self.files.append(DataFile(path, self._file_rows, size, meta=writer.writer.metadata))
        self._file_bytes = self._file_rows = 0


ARROW_SCHEMA = "ARROW:schema"


def arrow_schema_value(schema: pa.Schema) -> str:
    """The ``ARROW:schema`` footer value pyarrow stores for ``schema`` (base64 of its IPC serialization)."""
    import base64

    return base64.b64encode(schema.serialize().to_pybytes()).decode()


def dictionary_columns(sample: pa.RecordBatch) -> list[str]:
    """The columns worth dictionary encoding: the load's constant metadata columns and text columns with few
    distinct values in ``sample`` (at most one in ``DICTIONARY_RATIO`` rows).

    pyarrow dictionary-encodes every column by default, and a high-cardinality column builds a dictionary
    for every row group before it falls back to plain encoding: that was half the encoding CPU of the bench's
    tables (wide_1m 2.8-3.0 s against 1.7 s with this choice, files 1-2% apart; docs/benchmarks.md)."""
    import pyarrow as pa

    from lakeforge.load.batches import META_COLUMNS

    chosen = []
    rows = min(sample.num_rows, DICTIONARY_SAMPLE)
    limit = max(1, rows // DICTIONARY_RATIO)
    for field, column in zip(sample.schema, sample.columns, strict=True):
        text = pa.types.is_string(field.type) or pa.types.is_large_string(field.type)
        # a set over the first rows, not pyarrow.compute: its import alone is ~0.1 s of a run (test_run_imports)
        if field.name in META_COLUMNS or (text and len(set(column.slice(0, rows).to_pylist())) <= limit):
            chosen.append(field.name)
    return chosen


def _as_lake_error(exc: BaseException, folder: str) -> BaseException:
    from lakeforge.errors import LakeforgeError

    if isinstance(exc, LakeforgeError) or not isinstance(exc, Exception):
        return exc
    from lakeforge.errors import LakeError

    first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LakeError(f"cannot write Parquet files into {folder}: {first}")
