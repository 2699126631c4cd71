"""A lake whose tables are in more than one format: ``lake.format`` for most, ``lake.layers.<layer>.format`` or
``lake.tables.<layer.table>.format`` for some.

:class:`RoutedLake` is a third :class:`Lake`: it holds one lake per format over the same root (and storage, and
Iceberg catalog) and hands each call to the lake of the table's format. lakeforge's own tables (the
``_lakeforge`` layer: run history, transform state) stay in ``lake.format``. A table whose files are in
another format than the one configured for it is refused on write with how to migrate (``format_switch``),
as when ``lake.format`` itself changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.lake.base import INTERNAL, Lake, MaintainResult, TableFiles, TableInfo, TableSnapshot
from lakeforge.lake.naming import split_name

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.config.models import LakeConfig
    from lakeforge.lake.checkpoint import Checkpoint


class RoutedLake(Lake):
    FORMAT = "mixed"

    def __init__(self, root: str, config: LakeConfig) -> None:
        self.root = root
        self.config = config
        from lakeforge.lake import lake_class

        for fmt in config.formats():  # a bad dotted path fails when the lake opens, not at its first table
            lake_class(fmt)
        self._lakes: dict[str, Lake] = {}
        self.default = self.lake_of_format(config.format)
        self.is_local = self.default.is_local
        self.storage = getattr(self.default, "storage", None)
        """The default lake's storage (the object-store run lock lives there)."""

    @classmethod
    def from_config(cls, root: str, config: LakeConfig) -> RoutedLake:
        return cls(root, config)

    def format_of(self, name: str) -> str:
        """The configured format of ``layer.table``: ``lake.tables``, then ``lake.layers``, then ``lake.format``."""
        layer, _ = split_name(name)
        if layer == INTERNAL:
            return self.config.format
        override = self.config.tables.get(name) or self.config.layers.get(layer)
        return override.format if override else self.config.format

    def lake_of_format(self, fmt: str) -> Lake:
        if fmt not in self._lakes:
            from lakeforge.lake import lake_class

            update: dict[str, Any] = {"format": fmt, "layers": {}, "tables": {}}
            if fmt != "delta":
                update["storage_options"] = {}
            self._lakes[fmt] = lake_class(fmt).from_config(self.root, self.config.model_copy(update=update))
        return self._lakes[fmt]

    def lake_of(self, name: str) -> Lake:
        return self.lake_of_format(self.format_of(name))

    # -- finding tables -----------------------------------------------------------------------------
    def uri(self, name: str) -> str:
        return self.lake_of(name).uri(name)

    def exists(self, name: str) -> bool:
        return self.lake_of(name).exists(name)

    def names(self, layers: Iterable[str] | None = None) -> list[str]:
        wanted = list(layers) if layers is not None else None
        found: set[str] = set()
        for fmt in sorted(self.config.formats()):
            found.update(n for n in self.lake_of_format(fmt).names(wanted) if self.format_of(n) == fmt)
        return sorted(found)

    # -- reading ------------------------------------------------------------------------------------
    def schema(self, name: str) -> pa.Schema | None:
        return self.lake_of(name).schema(name)

    def snapshot(self, name: str, version: int | None = None) -> TableSnapshot:
        return self.lake_of(name).snapshot(name, version)

    def data_files(self, name: str, version: int) -> TableFiles | None:
        return self.lake_of(name).data_files(name, version)

    def version(self, name: str) -> int:
        return self.lake_of(name).version(name)

    def info(self, name: str) -> TableInfo:
        return self.lake_of(name).info(name)

    def checkpoint(self, name: str) -> Checkpoint | None:
        return self.lake_of(name).checkpoint(name)

    def next_sequence(self, name: str) -> int:
        return self.lake_of(name).next_sequence(name)

    def properties(self, name: str) -> dict[str, str]:
        return self.lake_of(name).properties(name)

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
        self.lake_of(name).write(
            name,
            batches,
            schema=schema,
            mode=mode,
            checkpoint=checkpoint,
            schema_mode=schema_mode,
            partition_by=partition_by,
            properties=properties,
        )

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
        return self.lake_of(name).merge(
            name,
            batches,
            schema=schema,
            keys=keys,
            checkpoint=checkpoint,
            delete_column=delete_column,
            keep_deleted=keep_deleted,
            compare=compare,
        )

    def delete_all(self, name: str, *, set_values: dict[str, Any] | None = None) -> None:
        self.lake_of(name).delete_all(name, set_values=set_values)

    def commit_checkpoint(self, name: str, checkpoint: Checkpoint, schema: pa.Schema) -> None:
        self.lake_of(name).commit_checkpoint(name, checkpoint, schema)

    def maintain(self, name: str, *, retain_seconds: float, target_file_size: int | None = None) -> MaintainResult:
        return self.lake_of(name).maintain(name, retain_seconds=retain_seconds, target_file_size=target_file_size)

    def close(self) -> None:
        for lake in self._lakes.values():
            lake.close()
