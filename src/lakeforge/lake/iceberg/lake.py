"""Iceberg tables in a catalog: ``layer.table`` is the table ``table`` in the namespace ``layer``.

Every write is one catalog commit (one metadata file swapped atomically by the catalog). A checkpoint
travels in the summary properties of the commit's snapshots (``lakeforge.checkpoint``), so data and position
move together; it is read back from the newest snapshot that carries one. Writes stream their batches into
data files of ``target_file_size`` (PyIceberg's streaming append); a MERGE holds one 64 MiB window at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.config.models import LakeConfig, RestCatalogConfig, SqlCatalogConfig, StorageConfig
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
    lake_error,
)
from lakeforge.lake.checkpoint import METADATA_KEY, Checkpoint
from lakeforge.lake.naming import split_name
from lakeforge.lake.storage import Storage
from lakeforge.load.killpoint import kill_at

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.catalog import Catalog
    from pyiceberg.table import Table

INTERNAL_NAMESPACE = "lakeforge_internal"
"""Namespace of the internal layer (``_lakeforge``): catalogs such as S3 Tables refuse a leading ``_``."""
PROPERTY_PREFIX = "lakeforge."


class IcebergLake(Lake):
    FORMAT = "iceberg"
    SUPPORTS_COMMIT_FILES = True

    def __init__(
        self,
        root: str,
        *,
        catalog: SqlCatalogConfig | RestCatalogConfig | None = None,
        storage: StorageConfig | None = None,
        target_file_size: int | None = None,
        retain_seconds: float = 7 * 86400,
    ) -> None:
        self.retain_seconds = retain_seconds
        """``lake.maintenance.retain``: how old an unreferenced file must be before a trim deletes it."""
        self.storage = Storage(root, storage or StorageConfig())
        self.root = root
        self.is_local = self.storage.is_local
        self.catalog_config = catalog
        self.target_file_size = target_file_size
        self._catalog: Catalog | None = None

    @classmethod
    def from_config(cls, root: str, config: LakeConfig) -> IcebergLake:
        if config.storage_options:
            from lakeforge.errors import ConfigError

            raise ConfigError("lake.storage_options is for format: delta; use lake.storage for an Iceberg lake")
        return cls(
            root,
            catalog=config.catalog,
            storage=config.storage,
            target_file_size=config.target_file_size,
            retain_seconds=config.maintenance.retain_seconds,
        )

    @property
    def catalog(self) -> Catalog:
        if self._catalog is None:
            self._catalog = self._open_catalog()
        return self._catalog

    def _open_catalog(self) -> Catalog:
        from lakeforge.lake.iceberg.catalog import open_catalog

        try:
            return open_catalog(self.catalog_config, self.storage)
        except LakeError:
            raise
        except Exception as exc:
            raise self._error("open the catalog", exc) from None

    def _error(self, doing: str, exc: BaseException) -> LakeError:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return LakeError(f"lake {self.root}: {doing} failed: {self.storage.scrub(text)}")

    # -- locations ----------------------------------------------------------------------------------
    @property
    def namespace_prefix(self) -> str:
        return self.catalog_config.namespace_prefix if self.catalog_config is not None else ""

    def identifier(self, name: str) -> tuple[str, str]:
        layer, table = split_name(name)
        return (self.namespace_prefix + (INTERNAL_NAMESPACE if layer == INTERNAL else layer), table)

    def uri(self, name: str) -> str:
        layer, table = self.identifier(name)
        return self.storage.join(layer, table)

    def _load(self, name: str) -> Table | None:
        from pyiceberg.exceptions import NoSuchNamespaceError, NoSuchTableError

        for attempt in range(2):
            try:
                return self.catalog.load_table(self.identifier(name))
            except (NoSuchTableError, NoSuchNamespaceError):
                return None
            except LakeError:
                raise
            except FileNotFoundError as exc:  # the metadata file the catalog named is gone: read the catalog again
                if attempt:
                    raise self._error(f"load {name}", exc) from None
            except Exception as exc:
                raise self._error(f"load {name}", exc) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def table(self, name: str) -> Table:
        """The PyIceberg table (Iceberg-only code and tests; everything else uses the Lake interface)."""
        table = self._load(name)
        if table is None:
            raise LakeError(f"lake table {name} does not exist (catalog namespace {self.identifier(name)[0]})")
        return table

    def exists(self, name: str) -> bool:
        """True once a commit has landed: the catalog entry that a first write creates before its data
        commit (and that a write killed in between leaves behind) holds no snapshot and does not count."""
        table = self._load(name)
        return table is not None and table.current_snapshot() is not None

    def names(self, layers: Iterable[str] | None = None) -> list[str]:
        wanted = set(layers) if layers is not None else None
        found = []
        try:
            prefix = self.namespace_prefix
            for namespace, *_ in self.catalog.list_namespaces():
                layer = namespace[len(prefix) :]
                if not namespace.startswith(prefix):
                    continue
                if layer == INTERNAL_NAMESPACE:  # listed only when asked for by name (maintain)
                    layer = INTERNAL if wanted is not None and INTERNAL in wanted else ""
                if not layer or (wanted is not None and layer not in wanted):
                    continue
                found += [f"{layer}.{ident[-1]}" for ident in self.catalog.list_tables(namespace)]
        except LakeError:
            raise
        except Exception as exc:
            raise self._error("list tables", exc) from None
        return sorted(found)

    # -- reading ------------------------------------------------------------------------------------
    def schema(self, name: str) -> pa.Schema | None:
        table = self._load(name)
        return None if table is None else arrow_schema(table)

    def snapshot(self, name: str, version: int | None = None) -> TableSnapshot:
        from lakeforge.lake.iceberg.read import dataset

        table = self.table(name)
        snap = table.current_snapshot() if version is None else _by_sequence(table, version)
        if version is not None and snap is None:
            raise LakeError(f"lake table {name}: no version {version} (expired by maintenance, or never made)")
        return TableSnapshot(int(snap.sequence_number or 0) if snap else 0, dataset(self, table, snap))

    def data_files(self, name: str, version: int) -> TableFiles | None:
        from lakeforge.lake.iceberg.read import data_files

        table = self.table(name)
        snap = _by_sequence(table, version) if version else None
        if version and snap is None:
            raise LakeError(f"lake table {name}: no version {version} (expired by maintenance, or never made)")
        return data_files(self, table, snap)

    def version(self, name: str) -> int:
        snap = self.table(name).current_snapshot()
        return int(snap.sequence_number or 0) if snap else 0

    def checkpoint(self, name: str) -> Checkpoint | None:
        table = self._load(name)
        return None if table is None else _newest_checkpoint(table)

    def next_sequence(self, name: str) -> int:
        cp = self.checkpoint(name)
        return (cp.sequence if cp else 0) + 1

    def properties(self, name: str) -> dict[str, str]:
        table = self._load(name)
        if table is None:
            return {}
        return {k: v for k, v in table.properties.items() if k.startswith(PROPERTY_PREFIX)}

    def info(self, name: str) -> TableInfo:
        import datetime as dt

        table = self.table(name)
        snap = table.current_snapshot()
        rows = int(snap.summary["total-records"] or 0) if snap and snap.summary else 0
        when = None
        if snap is not None:
            when = dt.datetime.fromtimestamp(snap.timestamp_ms / 1000, tz=dt.UTC).isoformat(timespec="seconds")
        cp = self.checkpoint(name)
        layer, _ = split_name(name)
        version = int(snap.sequence_number or 0) if snap else 0
        return TableInfo(name, layer, rows, version, when, cp.mode if cp else None, table.location(), "iceberg")

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
        import pyarrow as pa

        from lakeforge.lake.iceberg.schema import check_types, evolve_in

        check_types(name, schema)
        guard = StreamGuard(batches)
        table = self._load(name) or self._create(name, schema, properties)
        try:
            with table.transaction() as tx:
                evolve_in(tx, schema, replace=schema_mode == "overwrite" and mode == "overwrite")
                if properties and any(table.properties.get(k) != v for k, v in properties.items()):
                    tx.set_properties(properties)
                reader = pa.RecordBatchReader.from_batches(schema, guard)
                summary = _summary(checkpoint)
                if mode == "overwrite" and table.current_snapshot() is not None and _has_rows(table):
                    tx.overwrite(reader, snapshot_properties=summary)
                else:
                    tx.append(reader, snapshot_properties=summary)
                kill_at("commit", name)  # crash test: data files written, catalog commit not made
        except LakeError:
            raise
        except Exception as exc:
            raise guard.error or iceberg_error(name, "write", exc) from exc
        if name.startswith(INTERNAL + "."):
            from lakeforge.lake.iceberg.trim import needs_trim, trim

            if needs_trim(table):
                trim(self, name)

    def _create(self, name: str, schema: pa.Schema, properties: dict[str, str] | None) -> Table:
        from lakeforge.lake.iceberg.schema import create_table

        return create_table(self, name, schema, properties)

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
        from lakeforge.lake.iceberg.merge import merge

        guard = StreamGuard(batches)
        try:
            return merge(
                self,
                self.table(name),
                guard,
                name=name,
                schema=schema,
                keys=keys,
                summary=_summary(checkpoint),
                delete_column=delete_column,
                keep_deleted=keep_deleted,
                compare=compare,
            )
        except LakeError:
            raise
        except Exception as exc:
            raise guard.error or iceberg_error(name, "merge", exc) from exc

    def delete_all(self, name: str, *, set_values: dict[str, Any] | None = None) -> None:
        import pyarrow as pa
        from pyiceberg.expressions import AlwaysTrue

        table = self.table(name)
        if not _has_rows(table):
            return
        try:
            if not set_values:
                table.delete(AlwaysTrue())
                return
            data = self.read(name)
            for column, value in set_values.items():
                index = data.schema.get_field_index(column)
                data = data.set_column(index, column, pa.array([value] * data.num_rows, data.schema.field(index).type))
            table.overwrite(data)
        except Exception as exc:
            raise iceberg_error(name, "delete", exc) from exc

    def commit_checkpoint(self, name: str, checkpoint: Checkpoint, schema: pa.Schema) -> None:
        """An empty append snapshot whose summary carries the checkpoint."""
        self.write(name, iter(()), schema=schema, mode="append", checkpoint=checkpoint)

    def staging(self, name: str, schema: pa.Schema) -> str:
        from lakeforge.lake.iceberg.files import staging

        return staging(self, name, schema)

    def file_schema(self, schema: pa.Schema) -> pa.Schema:
        from lakeforge.lake.iceberg.schema import optional

        return optional(schema)

    def commit_files(
        self,
        name: str,
        files: Sequence[DataFile],
        *,
        schema: pa.Schema,
        mode: Literal["overwrite", "append"],
        checkpoint: Checkpoint | None = None,
    ) -> None:
        from lakeforge.lake.iceberg.files import commit_files

        commit_files(self, name, files, schema=schema, mode=mode, summary=_summary(checkpoint))

    def maintain(self, name: str, *, retain_seconds: float, target_file_size: int | None = None) -> MaintainResult:
        from lakeforge.lake.iceberg.maintain import maintain

        return maintain(self, name, retain_seconds=retain_seconds, target_file_size=target_file_size)

    def close(self) -> None:
        if self._catalog is not None:
            self._catalog.close()  # SqlCatalog disposes its engine, SqliteCatalog closes its connection
        self._catalog = None


def _summary(checkpoint: Checkpoint | None) -> dict[str, str]:
    return {METADATA_KEY: checkpoint.to_json()} if checkpoint is not None else {}


def _has_rows(table: Table) -> bool:
    snap = table.current_snapshot()
    return bool(snap and snap.summary and int(snap.summary["total-data-files"] or 0))


def _by_sequence(table: Table, sequence: int) -> Any:
    return next((s for s in table.snapshots() if s.sequence_number == sequence), None)


CHECKPOINT_WINDOW = 32
"""Snapshots read back past the newest one that carries a checkpoint (see ``_newest_checkpoint``)."""


def _newest_checkpoint(table: Table) -> Checkpoint | None:
    """The checkpoint with the highest sequence among the newest snapshots that carry one (walking back through
    parents). Normally the newest; but a compaction (``maintain``) carries the position it read, and a
    concurrent commit that adds no data file (a checkpoint-only commit) can land between its read and its
    commit, so the compaction's snapshot may carry an older position than the one below it."""
    found: list[Checkpoint] = []
    snap = table.current_snapshot()
    left = None
    while snap is not None and (left is None or left > 0):
        value = snap.summary[METADATA_KEY] if snap.summary else None
        if value:
            found.append(Checkpoint.from_json(str(value)))
            left = CHECKPOINT_WINDOW if left is None else left
        if left is not None:
            left -= 1
        snap = table.snapshot_by_id(snap.parent_snapshot_id) if snap.parent_snapshot_id else None
    return max(found, key=lambda cp: cp.sequence) if found else None


def arrow_schema(table: Table) -> pa.Schema:
    """The table's schema as Arrow, without field ids, strings as ``string`` (PyIceberg says large_string)."""
    import pyarrow as pa

    from lakeforge.lake.iceberg.schema import small_types

    return pa.schema([small_types(f).remove_metadata() for f in table.schema().as_arrow()])


def iceberg_error(name: str, doing: str, exc: BaseException) -> LakeError:
    """A PyIceberg failure as a LakeError; a commit conflict is transient, so the load starts over:
    ``CommitFailedException`` (another writer committed first and PyIceberg's retries ran out) or
    ``ValidationException`` (PyIceberg's concurrency check refused to re-apply the commit on the newer snapshot,
    e.g. a MERGE whose files a concurrent compaction rewrote). Neither commit landed."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    return lake_error(name, doing, exc, transient=isinstance(exc, CommitFailedException | ValidationException))
