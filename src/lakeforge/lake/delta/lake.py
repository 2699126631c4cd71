"""Delta Lake tables in a lakehouse folder or on object storage: ``<root>/<layer>/<name>``.

Writes take Arrow record batches as a stream, so memory does not grow with the table. Every write that
carries a :class:`Checkpoint` commits it in the same Delta commit as the data (commit info + a ``txn`` app id).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.config.models import LakeConfig, StorageConfig
from lakeforge.errors import LakeError
from lakeforge.lake.base import (
    INTERNAL,
    DataFile,
    Lake,
    MaintainResult,
    StreamGuard,
    TableFiles,
    TableInfo,
    TableSnapshot,
    split_properties,
)
from lakeforge.lake.checkpoint import METADATA_KEY, Checkpoint
from lakeforge.lake.naming import split_name
from lakeforge.lake.storage import Storage

if TYPE_CHECKING:
    import pyarrow as pa
    from deltalake import DeltaTable

_HISTORY_PAGE = 50


class DeltaLake(Lake):
    """The lakehouse: locate, read and write Delta tables by ``layer.table`` name."""

    FORMAT = "delta"
    SUPPORTS_COMMIT_FILES = True
    STAGED_FULL_LOAD = True

    def __init__(
        self,
        root: str | Path,
        storage_options: dict[str, str] | None = None,
        *,
        target_file_size: int | None = None,
        storage: StorageConfig | None = None,
    ) -> None:
        self.storage = Storage(str(root), storage or StorageConfig(), storage_options or None)
        self.root = str(root)
        self.storage_options = self.storage.delta_options()
        self.is_local = self.storage.is_local
        self.target_file_size = target_file_size
        """Bytes per Parquet file written (None: delta-rs's default)."""
        from lakeforge.lake.delta.handles import Handles

        self._handles = Handles(self._open_fresh)
        """Open tables, refreshed instead of reopened (lake/delta/handles.py): a run asks a table for its schema,
        sequence and version and writes it, and appends to its history several times; each open reads the
        whole log again (on object storage a round trip per commit)."""

    @classmethod
    def from_config(cls, root: str, config: LakeConfig) -> DeltaLake:
        return cls(root, config.storage_options, target_file_size=config.target_file_size, storage=config.storage)

    # -- locations ----------------------------------------------------------------------------------
    def uri(self, name: str) -> str:
        layer, table = split_name(name)
        return self.storage.join(layer, table)

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        if self._handles.kept(name) is not None:  # opened by this process: lakeforge never deletes a table
            return True
        return bool(DeltaTable.is_deltatable(self.uri(name), storage_options=self.storage_options))

    def table(self, name: str, version: int | None = None) -> DeltaTable:
        """The raw ``DeltaTable`` (Delta-only code and tests; everything else uses the Lake interface)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        if version is None:
            found = self._open(name)
            if found is None:
                raise LakeError(f"lake table {name} does not exist (looked in {self.uri(name)})")
            return found
        try:
            return DeltaTable(self.uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise LakeError(f"lake table {name} does not exist (looked in {self.uri(name)})") from None
        except OSError as exc:
            raise self._storage_error(exc) from None

    def names(self, layers: Iterable[str] | None = None) -> list[str]:
        """Every ``layer.table`` holding a ``_delta_log``, listed through the storage (local or S3)."""
        from lakeforge.lake.delta.listing import list_tables

        wanted = set(layers) if layers is not None else None
        try:
            found = list_tables(self.storage)
        except OSError as exc:
            raise self._storage_error(exc) from None
        layer_ok = (lambda layer: layer != INTERNAL) if wanted is None else (lambda layer: layer in wanted)
        return sorted(n for n in found if layer_ok(n.split(".")[0]))

    def _storage_error(self, exc: BaseException) -> LakeError:
        text = self.storage.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        return LakeError(f"lake {self.root}: storage failed: {text}")

    # -- reading ------------------------------------------------------------------------------------
    def _open(self, name: str) -> DeltaTable | None:
        """The table at its newest version, or None when it does not exist (the kept handle, refreshed)."""
        return self._handles.get(name)

    def _open_fresh(self, name: str) -> DeltaTable | None:
        """The table opened from storage, or None when it does not exist."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(name), storage_options=self.storage_options)
        except TableNotFoundError:
            return None
        except OSError as exc:
            raise self._storage_error(exc) from None

    def schema(self, name: str) -> pa.Schema | None:
        table = self._open(name)
        if table is None:
            return None
        import pyarrow as pa

        return pa.schema(table.schema())

    def snapshot(self, name: str, version: int | None = None) -> TableSnapshot:
        table = self.table(name, version)
        return TableSnapshot(table.version(), self._dataset(name, table))

    def data_files(self, name: str, version: int) -> TableFiles | None:
        """The version's add actions as URIs; None for what a plain Parquet read would get wrong: partition
        values (kept in paths), column mapping (physical names), deletion vectors."""
        table = self.table(name, version)
        meta = table.metadata()
        if meta.partition_columns or meta.configuration.get("delta.columnMapping.mode", "none") != "none":
            return None
        if "deletionVectors" in (table.protocol().reader_features or []):
            return None
        return TableFiles([str(uri) for uri in table.file_uris()], self.storage)

    def _dataset(self, name: str, table: DeltaTable) -> Any:
        if not self.is_local:
            return table.to_pyarrow_dataset()
        # Arrow's native filesystem: deltalake's default is a Python one, so Arrow's IO threads call into
        # Python, and a read-ahead abandoned by a query (LIMIT, an early-out join) that finishes while the
        # interpreter shuts down aborts the process ("terminate called without an active exception").
        import pyarrow.fs as pafs

        return table.to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(self.uri(name), pafs.LocalFileSystem()))

    def version(self, name: str) -> int:
        return int(self.table(name).version())

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The checkpoint of the newest commit that carries one."""
        table = self._open(name)
        if table is None:
            return None
        own = self._handles.own(name, table)
        if own is not None:  # this process's commit is still the newest: it carries the newest checkpoint
            return own.checkpoint
        if table.transaction_version(_app_id(name)) is None:
            return None
        limit = _HISTORY_PAGE
        while True:
            history = table.history(limit)
            found = [Checkpoint.from_json(c[METADATA_KEY]) for c in history if c.get(METADATA_KEY)]
            if found:  # the highest sequence: a compaction rebased over a concurrent commit carries an older one
                return max(found, key=lambda cp: cp.sequence)
            if len(history) < limit:
                return None
            limit *= 4

    def info(self, name: str) -> TableInfo:
        import datetime as dt

        table = self.table(name)
        actions = table.get_add_actions(flatten=True)
        rows = sum(v for v in actions.column("num_records").to_pylist() if v is not None)
        cp = self.checkpoint(name)
        last = table.history(1)[0].get("timestamp")
        when = dt.datetime.fromtimestamp(last / 1000, tz=dt.UTC).isoformat(timespec="seconds") if last else None
        layer, _ = split_name(name)
        return TableInfo(name, layer, rows, table.version(), when, cp.mode if cp else None, self.uri(name), "delta")

    def properties(self, name: str) -> dict[str, str]:
        table = self._open(name)
        return split_properties(table.metadata().description) if table is not None else {}

    def next_sequence(self, name: str) -> int:
        table = self._open(name)
        if table is None:
            return 1
        own = self._handles.own(name, table)
        if own is not None:
            return own.checkpoint.sequence + 1
        current = table.transaction_version(_app_id(name))
        return (current or 0) + 1

    # -- writing ------------------------------------------------------------------------------------
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
        """Stream ``batches`` into one atomic commit (replace or append)."""
        import itertools

        import pyarrow as pa
        from deltalake import write_deltalake

        from lakeforge.lake.delta.encoding import writer_properties

        handle = self._handles.kept(name)
        if handle is None:
            self._refuse_iceberg(name)
        guard = StreamGuard(batches)
        # a kept handle may be behind: delta-rs checks the commits made since and retries or reports a conflict
        target: Any = handle or self.uri(name)
        before = handle.version() if handle is not None else None
        description = ";".join(f"{k}={v}" for k, v in properties.items()) if properties else None
        try:
            first = next(guard, None)  # its columns decide the encodings (lake/delta/encoding.py)
            stream = guard if first is None else itertools.chain([first], guard)
            write_deltalake(
                target,
                pa.RecordBatchReader.from_batches(schema, stream),
                mode=mode,
                schema_mode=schema_mode,
                partition_by=partition_by,
                storage_options=None if not isinstance(target, str) else self.storage_options,
                target_file_size=self.target_file_size,
                description=description,
                commit_properties=_commit(name, checkpoint),
                writer_properties=writer_properties(schema, first),
            )
        except Exception as exc:
            self._handles.forget(name)
            raise guard.error or delta_error(name, "write", exc) from exc
        if handle is not None:
            self._handles.committed(name, checkpoint if before is not None and handle.version() > before else None)
        elif name.startswith(INTERNAL + "."):  # written again soon (the run history): keep it open from now on
            self._open(name)
        if description and mode == "overwrite":  # write_deltalake sets a description only on a new table
            table = self._open(name)
            if table is not None and table.metadata().description != description:
                table.alter.set_table_description(description)
                self._handles.committed(name, None)

    def _refuse_iceberg(self, name: str) -> None:
        """Switching a table's format is not done in place: an Iceberg table where this Delta table would go."""
        from lakeforge.lake.base import format_switch
        from lakeforge.lake.delta.listing import is_iceberg_table

        layer, table = split_name(name)
        if is_iceberg_table(self.storage, layer, table):
            raise LakeError(format_switch(name, "Iceberg", "delta", self.uri(name)))

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
        from lakeforge.lake.delta.merge import allow_schema, merge

        allow_schema(self, name, schema)
        table = self.table(name)
        before = table.version()
        try:
            metrics = merge(
                table,
                name,
                batches,
                schema=schema,
                keys=keys,
                commit=_commit(name, checkpoint),
                delete_column=delete_column,
                keep_deleted=keep_deleted,
                compare=compare,
            )
        except Exception:
            self._handles.forget(name)
            raise
        self._handles.committed(name, checkpoint if table.version() > before else None)
        return metrics

    def delete_all(self, name: str, *, set_values: dict[str, Any] | None = None) -> None:
        from lakeforge.lake.delta.merge import sql_literal

        table = self.table(name)
        try:
            if set_values:
                table.update({k: sql_literal(v) for k, v in set_values.items()})
            else:
                table.delete()
        except Exception as exc:
            raise delta_error(name, "delete", exc) from exc

    def staging(self, name: str, schema: pa.Schema) -> str:
        """Delta data files live in the table's folder; an uncommitted one is invisible (and vacuumed)."""
        return self.uri(name)

    def commit_files(
        self,
        name: str,
        files: Sequence[DataFile],
        *,
        schema: pa.Schema,
        mode: Literal["overwrite", "append"],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        from lakeforge.lake.delta.files import commit_files

        self._refuse_iceberg(name)
        self._handles.forget(name)  # the commit is made through a handle of its own
        commit_files(self, name, files, schema=schema, mode=mode, commit=_commit(name, checkpoint))

    def maintain(self, name: str, *, retain_seconds: float, target_file_size: int | None = None) -> MaintainResult:
        from lakeforge.lake.delta.maintain import maintain

        return maintain(self, name, retain_seconds=retain_seconds, target_file_size=target_file_size)


def _app_id(name: str) -> str:
    return f"lakeforge:{name}"


def _commit(name: str, checkpoint: Checkpoint | None, *, transaction: bool = True) -> Any:
    """Commit properties carrying ``checkpoint``; ``transaction=False`` (a compaction, which delta-rs may rebase
    over a concurrent commit) leaves the transaction id alone, so ``next_sequence`` never goes back."""
    from deltalake import CommitProperties, Transaction

    if checkpoint is None:
        return None
    return CommitProperties(
        custom_metadata={METADATA_KEY: checkpoint.to_json()},
        app_transactions=[Transaction(_app_id(name), checkpoint.sequence)] if transaction else None,
    )


def delta_error(name: str, doing: str, exc: BaseException) -> LakeError:
    """A delta-rs failure as a LakeError: a commit conflict (``CommitFailedError``: a concurrent writer
    committed first) is transient, so the load that hit it starts over instead of failing for good."""
    from deltalake.exceptions import CommitFailedError

    from lakeforge.lake.base import lake_error

    return lake_error(name, doing, exc, transient=isinstance(exc, CommitFailedError))
