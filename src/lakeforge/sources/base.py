"""What every source offers: table discovery, a type plan per table, capability flags.

Two kinds of source build on :class:`Source`:

- :class:`lakeforge.sources.sql.SqlSource` (PostgreSQL, MySQL): reads are SQL, windows and cursors are
  pushed down as SQL, each column planned as the SQL expression that reads it exactly;
- :class:`lakeforge.sources.records.RecordSource` (files, streams, HTTP, Python): reads yield Arrow batches
  with the *position* reached after them and the bad records to quarantine (docs/sources.md, "Writing a
  source").

Load strategies read the capability flags instead of asking which database a source is.
"""

from __future__ import annotations

import datetime as dt
import decimal
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import SourceBase, TableConfig
from lakeforge.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass(frozen=True, order=True)
class TableRef:
    schema: str
    name: str
    kind: str = field(default="table", compare=False)
    """``table``, ``view`` or ``materialized_view``: views are loaded only when named under ``tables:``."""

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass(frozen=True)
class ColumnPlan:
    name: str
    """Name in the source."""
    lake_name: str
    """Name in the lake (normalised)."""
    source_type: str
    """Type as the source spells it, e.g. ``numeric(12,2)`` (a record source: the declared type)."""
    select_expr: str
    """SQL expression that reads the column so that the driver returns it exactly ("" for record sources)."""
    arrow_type: Any
    """Arrow type stored in the lake (``pa.DataType``)."""
    kind: str = "plain"
    """How the cursor literal is rendered: plain, datetime, datetime_tz, date, string, number."""


@dataclass(frozen=True)
class TablePlan:
    source: str
    ref: TableRef
    columns: list[ColumnPlan]
    primary_key: list[str]
    """Source names of the primary-key columns (empty when the table has none)."""
    estimated_rows: int = 0
    options: TableConfig = field(default_factory=TableConfig)

    def column(self, name: str) -> ColumnPlan:
        for col in self.columns:
            if col.name == name or col.lake_name == name:
                return col
        valid = ", ".join(c.name for c in self.columns)
        raise SourceError(self.source, f"table {self.ref.qualified} has no column '{name}'; columns: {valid}")

    def arrow_schema(self) -> pa.Schema:
        import pyarrow as pa

        return pa.schema([pa.field(c.lake_name, c.arrow_type, nullable=True) for c in self.columns])

    def merge_key(self) -> list[str]:
        """Source names of the columns rows are matched on: ``merge_key``, else ``primary_key`` of the
        options, else the table's primary key (empty when none is known)."""
        keys = self.options.merge_key or self.options.primary_key or self.primary_key
        return [self.column(k).name for k in keys]


_VARIABLE_WIDTH = 32
"""Bytes assumed for a string/binary/JSON value (the plan has no statistics)."""


def row_bytes(schema: pa.Schema) -> int:
    """Estimated Arrow bytes of one row of ``schema`` (fixed widths exact, variable widths assumed)."""
    width = 0
    for arrow_field in schema:
        try:
            width += max(1, arrow_field.type.bit_width // 8)
        except ValueError:  # variable width
            width += _VARIABLE_WIDTH
    return max(width, 1)


CursorValue = int | decimal.Decimal | float | str | dt.datetime | dt.date


class Source(ABC):
    """Something the lake is filled from. Subclasses set ``CONFIG`` and the capability flags."""

    type_name: ClassVar[str]
    CONFIG: ClassVar[type[SourceBase]]
    """The pydantic model of this type's options (a subclass of ``SourceBase``)."""
    SUPPORTS_SQL_PUSHDOWN: ClassVar[bool] = False
    """Reads are SQL: full and incremental windows run in the source (a :class:`SqlSource`)."""
    SUPPORTS_CURSOR: ClassVar[bool] = False
    """The source filters an incremental cursor itself; otherwise the loader filters it in Arrow."""
    SUPPORTS_CDC: ClassVar[bool] = False
    """The source has a change log (``mode: cdc``)."""
    SUPPORTS_STREAM: ClassVar[bool] = False
    """Unbounded: ``--follow`` keeps reading and commits every N seconds or N records."""
    SUPPORTS_FILE_LISTING: ClassVar[bool] = False
    """Reads files listed from a folder or prefix; its position is the set of files read."""
    SUPPORTS_PARALLEL_READ: ClassVar[bool] = False
    """Large tables are read in parallel key ranges."""
    DEFAULT_SCHEMA: ClassVar[str] = ""
    project_dir: Path = Path(".")
    """The project folder: relative paths in the source's options start there (set by ``create_source``)."""

    def __init__(self, name: str, config: SourceBase) -> None:
        self.name = name
        self.config = config

    @abstractmethod
    def check(self) -> dict[str, str]:
        """Reach the source and return facts about it (version, files, ...); raises SourceError."""

    @abstractmethod
    def list_tables(self) -> list[TableRef]:
        """The tables this source offers (each with its ``kind``)."""

    @abstractmethod
    def describe(self, ref: TableRef, options: TableConfig) -> TablePlan:
        """Plan the table's columns and types."""

    def lake_table(self, ref: TableRef) -> str:
        """The lake table's name without its layer: ``<prefix>_[<schema>_]<table>`` (the prefix is the
        ``prefix`` option, else the source's name; the schema only outside ``DEFAULT_SCHEMA``)."""
        from lakeforge.lake.naming import bronze_table_name

        prefix = self.config.prefix if self.config.prefix is not None else self.name
        return bronze_table_name(prefix, ref.schema, ref.name, self.DEFAULT_SCHEMA or ref.schema)

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Close connections (readers close their own)."""

    def scrub(self, text: str) -> str:
        """Remove this source's secrets from a third-party message."""
        for secret in self.config.secret_values():
            text = text.replace(secret, "***")
        return text
