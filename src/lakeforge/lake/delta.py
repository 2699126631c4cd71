"""Delta Lake tables in a lakehouse folder (or object store): ``<root>/<layer>/<name>``.

Writes take Arrow record batches as a stream, so memory does not grow with the table. Every write that
carries a :class:`Checkpoint` commits it in the same Delta commit as the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.errors import LakeError
from lakeforge.lake.checkpoint import METADATA_KEY, Checkpoint
from lakeforge.lake.naming import split_name

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

INTERNAL = "_lakeforge"
_HISTORY_PAGE = 50


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


class DeltaLake:
    """The lakehouse: locate, read and write Delta tables by ``layer.table`` name."""

    def __init__(
        self, root: str | Path, storage_options: dict[str, str] | None = None, *, target_file_size: int | None = None
    ) -> None:
        self.root = str(root)
        self.storage_options = storage_options or None
        self.is_local = "://" not in self.root
        self.target_file_size = target_file_size
        """Bytes per Parquet file written (None: delta-rs's default)."""

    # -- locations ----------------------------------------------------------------------------------
    def uri(self, name: str) -> str:
        layer, table = split_name(name)
        if self.is_local:
            return str(Path(self.root) / layer / table)
        return f"{self.root.rstrip('/')}/{layer}/{table}"

    def exists(self, name: str) -> bool:
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(self.uri(name), storage_options=self.storage_options))

    def table(self, name: str, version: int | None = None) -> DeltaTable:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(name), version=version, storage_options=self.storage_options)
        except TableNotFoundError:
            raise LakeError(f"lake table {name} does not exist (looked in {self.uri(name)})") from None

    def names(self, layers: Iterable[str] | None = None) -> list[str]:
        """Every ``layer.table`` in a local lakehouse, sorted."""
        if not self.is_local:
            raise LakeError("listing tables needs a local lakehouse folder")
        root = Path(self.root)
        found = []
        if root.is_dir():
            for log in root.glob("*/*/_delta_log"):
                layer, table = log.parent.parent.name, log.parent.name
                if layer != INTERNAL and (layers is None or layer in layers):
                    found.append(f"{layer}.{table}")
        return sorted(found)

    # -- reading ------------------------------------------------------------------------------------
    def _open(self, name: str) -> DeltaTable | None:
        """The table, or None when it does not exist (one log read instead of ``exists`` + ``table``)."""
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri(name), storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    def schema(self, name: str) -> pa.Schema | None:
        table = self._open(name)
        if table is None:
            return None
        import pyarrow as pa

        return pa.schema(table.schema())

    def version(self, name: str) -> int:
        """The table's current version."""
        return int(self.table(name).version())

    def dataset(self, name: str, version: int | None = None) -> pads.Dataset:
        table = self.table(name, version)
        if not self.is_local:
            return table.to_pyarrow_dataset()
        # Arrow's native filesystem: deltalake's default is a Python one, so Arrow's IO threads call into
        # Python, and a read-ahead abandoned by a query (LIMIT, an early-out join) that finishes while the
        # interpreter shuts down aborts the process ("terminate called without an active exception").
        import pyarrow.fs as pafs

        return table.to_pyarrow_dataset(filesystem=pafs.SubTreeFileSystem(self.uri(name), pafs.LocalFileSystem()))

    def read(self, name: str, version: int | None = None) -> pa.Table:
        return self.dataset(name, version).to_table()

    def checkpoint(self, name: str) -> Checkpoint | None:
        """The checkpoint of the newest commit that carries one."""
        if not self.exists(name):
            return None
        table = self.table(name)
        if table.transaction_version(_app_id(name)) is None:
            return None
        limit = _HISTORY_PAGE
        while True:
            history = table.history(limit)
            for commit in history:
                text = commit.get(METADATA_KEY)
                if text:
                    return Checkpoint.from_json(text)
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
        return TableInfo(name, layer, rows, table.version(), when, cp.mode if cp else None, self.uri(name))

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
    ) -> None:
        """Stream ``batches`` into one atomic commit (replace or append)."""
        import pyarrow as pa
        from deltalake import write_deltalake

        guard = _Guard(batches)
        reader = pa.RecordBatchReader.from_batches(schema, guard)
        try:
            write_deltalake(
                self.uri(name),
                reader,
                mode=mode,
                schema_mode=schema_mode,
                partition_by=partition_by,
                storage_options=self.storage_options,
                target_file_size=self.target_file_size,
                commit_properties=self._commit(name, checkpoint),
            )
        except Exception as exc:
            raise guard.error or _lake_error(name, "write", exc) from exc

    def merge(
        self,
        name: str,
        batches: Iterable[pa.RecordBatch],
        *,
        schema: pa.Schema,
        keys: list[str],
        checkpoint: Checkpoint | None = None,
        delete_column: str | None = None,
        compare: list[str] | None = None,
    ) -> dict[str, Any]:
        """Upsert by ``keys`` in one commit; rows with ``delete_column`` true delete their match.

        With ``compare``, a matched row is rewritten only when one of those columns differs, so re-reading
        rows the lake already holds changes nothing; a MERGE that changes nothing makes no commit (and so
        commits no checkpoint either).
        """
        import pyarrow as pa

        guard = _Guard(batches)
        reader = pa.RecordBatchReader.from_batches(schema, guard)
        predicate = " AND ".join(f"t.`{k}` = s.`{k}`" for k in keys)
        self.allow_schema(name, schema)
        try:
            merger = self.table(name).merge(
                reader,
                predicate,
                source_alias="s",
                target_alias="t",
                merge_schema=True,
                commit_properties=self._commit(name, checkpoint),
            )
            if delete_column:
                merger = merger.when_matched_delete(f"s.`{delete_column}`")
                update = {f.name: f"s.`{f.name}`" for f in schema if f.name != delete_column}
                merger = merger.when_matched_update(update, f"NOT s.`{delete_column}`")
                merger = merger.when_not_matched_insert(update, f"NOT s.`{delete_column}`")
            elif compare:
                changed = " OR ".join(f"(t.`{c}` IS DISTINCT FROM s.`{c}`)" for c in compare)
                merger = merger.when_matched_update_all(changed).when_not_matched_insert_all()
            else:
                merger = merger.when_matched_update_all().when_not_matched_insert_all()
            return dict(merger.execute())
        except Exception as exc:
            raise guard.error or _lake_error(name, "merge", exc) from exc

    def allow_schema(self, name: str, schema: pa.Schema) -> None:
        """Enable the ``timestampNtz`` table feature before a MERGE adds a timestamp column without a time zone
        (MySQL DATETIME): ``write_deltalake`` enables it when it evolves a schema, delta-rs's MERGE with
        ``merge_schema=True`` does not and fails ("Table contains TIMESTAMP_NTZ columns but does not have the
        required 'timestampNtz' feature")."""
        import pyarrow as pa
        from deltalake import TableFeatures

        if not any(pa.types.is_timestamp(f.type) and f.type.tz is None for f in schema):
            return
        table = self.table(name)
        if "timestampNtz" in (table.protocol().writer_features or []):
            return
        try:
            table.alter.add_feature(TableFeatures.TimestampWithoutTimezone, allow_protocol_versions_increase=True)
        except Exception as exc:
            raise _lake_error(name, "enable timestampNtz", exc) from exc

    def commit_checkpoint(self, name: str, checkpoint: Checkpoint, schema: pa.Schema) -> None:
        """Commit a checkpoint with no data (a position advanced past changes to other tables)."""
        self.write(name, iter(()), schema=schema, mode="append", checkpoint=checkpoint)

    def _commit(self, name: str, checkpoint: Checkpoint | None) -> Any:
        from deltalake import CommitProperties, Transaction

        if checkpoint is None:
            return None
        return CommitProperties(
            custom_metadata={METADATA_KEY: checkpoint.to_json()},
            app_transactions=[Transaction(_app_id(name), checkpoint.sequence)],
        )

    def next_sequence(self, name: str) -> int:
        table = self._open(name)
        if table is None:
            return 1
        current = table.transaction_version(_app_id(name))
        return (current or 0) + 1


class _Guard:
    """Iterates the batches for the Delta writer and keeps a lakeforge error raised inside the stream.

    delta-rs turns an exception raised by the stream into its own error type; the original (a source
    error marked ``transient``, say) is re-raised instead so retry loops still see it.
    """

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        self._it = iter(batches)
        self.error: Exception | None = None

    def __iter__(self) -> _Guard:
        return self

    def __next__(self) -> pa.RecordBatch:
        from lakeforge.errors import LakeforgeError

        try:
            return next(self._it)
        except LakeforgeError as exc:
            self.error = exc
            raise


def _app_id(name: str) -> str:
    return f"lakeforge:{name}"


def _lake_error(name: str, doing: str, exc: Exception) -> LakeError:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LakeError(f"lake table {name}: {doing} failed: {text}")
