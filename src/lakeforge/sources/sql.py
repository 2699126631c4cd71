"""Sources read with SQL (PostgreSQL, MySQL/MariaDB): windows and cursors are pushed down as SQL.

A SQL source maps each column to a *plan*: the SQL expression that reads it safely and the Arrow type it
lands as. Readers alias columns ``_c0, _c1, ...`` so that odd identifiers never reach a driver's result
handling; :func:`lakeforge.sources.convert.conform` then casts each batch to the plan's schema and names.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.sources.base import ColumnPlan, CursorValue, Source, TablePlan, TableRef

if TYPE_CHECKING:
    import pyarrow as pa


class SqlSource(Source):
    """A database read with SQL. ``list_tables`` gives base tables, views and materialized views readable by
    the configured user; ``describe`` reads the catalog and plans every column's exact type."""

    SUPPORTS_SQL_PUSHDOWN: ClassVar[bool] = True
    SUPPORTS_CURSOR: ClassVar[bool] = True
    SUPPORTS_PARALLEL_READ: ClassVar[bool] = True

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Run a small query on the catalog connection (cursor bounds, counts)."""

    @abstractmethod
    def stream(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Run a SELECT with the fast reader and stream its record batches."""

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
        return [self.select_sql(plan, cond) for cond in self._partition_conditions(plan, where, partitions)]

    def _partition_conditions(self, plan: TablePlan, where: str | None, partitions: int) -> list[str | None]:
        """The WHERE condition of each range query (``where`` itself when the table is read by one query)."""
        if partitions <= 1 or len(plan.primary_key) != 1 or not self.SUPPORTS_PARALLEL_READ:
            return [where]
        key = plan.column(plan.primary_key[0])
        if key.kind != "number" or "int" not in str(key.arrow_type):
            return [where]
        qkey = self.quote(key.name)
        bounds_sql = f"SELECT MIN({qkey}), MAX({qkey}) FROM {self.table_sql(plan.ref)}"
        if where:
            bounds_sql += f" WHERE {where}"
        low, high = self.query(bounds_sql)[0]
        if low is None or high is None or high - low < partitions:
            return [where]
        step = (high - low + 1) // partitions + 1
        conditions: list[str | None] = []
        for i in range(partitions):
            start, end = low + i * step, min(low + (i + 1) * step, high + 1)
            cond = f"{qkey} >= {start} AND {qkey} < {end}"
            conditions.append(f"({where}) AND {cond}" if where else cond)
        return conditions
