"""``type: files``: new or changed files of a folder or ``s3://`` prefix, each read once.

The position is the set of files read, each with its size and modification time (and ETag on S3), plus, while
a large file is being read across several commits, how many of its records are committed. A run lists the
files, reads those whose signature is not in the position (new, or rewritten in place: read again once, in
full), in path order, and commits after each file once ``run.commit_bytes`` of data wait. Files that no
longer exist are dropped from the position. Every row gets ``_lf_file`` (its path under ``path``) and
``_lf_row`` (its record number in the file, from 1).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import SourceBase
from lakeforge.errors import SourceError
from lakeforge.sources.base import ColumnPlan, TablePlan
from lakeforge.sources.files.config import FilesSourceConfig
from lakeforge.sources.files.csv_reader import Block
from lakeforge.sources.files.listing import FileEntry, list_files, open_file
from lakeforge.sources.records import BadRecord, Chunk, ReadRequest, RecordSource

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.storage import Storage
    from lakeforge.sources.typed import RowError

META_FILE = "_lf_file"
META_ROW = "_lf_row"


class FilesSource(RecordSource):
    type_name: ClassVar[str] = "files"
    CONFIG: ClassVar[type[SourceBase]] = FilesSourceConfig
    SUPPORTS_FILE_LISTING: ClassVar[bool] = True
    META_COLUMNS: ClassVar[tuple[str, ...]] = (META_FILE, META_ROW)
    config: FilesSourceConfig

    def storage(self) -> Storage:
        from pathlib import Path

        from lakeforge.lake.storage import Storage

        path = self.config.path
        if "://" not in path:
            path = str((self.project_dir / Path(path)).resolve())
        return Storage(path, self.config.storage)

    def check(self) -> dict[str, str]:
        files = list_files(self.name, self.storage(), self.config.pattern, self.config.recursive)
        return {"path": self.storage().root, "files": str(len(files)), "format": self.config.format}

    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        storage = self.storage()
        files = list_files(self.name, storage, self.config.pattern, self.config.recursive)
        present = {f.path for f in files}
        done: dict[str, Any] = {p: s for p, s in dict(request.position.get("files") or {}).items() if p in present}
        partial = request.position.get("partial") or {}
        for entry in files:
            if done.get(entry.path) == entry.signature():
                continue
            skip = int(partial.get("records", 0)) if _same(partial, entry) else 0
            for chunk in self._file(storage, entry, plan, request.batch_size, skip):
                if chunk.position is not None:
                    partial_now = {**chunk.position, "path": entry.path, "sig": entry.signature()}
                    chunk.position = {"files": done, "partial": partial_now}
                yield chunk
            done = {**done, entry.path: entry.signature()}
            yield Chunk(position={"files": done})
        yield Chunk(position={"files": done})

    def _file(self, storage: Storage, entry: FileEntry, plan: TablePlan, batch_size: int, skip: int) -> Iterator[Chunk]:
        import pyarrow as pa

        started = False
        try:
            columns, blocks = self._blocks(storage, entry, plan, batch_size)
            for block in blocks:
                started = True
                yield self._chunk(entry, block, columns, skip)
        except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
            text = _first_line(exc)
            if started:  # records of the file are already loaded: fail loudly rather than lose the rest
                raise SourceError(self.name, f"file {entry.path}: cannot be read past a point: {text}") from None
            # nothing of it could be parsed (no header, not CSV at all): the whole file is one bad record
            head = _head(storage, entry, self.config.compression)
            reason = f"cannot be read as {self.config.format}: {text}"
            yield Chunk(None, [BadRecord(reason, head, file=entry.path)], {"records": 0})
        except (OSError, LookupError, EOFError) as exc:
            text = storage.scrub(_first_line(exc))
            raise SourceError(self.name, f"file {entry.path}: cannot be read: {text}") from None

    def _blocks(
        self, storage: Storage, entry: FileEntry, plan: TablePlan, batch_size: int
    ) -> tuple[list[ColumnPlan], Iterator[Block]]:
        fmt = self.config.format
        if fmt == "csv":
            from lakeforge.sources.files.csv_reader import header_and_types, read_csv
            from lakeforge.sources.typed import apply_types

            with open_file(storage, entry.path, self.config.compression) as head:
                sample = _cut_at_line(head.read(self.config.sample_bytes))
            if not sample.strip(b"\r\n"):
                return plan.columns, iter(())  # an empty file (or blank lines only): no records
            names, inferred = header_and_types(sample, self.config.csv)
            columns = _with_inferred(plan.columns, inferred)

            def opened() -> Any:
                return open_file(storage, entry.path, self.config.compression)

            def typed(batch: pa.RecordBatch) -> tuple[pa.RecordBatch, list[RowError]]:
                return apply_types(self._shape(batch), columns)

            return columns, read_csv(opened, self.config.csv, names, self.config.block_bytes, prepare=typed)
        if fmt == "json":
            from lakeforge.sources.files.json_reader import read_json

            declared = _declared_schema(plan.columns)
            stream = open_file(storage, entry.path, self.config.compression)
            return plan.columns, read_json(stream, declared, batch_size, self.config.block_bytes)
        from lakeforge.sources.files.parquet_reader import read_parquet

        return plan.columns, read_parquet(storage, entry.path, batch_size)

    def _chunk(self, entry: FileEntry, block: Block, columns: list[ColumnPlan], skip: int) -> Chunk:

        from lakeforge.sources.typed import apply_types

        bad = [
            BadRecord(reason, raw, file=entry.path, line=line or None, offset=record)
            for record, line, reason, raw in block.bad
            if record > skip
        ]
        position = {"records": block.last_record}
        if block.batch is None or not block.batch.num_rows:
            return Chunk(None, bad, position)
        import numpy as np

        from lakeforge.sources.files.buffers import bool_array, int64_array, repeated_string

        batch = self._shape(block.batch)
        numbers = np.asarray(block.records, dtype=np.int64)
        typed, errors = block.prepared if block.prepared is not None else apply_types(batch, columns)
        lines: dict[int, int] | None = None
        for error in errors:
            record = int(numbers[error.row])
            if record <= skip:
                continue  # committed by an earlier run (its bad records too)
            if lines is None:
                lines = dict(zip(numbers.tolist(), np.asarray(block.lines).tolist(), strict=True))
            raw = _raw(batch, error.row, self.config.csv.delimiter if self.config.format == "csv" else None)
            bad.append(BadRecord(error.reason, raw, file=entry.path, line=lines.get(record) or None, offset=record))
        if errors:
            numbers = np.delete(numbers, [e.row for e in errors])
        if skip and len(numbers) and numbers[0] <= skip:
            keep_np = numbers > skip
            typed, numbers = typed.filter(bool_array(keep_np)), numbers[keep_np]
        records = int64_array(numbers)
        typed = typed.append_column(META_FILE, repeated_string(entry.path, typed.num_rows))
        typed = typed.append_column(META_ROW, records)
        bad.sort(key=lambda b: b.offset or 0)
        return Chunk(typed, bad, position)

    def _shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        from lakeforge.sources.python.frames import plain_types

        if self.config.format == "json" and self.config.json_options.nested == "flatten":
            batch = _flatten(batch)
        return plain_types(batch)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _head(storage: Storage, entry: FileEntry, compression: str, size: int = 2000) -> str:
    """The start of a file as text (undecodable bytes as ``\\xNN``), for a file quarantined whole."""
    try:
        with open_file(storage, entry.path, compression) as stream:
            data: bytes = stream.read(size + 1)
    except OSError:
        return ""
    text = data[:size].decode("utf-8", "backslashreplace")
    return text if len(data) <= size else text + f"... ({entry.size} bytes)"


def _same(partial: dict[str, Any], entry: FileEntry) -> bool:
    return bool(partial) and partial.get("path") == entry.path and partial.get("sig") == entry.signature()


def _cut_at_line(sample: bytes) -> bytes:
    cut = sample.rfind(b"\n")
    return sample[: cut + 1] if cut >= 0 else sample


def _with_inferred(declared: list[ColumnPlan], inferred: dict[str, Any]) -> list[ColumnPlan]:
    from lakeforge.lake.naming import normalize

    names = {c.name for c in declared} | {c.lake_name for c in declared}
    extra = [ColumnPlan(n, normalize(n), f"{t} (inferred)", "", t) for n, t in inferred.items() if n not in names]
    return [*declared, *extra]


def _declared_schema(columns: list[ColumnPlan]) -> pa.Schema:
    import pyarrow as pa

    return pa.schema([pa.field(c.name, c.arrow_type) for c in columns])


def _flatten(batch: pa.RecordBatch) -> pa.RecordBatch:
    import pyarrow as pa

    table = pa.Table.from_batches([batch])
    while any(pa.types.is_struct(f.type) for f in table.schema):
        table = table.flatten()
    table = table.rename_columns([n.replace(".", "_") for n in table.schema.names])
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else batch


def _raw(batch: pa.RecordBatch, row: int, delimiter: str | None) -> str:
    """The record as text: CSV fields joined by the delimiter (NULL as empty), else JSON."""
    import json

    values = batch.slice(row, 1).to_pylist()[0]
    if delimiter is not None:
        return delimiter.join("" if v is None else str(v) for v in values.values())
    return json.dumps(values, default=str, ensure_ascii=False)
