"""What every source offers: table discovery, an exact type plan per table, and streamed reads.

A source maps each column to a *plan*: the SQL expression that reads it safely and the Arrow type it lands
as. Readers alias columns ``_c0, _c1, ...`` so that odd identifiers never reach a driver's result
handling; :func:`lakeforge.sources.convert.conform` then casts each batch to the plan's schema and names.
"""

from __future__ import annotations

import datetime as dt
import decimal
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
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
    """Type as the source catalog spells it, e.g. ``numeric(12,2)``."""
    select_expr: str
    """SQL expression that reads the column so that the driver returns it exactly."""
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


CursorValue = int | decimal.Decimal | float | str | dt.datetime | dt.date


class Source(ABC):
    """A database the lake is filled from. Subclasses set the capability flags."""

    type_name: ClassVar[str]
    SUPPORTS_CDC: ClassVar[bool] = False
    SUPPORTS_PARALLEL_READ: ClassVar[bool] = True
    DEFAULT_SCHEMA: ClassVar[str]

    def __init__(self, name: str, config: SourceBase) -> None:
        self.name = name
        self.config = config

    # -- connection ---------------------------------------------------------------------------------
    @abstractmethod
    def check(self) -> dict[str, str]:
        """Connect and return facts about the server (version, ...); raises SourceError."""

    @abstractmethod
    def list_tables(self) -> list[TableRef]:
        """Base tables, views and materialized views readable by the configured user in the configured
        schemas (each with its ``kind``)."""

    @abstractmethod
    def describe(self, ref: TableRef, options: TableConfig) -> TablePlan:
        """Read the catalog and plan every column's type."""

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a small query on the catalog connection (cursor bounds, counts)."""

    @abstractmethod
    def stream(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Run a SELECT with the fast reader and stream its record batches."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Close catalog connections (readers close their own)."""

    # -- SQL dialect --------------------------------------------------------------------------------
    @abstractmethod
    def quote(self, identifier: str) -> str: ...

    @abstractmethod
    def literal(self, value: CursorValue, column: ColumnPlan) -> str:
        """A SQL literal comparable with ``column`` in this dialect."""

    @abstractmethod
    def minus(self, literal: str, amount: float, column: ColumnPlan) -> str:
        """``literal`` minus a lookback (seconds for time columns, units otherwise)."""

    def cursor_expr(self, column: ColumnPlan) -> str:
        """Expression that compares a cursor column (sources override for special types)."""
        return self.quote(column.name)

    def table_sql(self, ref: TableRef) -> str:
        return f"{self.quote(ref.schema)}.{self.quote(ref.name)}"

    def select_sql(self, plan: TablePlan, where: str | None = None) -> str:
        cols = ", ".join(f"{c.select_expr} AS _c{i}" for i, c in enumerate(plan.columns))
        sql = f"SELECT {cols} FROM {self.table_sql(plan.ref)}"
        return f"{sql} WHERE {where}" if where else sql

    # -- reading ------------------------------------------------------------------------------------
    def read(
        self, plan: TablePlan, *, where: str | None = None, batch_size: int, partitions: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """Stream the table's rows as batches of ``plan.arrow_schema()``."""
        from lakeforge.sources.convert import conform
        from lakeforge.sources.parallel import read_partitioned

        schema = plan.arrow_schema()
        queries = self._partition_queries(plan, where, partitions)
        # always in reader threads, even for one query: fetching overlaps the consumer's work (the writer)
        yield from read_partitioned(self, queries, batch_size, lambda batch: conform(batch, schema))

    def _partition_queries(self, plan: TablePlan, where: str | None, partitions: int) -> list[str]:
        """Split on a single integer primary key into ``partitions`` ranges; else one query."""
        if partitions <= 1 or len(plan.primary_key) != 1 or not self.SUPPORTS_PARALLEL_READ:
            return [self.select_sql(plan, where)]
        key = plan.column(plan.primary_key[0])
        if key.kind != "number" or "int" not in str(key.arrow_type):
            return [self.select_sql(plan, where)]
        qkey = self.quote(key.name)
        bounds_sql = f"SELECT MIN({qkey}), MAX({qkey}) FROM {self.table_sql(plan.ref)}"
        if where:
            bounds_sql += f" WHERE {where}"
        low, high = self.query(bounds_sql)[0]
        if low is None or high is None or high - low < partitions:
            return [self.select_sql(plan, where)]
        step = (high - low + 1) // partitions + 1
        queries = []
        for i in range(partitions):
            start, end = low + i * step, min(low + (i + 1) * step, high + 1)
            cond = f"{qkey} >= {start} AND {qkey} < {end}"
            queries.append(self.select_sql(plan, f"({where}) AND {cond}" if where else cond))
        return queries

    # -- errors -------------------------------------------------------------------------------------
    def scrub(self, text: str) -> str:
        """Remove this source's secrets from a third-party message."""
        for secret in self.config.secret_values():
            text = text.replace(secret, "***")
        return text
