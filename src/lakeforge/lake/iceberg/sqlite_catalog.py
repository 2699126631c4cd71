"""PyIceberg's SQL catalog for a SQLite file, over the ``sqlite3`` module instead of SQLAlchemy.

The same two tables as PyIceberg's ``SqlCatalog`` (``iceberg_tables``, ``iceberg_namespace_properties``, its
"v1" layout with ``iceberg_type``), created the same way, so ``SqlCatalog`` and other engines' JDBC/SQL
catalogs read and write the file as before. Why: importing SQLAlchemy costs ~0.3 s of CPU in every
``lakeforge run`` on an Iceberg lake (docs/benchmarks.md, "Iceberg beside Delta").

A commit is what ``SqlCatalog`` does: write the new metadata file, then one conditional
``UPDATE ... WHERE metadata_location = <the one the commit started from>``; no row updated means another writer
committed first (``CommitFailedException``, which PyIceberg's commit retry handles). Unlike ``SqlCatalog`` it
does not re-read the table's metadata file when the catalog still points at the file the table was loaded
from (metadata files are immutable): a commit and a reload of an unchanged table cost one query each.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import TYPE_CHECKING, Any

# This module is imported only when a catalog is opened (lake/iceberg/catalog.py): PyIceberg at module level
# (the class derives from its MetastoreCatalog) costs nothing that opening the catalog would not.
from pyiceberg.catalog import Catalog, MetastoreCatalog, PropertiesUpdateSummary  # noqa: TID253
from pyiceberg.exceptions import (  # noqa: TID253
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec  # noqa: TID253
from pyiceberg.table import CommitTableResponse, Table  # noqa: TID253
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder  # noqa: TID253
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties  # noqa: TID253

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.io import FileIO
    from pyiceberg.schema import Schema
    from pyiceberg.table.metadata import TableMetadata
    from pyiceberg.table.update import TableRequirement, TableUpdate
    from pyiceberg.view import View

DDL = (
    """CREATE TABLE IF NOT EXISTS iceberg_tables (
\tcatalog_name VARCHAR(255) NOT NULL, 
\ttable_namespace VARCHAR(255) NOT NULL, 
\ttable_name VARCHAR(255) NOT NULL, 
\tmetadata_location VARCHAR(1000), 
\tprevious_metadata_location VARCHAR(1000), 
\ticeberg_type VARCHAR(5), 
\tPRIMARY KEY (catalog_name, table_namespace, table_name)
)""",
    """CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
\tcatalog_name VARCHAR(255) NOT NULL, 
\tnamespace VARCHAR(255) NOT NULL, 
\tproperty_key VARCHAR(255) NOT NULL, 
\tproperty_value VARCHAR(1000) NOT NULL, 
\tPRIMARY KEY (catalog_name, namespace, property_key)
)""",
)
"""What SQLAlchemy emits for ``SqlCatalog``'s models on SQLite (PyIceberg 0.12), spacing included."""


def sqlite_path(uri: str) -> str | None:
    """The file of a ``sqlite:///PATH`` URI (None for any other URI, or options this catalog does not read)."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or "?" in uri or uri == prefix:
        return None
    return uri[len(prefix) :]


class SqliteCatalog(MetastoreCatalog):
    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        path = sqlite_path(properties["uri"])
        if path is None:
            raise ValueError(f"not a sqlite:///PATH URI: {properties['uri']}")
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
        self._ios: dict[tuple[Any, ...], FileIO] = {}
        self._loaded: dict[tuple[str, str], tuple[str, TableMetadata]] = {}
        """The newest metadata each table was loaded or committed with, by its location."""
        with self._lock:
            for ddl in DDL:
                self._db.execute(ddl)
            columns = {row[1] for row in self._db.execute("PRAGMA table_info(iceberg_tables)")}
        self._typed = "iceberg_type" in columns
        """The v1 layout (``SqlCatalog`` leaves a v0 catalog without the column as it is, and so does this)."""

    # -- plumbing -----------------------------------------------------------------------------------
    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def _change(self, sql: str, *args: Any) -> int:
        with self._lock:
            return self._db.execute(sql, args).rowcount

    def _tables_only(self) -> str:
        return " AND (iceberg_type = 'TABLE' OR iceberg_type IS NULL)" if self._typed else ""

    @staticmethod
    def _split(identifier: str | Identifier) -> tuple[str, str]:
        namespace = Catalog.namespace_to_string(Catalog.namespace_from(identifier))
        return namespace, Catalog.table_name_from(identifier)

    def _insert_table(self, namespace: str, name: str, metadata_location: str) -> None:
        columns, marks, args = "", "", [self.name, namespace, name, metadata_location]
        if self._typed:
            columns, marks = ", iceberg_type", ", ?"
            args.append("TABLE")
        try:
            self._change(
                "INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, "
                f"previous_metadata_location{columns}) VALUES (?, ?, ?, ?, NULL{marks})",
                *args,
            )
        except sqlite3.IntegrityError as exc:
            raise TableAlreadyExistsError(f"Table {namespace}.{name} already exists") from exc

    def _location(self, namespace: str, name: str) -> str | None:
        rows = self._query(
            "SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? "
            "AND table_name = ?" + self._tables_only(),
            self.name,
            namespace,
            name,
        )
        return str(rows[0][0]) if rows and rows[0][0] else None

    def _table(self, namespace: str, name: str, location: str, metadata: TableMetadata | None = None) -> Table:
        from pyiceberg.io import load_file_io
        from pyiceberg.serializers import FromInputFile

        if metadata is None:
            cached = self._loaded.get((namespace, name))
            if cached is not None and cached[0] == location:
                metadata = cached[1]
            else:
                io = load_file_io(properties=self.properties, location=location)
                metadata = FromInputFile.table_metadata(io.new_input(location))
        self._loaded[(namespace, name)] = (location, metadata)
        return Table(
            identifier=Catalog.identifier_to_tuple(namespace) + (name,),
            metadata=metadata,
            metadata_location=location,
            io=self._load_file_io(metadata.properties, location),
            catalog=self,
        )

    def _load_file_io(self, properties: Properties = EMPTY_DICT, location: str | None = None) -> FileIO:
        """One FileIO per set of table properties and scheme, shared by every table loaded and commit staged:
        PyIceberg makes one per call, and each PyArrowFileIO opens its own filesystem (on S3 a new client and
        connections, ~0.1 s of CPU each time)."""
        key = (tuple(sorted(properties.items())), (location or "").partition("://")[0])
        io = self._ios.get(key)
        if io is None:
            io = self._ios[key] = super()._load_file_io(properties, location)
        return io

    # -- tables -------------------------------------------------------------------------------------
    def load_table(self, identifier: str | Identifier) -> Table:
        namespace, name = self._split(identifier)
        location = self._location(namespace, name)
        if location is None:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{name}")
        return self._table(namespace, name, location)

    def create_table(
        self,
        identifier: str | Identifier,
        schema: Schema | pa.Schema,
        location: str | None = None,
        partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
        sort_order: SortOrder = UNSORTED_SORT_ORDER,
        properties: Properties = EMPTY_DICT,
    ) -> Table:
        from pyiceberg.io import load_file_io
        from pyiceberg.table import TableProperties
        from pyiceberg.table.locations import load_location_provider
        from pyiceberg.table.metadata import new_table_metadata

        version = int(properties.get(TableProperties.FORMAT_VERSION, TableProperties.DEFAULT_FORMAT_VERSION))
        iceberg_schema = self._convert_schema_if_needed(schema, version)  # type: ignore[arg-type]
        namespace, name = self._split(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        location = self._resolve_table_location(location, namespace, name)
        metadata_location = load_location_provider(location, properties).new_table_metadata_file_location()
        metadata = new_table_metadata(
            location=location,
            schema=iceberg_schema,
            partition_spec=partition_spec,
            sort_order=sort_order,
            properties=properties,
        )
        self._write_metadata(metadata, load_file_io(self.properties, metadata_location), metadata_location)
        self._insert_table(namespace, name, metadata_location)
        return self._table(namespace, name, metadata_location, metadata)

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        if overwrite:
            raise NotImplementedError("`overwrite` isn't supported")
        namespace, name = self._split(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        self._insert_table(namespace, name, metadata_location)
        return self.load_table(identifier)

    def commit_table(
        self, table: Table, requirements: tuple[TableRequirement, ...], updates: tuple[TableUpdate, ...]
    ) -> CommitTableResponse:
        namespace, name = self._split(table.name())
        location = self._location(namespace, name)
        current: Table | None = None
        if location is not None:
            same = location == table.metadata_location
            current = self._table(namespace, name, location, table.metadata if same else None)
        staged = self._update_and_stage_table(current, table.name(), requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return CommitTableResponse(metadata=current.metadata, metadata_location=current.metadata_location)  # type: ignore[call-arg]
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        if current is None:
            self._insert_table(namespace, name, staged.metadata_location)
        elif (
            self._change(
                "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? WHERE "
                "catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
                staged.metadata_location,
                current.metadata_location,
                self.name,
                namespace,
                name,
                current.metadata_location,
            )
            < 1
        ):
            raise CommitFailedException(f"Table has been updated by another process: {namespace}.{name}")
        self._loaded[(namespace, name)] = (staged.metadata_location, staged.metadata)
        return CommitTableResponse(metadata=staged.metadata, metadata_location=staged.metadata_location)  # type: ignore[call-arg]

    def drop_table(self, identifier: str | Identifier) -> None:
        namespace, name = self._split(identifier)
        sql = "DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? AND table_name = ?"
        if self._change(sql + self._tables_only(), self.name, namespace, name) < 1:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{name}")
        self._loaded.pop((namespace, name), None)

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        old_namespace, old_name = self._split(from_identifier)
        namespace, name = self._split(to_identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        sql = (
            "UPDATE iceberg_tables SET table_namespace = ?, table_name = ? WHERE catalog_name = ? "
            "AND table_namespace = ? AND table_name = ?" + self._tables_only()
        )
        try:
            changed = self._change(sql, namespace, name, self.name, old_namespace, old_name)
        except sqlite3.IntegrityError as exc:
            raise TableAlreadyExistsError(f"Table {namespace}.{name} already exists") from exc
        if changed < 1:
            raise NoSuchTableError(f"Table does not exist: {old_name}")
        self._loaded.pop((old_namespace, old_name), None)
        return self.load_table(to_identifier)

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        text = Catalog.namespace_to_string(namespace)
        sql = "SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ?"
        rows = self._query(sql + self._tables_only(), self.name, text)
        return [Catalog.identifier_to_tuple(ns) + (name,) for ns, name in rows]

    # -- namespaces ---------------------------------------------------------------------------------
    def namespace_exists(self, identifier: str | Identifier) -> bool:
        namespace = Catalog.namespace_to_string(Catalog.identifier_to_tuple(identifier), NoSuchNamespaceError)
        below = namespace.replace("!", "!!").replace("_", "!_").replace("%", "!%") + ".%"
        for table, column in (("iceberg_tables", "table_namespace"), ("iceberg_namespace_properties", "namespace")):
            sql = (
                f"SELECT 1 FROM {table} WHERE catalog_name = ? AND ({column} = ? OR {column} LIKE ? ESCAPE '!') LIMIT 1"
            )
            if self._query(sql, self.name, namespace, below):
                return True
        return False

    def create_namespace(self, namespace: str | Identifier, properties: Properties = EMPTY_DICT) -> None:
        if self.namespace_exists(namespace):
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists")
        text = Catalog.namespace_to_string(namespace, NoSuchNamespaceError)
        rows = [(self.name, text, k, v) for k, v in (properties or {"exists": "true"}).items()]
        with self._lock:
            try:
                self._db.executemany("INSERT INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)", rows)
            except sqlite3.IntegrityError as exc:  # a concurrent writer created it first
                raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists") from exc

    def drop_namespace(self, namespace: str | Identifier) -> None:
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        text = Catalog.namespace_to_string(namespace)
        if tables := self.list_tables(namespace):
            raise NamespaceNotEmptyError(f"Namespace {text} is not empty. {len(tables)} tables exist.")
        self._change(
            "DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?", self.name, text
        )

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        parent = Catalog.identifier_to_tuple(namespace)
        rows = self._query(
            "SELECT table_namespace FROM iceberg_tables WHERE catalog_name = ? "
            "UNION SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = ?",
            self.name,
            self.name,
        )
        level = len(parent) + 1
        found = {Catalog.identifier_to_tuple(row[0]) for row in rows}
        return list({ns[:level] for ns in found if len(ns) >= level and ns[: level - 1] == parent})

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        text = Catalog.namespace_to_string(namespace)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace {text} does not exists")
        sql = (
            "SELECT property_key, property_value FROM iceberg_namespace_properties "
            "WHERE catalog_name = ? AND namespace = ?"
        )
        return {k: v for k, v in self._query(sql, self.name, text)}

    def update_namespace_properties(
        self, namespace: str | Identifier, removals: set[str] | None = None, updates: Properties = EMPTY_DICT
    ) -> PropertiesUpdateSummary:
        text = Catalog.namespace_to_string(namespace)
        current = self.load_namespace_properties(namespace)
        summary = self._get_updated_props_and_update_summary(current, removals, updates)[0]
        gone = sorted(set(removals or ()) | set(updates))
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany(
                    "DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? "
                    "AND property_key = ?",
                    [(self.name, text, k) for k in gone],
                )
                self._db.executemany(
                    "INSERT INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)",
                    [(self.name, text, k, v) for k, v in updates.items()],
                )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return summary

    # -- views (none, as in SqlCatalog) -------------------------------------------------------------
    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        raise NotImplementedError

    def view_exists(self, identifier: str | Identifier) -> bool:
        raise NotImplementedError

    def register_view(self, identifier: str | Identifier, metadata_location: str) -> View:
        raise NotImplementedError

    def drop_view(self, identifier: str | Identifier) -> None:
        raise NotImplementedError

    def load_view(self, identifier: str | Identifier) -> View:
        raise NotImplementedError

    def close(self) -> None:
        with self._lock:
            self._db.close()
