"""The table-format seam: every lake (Delta, Iceberg, a third party's) implements :class:`Lake`.

Everything above the lake (load strategies, CDC apply, transforms, run history, export, the CLI, serving)
talks to this interface only; ``deltalake`` is imported under ``lake/delta/`` and ``pyiceberg`` under
``lake/iceberg/``. Where the formats differ, capability flags on the class say so.

Tables are named ``layer.table``; the layer ``_lakeforge`` holds lakeforge's own state (run history,
transform state) and is never listed by :meth:`Lake.names`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from lakeforge.errors import LakeError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    import pyarrow.fs as pafs

    from lakeforge.config.models import LakeConfig
    from lakeforge.lake.checkpoint import Checkpoint
    from lakeforge.lake.storage import Storage

INTERNAL = "_lakeforge"
MERGE_COUNTS = ("num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted")
"""Keys of the dict :meth:`Lake.merge` returns (delta-rs's names), each a row count."""


@dataclass(frozen=True)
class TableInfo:
    name: str
    """``layer.table``"""
    layer: str
    rows: int
    version: int
    last_load: str | None
    mode: str | None
    location: str
    format: str = "delta"


@dataclass(frozen=True)
class TableSnapshot:
    """One version of a table, pinned: what a reader (a build, an export) reads."""

    version: int
    dataset: pads.Dataset


@dataclass(frozen=True)
class TableFiles:
    """One pinned version's rows as Parquet files, for an engine that reads them itself on its workers (Daft
    on Ray) instead of receiving them from the driver."""

    paths: list[str]
    """Absolute local paths or ``s3://bucket/key`` URIs; their rows are exactly the version's rows, their
    columns matched by name (empty: the version has no rows)."""
    storage: Storage
    """Where they live (an engine builds its own S3 client from it on each worker)."""


@dataclass(frozen=True)
class DataFile:
    """A Parquet file a worker wrote into a table's storage; part of the table only once committed."""

    path: str
    """Absolute path (local lake) or URI (``s3://bucket/key``)."""
    rows: int
    bytes: int
    meta: Any = None
    """The file's Parquet footer (``pyarrow.parquet.FileMetaData``) when its writer kept it: the format builds
    per-column statistics (min, max, nulls) from it for data skipping; without it only the row count."""


@dataclass(frozen=True)
class FileStats:
    files: int
    bytes: int


@dataclass
class MaintainResult:
    """What ``maintain`` did to one table: data files and bytes of the newest version before and after, and
    the files removed from storage (no longer referenced by any retained version)."""

    table: str
    before: FileStats
    after: FileStats
    removed_files: int = 0
    actions: list[str] = field(default_factory=list)


class Lake(ABC):
    """A lakehouse of tables in one table format, in a local folder or on object storage."""

    FORMAT: ClassVar[str]
    SUPPORTS_TIME_TRAVEL: ClassVar[bool] = True
    """``dataset(name, version=N)`` reads an older version (until maintenance removes it)."""
    SUPPORTS_MERGE: ClassVar[bool] = True
    """``merge`` upserts and deletes by key in one commit."""
    SUPPORTS_STREAMING_MERGE: ClassVar[bool] = True
    """``merge`` streams its input; False: the merged batches are held in memory (one window at a time)."""
    SUPPORTS_MAINTENANCE: ClassVar[bool] = True
    SUPPORTS_COMMIT_FILES: ClassVar[bool] = False
    """``staging``/``commit_files``: Parquet files written elsewhere (distributed workers) join the table in one
    commit with the checkpoint; files never committed stay invisible (``discard_files`` removes them)."""
    STAGED_FULL_LOAD: ClassVar[bool] = False
    """A full load is written by several Parquet encoders into :meth:`staging` and committed with
    :meth:`commit_files` (``load/staged.py``) instead of streamed through :meth:`write`."""

    root: str
    """Folder or URI of the lakehouse."""
    is_local: bool

    @classmethod
    @abstractmethod
    def from_config(cls, root: str, config: LakeConfig) -> Lake:
        """The lake at ``root`` (a resolved folder or URI) configured by ``lake:`` of lakeforge.yml."""

    # -- finding tables -----------------------------------------------------------------------------
    @abstractmethod
    def uri(self, name: str) -> str:
        """Where the table's files live (a folder for a local lake)."""

    @abstractmethod
    def exists(self, name: str) -> bool: ...

    @abstractmethod
    def names(self, layers: Iterable[str] | None = None) -> list[str]:
        """Every ``layer.table`` (not the internal layer ``_lakeforge`` unless ``layers`` names it), sorted;
        from the catalog or the storage, never a local directory glob, so a remote lake lists its tables too."""

    # -- reading ------------------------------------------------------------------------------------
    @abstractmethod
    def schema(self, name: str) -> pa.Schema | None:
        """The table's Arrow schema, or None when the table does not exist."""

    @abstractmethod
    def snapshot(self, name: str, version: int | None = None) -> TableSnapshot:
        """The table at ``version`` (default: the newest) with the version it is."""

    def dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        return self.snapshot(name, version).dataset

    def data_files(self, name: str, version: int) -> TableFiles | None:
        """The Parquet files of ``version`` (what :meth:`snapshot` pinned), or None when files alone do not
        give its rows (deletion vectors or delete files, partition values kept in paths, renamed columns):
        such a table reaches an engine through the driver."""
        return None

    def read(self, name: str, version: int | None = None) -> pa.Table:
        return self.dataset(name, version).to_table()

    @abstractmethod
    def version(self, name: str) -> int:
        """The newest version (Delta: log version; Iceberg: the snapshot's sequence number)."""

    @abstractmethod
    def info(self, name: str) -> TableInfo: ...

    @abstractmethod
    def checkpoint(self, name: str) -> Checkpoint | None:
        """The checkpoint of the newest commit that carries one, read back from the table itself."""

    @abstractmethod
    def next_sequence(self, name: str) -> int:
        """The sequence number the next checkpoint of this table takes."""

    @abstractmethod
    def properties(self, name: str) -> dict[str, str]:
        """lakeforge's table properties (e.g. a state table's schema version); empty when none."""

    # -- writing ------------------------------------------------------------------------------------
    @abstractmethod
    def write(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema,
        mode: Literal["overwrite", "append"],
        checkpoint: Checkpoint | None = None,
        schema_mode: Literal["merge", "overwrite"] | None = "merge",
        partition_by: list[str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> None:
        """Stream ``batches`` into one atomic commit (replace or append) that also carries ``checkpoint``."""

    @abstractmethod
    def merge(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema,
        keys: list[str],
        checkpoint: Checkpoint | None = None,
        delete_column: str | None = None,
        keep_deleted: Sequence[str] | None = None,
        compare: list[str] | None = None,
    ) -> dict[str, Any]:
        """Upsert by ``keys`` in one commit that carries ``checkpoint``; returns :data:`MERGE_COUNTS`.

        - ``delete_column``: a row with it true deletes its match (and is not inserted); with ``keep_deleted``
          (soft delete), it instead sets only those columns of its match and is inserted when unmatched.
        - ``compare``: a matched row is rewritten only when one of those columns differs.

        A MERGE that changes nothing makes no commit (and so commits no checkpoint either)."""

    @abstractmethod
    def delete_all(self, name: str, *, set_values: dict[str, Any] | None = None) -> None:
        """Remove every row (a source TRUNCATE), or with ``set_values`` set those columns on every row."""

    def commit_checkpoint(self, name: str, checkpoint: Checkpoint, schema: pa.Schema) -> None:
        """Commit a checkpoint with no data (a position advanced past changes to other tables)."""
        self.write(name, iter(()), schema=schema, mode="append", checkpoint=checkpoint)

    # -- files written by other processes (distributed extraction) -----------------------------------------
    def staging(self, name: str, schema: pa.Schema) -> str:
        """The folder (or URI prefix) where workers write Parquet files for the next ``commit_files`` of
        ``name``; creates the table (empty, with ``schema``) when it does not exist yet."""
        raise LakeError(f"lake format {self.FORMAT} cannot commit files written by distributed workers")

    def file_schema(self, schema: pa.Schema) -> pa.Schema:
        """The Arrow schema workers write ``schema``'s rows as (the format's own spelling of each type)."""
        return schema

    def commit_files(
        self,
        name: str,
        files: Sequence[DataFile],
        *,
        schema: pa.Schema,
        mode: Literal["overwrite", "append"],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        """Make ``files`` (Parquet of ``schema``, written under :meth:`staging`) the table's new rows
        (``overwrite``) or extra rows (``append``) in ONE commit that also carries ``checkpoint``."""
        raise LakeError(f"lake format {self.FORMAT} cannot commit files written by distributed workers")

    def discard_files(self, paths: Iterable[str]) -> int:
        """Delete files that were written for a commit that did not happen; returns how many were removed."""
        from lakeforge.lake.files import delete_paths

        return delete_paths(self.file_system(), paths)

    def file_storage(self) -> Storage:
        """The lake's storage (picklable: workers open their own filesystem from it)."""
        storage = getattr(self, "storage", None)
        if storage is None:
            raise LakeError(f"lake format {self.FORMAT} has no storage to write files into")
        return storage  # type: ignore[no-any-return]

    def file_system(self) -> tuple[pafs.FileSystem, str]:
        """An Arrow filesystem for the lake's storage and the root's path in it."""
        return self.file_storage().filesystem()

    # -- maintenance --------------------------------------------------------------------------------
    @abstractmethod
    def maintain(self, name: str, *, retain_seconds: float, target_file_size: int | None = None) -> MaintainResult:
        """Compact small files, tidy metadata, remove files no version younger than ``retain_seconds`` needs.
        A reader of the newest version sees the same rows before and after."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release clients (catalog connections)."""


class StreamGuard:
    """Iterates batches for a writer and keeps a lakeforge error raised inside the stream.

    Writers (delta-rs, PyIceberg) turn an exception raised by the stream into their own error type; the
    original (a source error marked ``transient``, say) is re-raised instead so retry loops still see it.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._it = iter(batches)
        self.error: Exception | None = None

    def __iter__(self) -> StreamGuard:
        return self

    def __next__(self) -> pa.RecordBatch:
        from lakeforge.errors import LakeforgeError

        try:
            return next(self._it)
        except LakeforgeError as exc:
            self.error = exc
            raise


def lake_error(name: str, doing: str, exc: BaseException, *, transient: bool = False) -> LakeError:
    """``lake table <name>: <doing> failed: <first line>``; ``transient`` when trying again can help (a commit
    conflict with a concurrent writer)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    hint = " (a concurrent writer committed first; the load is retried)" if transient else ""
    return LakeError(f"lake table {name}: {doing} failed: {text}{hint}", transient=transient)


def split_properties(text: str | None) -> dict[str, str]:
    """``k=v;k2=v2`` (how Delta keeps lakeforge's properties in the table description) as a dict."""
    result = {}
    for part in (text or "").split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


def format_switch(name: str, found: str, configured: str, where: str) -> str:
    article = "an" if found[0] in "AEIOU" else "a"
    return (
        f"lake table {name} is {article} {found} table ({where}) but lake.format is {configured}; lakeforge does not "
        f"convert tables in place. To migrate: keep lake.format as before, or move {where} aside and run "
        f"`lakeforge run --select {name}` to reload it from the source in the new format (time travel to the "
        "old table's versions is not carried over)"
    )
