"""Split a table into range queries, with bounds read inside the snapshot: on its integer primary key, or on
the column the table declares with ``partition_by`` (integer, date or timestamp; NULLs in a task of their
own)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    from lakeforge.distributed.snapshot import Snapshot
    from lakeforge.sources.base import ColumnPlan, TablePlan
    from lakeforge.sources.sql import SqlSource

_EPOCH = dt.datetime(1970, 1, 1)
_EPOCH_TZ = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def key_ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` half-open ranges ``[start, end)`` covering ``low..high`` exactly once (fewer when the key
    span is smaller than ``parts``)."""
    parts = max(1, min(parts, high - low + 1))
    step = -(-(high - low + 1) // parts)  # ceiling
    return [(start, min(start + step, high + 1)) for start in range(low, high + 1, step)]


def range_queries(source: SqlSource, plan: TablePlan, snapshot: Snapshot, partitions: int) -> list[str]:
    """One query per range (a single query when the table has no column to split on, or is empty)."""
    guard = snapshot.where()

    def query(cond: str | None) -> str:
        both = " AND ".join(c for c in (cond, guard) if c)
        return source.select_sql(plan, both or None)

    declared = plan.options.partition_by
    if declared:
        return [query(c) for c in declared_conditions(source, plan, snapshot, declared, partitions)]
    key = _int_key(plan)
    if key is None or partitions <= 1:
        return [query(None)]
    qkey = source.quote(key)
    low, high = snapshot.query(f"SELECT MIN({qkey}), MAX({qkey}) FROM {source.table_sql(plan.ref)}")[0]
    if low is None or high is None:
        return [query(None)]
    return [
        query(f"{qkey} >= {start} AND {qkey} < {end}") for start, end in key_ranges(int(low), int(high), partitions)
    ]


def declared_conditions(
    source: SqlSource, plan: TablePlan, snapshot: Snapshot, name: str, partitions: int
) -> list[str | None]:
    """Conditions on the ``partition_by`` column: ``partitions`` ranges between its smallest and largest value
    (the first and last open-ended, so every non-NULL row is in exactly one whatever the server makes of the
    literals) and ``IS NULL``; a single None (the whole table) for one partition."""
    column = _split_column(plan, name)
    if partitions <= 1:
        return [None]
    qcol = source.quote(column.name)
    low, high = snapshot.query(f"SELECT MIN({qcol}), MAX({qcol}) FROM {source.table_sql(plan.ref)}")[0]
    if low is None or high is None:
        return [None]  # no value, or only NULLs: one task
    to_int, literal = _scale(low)
    cuts = [start for start, _ in key_ranges(to_int(low), to_int(high), partitions)][1:]
    bounds = [literal(c) for c in cuts]
    conditions: list[str | None] = []
    for i in range(len(bounds) + 1):
        parts = ([f"{qcol} >= {bounds[i - 1]}"] if i else []) + ([f"{qcol} < {bounds[i]}"] if i < len(bounds) else [])
        conditions.append(" AND ".join(parts) if parts else f"{qcol} IS NOT NULL")
    conditions.append(f"{qcol} IS NULL")
    return conditions


def _split_column(plan: TablePlan, name: str) -> ColumnPlan:
    import pyarrow as pa

    found = [c for c in plan.columns if name in (c.name, c.lake_name)]
    if not found:
        raise ConfigError(
            f"table {plan.ref.qualified}: partition_by column '{name}' does not exist "
            f"(columns: {', '.join(c.name for c in plan.columns)})"
        )
    column = found[0]
    t = column.arrow_type
    if not (pa.types.is_integer(t) or pa.types.is_date(t) or pa.types.is_timestamp(t)):
        raise ConfigError(
            f"table {plan.ref.qualified}: partition_by column '{name}' is {column.source_type}; range tasks "
            "split an integer, date or timestamp column"
        )
    return column


def _scale(sample: Any) -> tuple[Any, Any]:
    """How a bound value maps to an integer scale and back to a SQL literal: integers as themselves, dates
    as days, timestamps as microseconds (an aware one in UTC, written with its offset)."""
    if isinstance(sample, dt.datetime):
        epoch = _EPOCH_TZ if sample.tzinfo is not None else _EPOCH

        def micros(value: dt.datetime) -> int:
            return (value - epoch) // dt.timedelta(microseconds=1)

        def timestamp(n: int) -> str:
            value = epoch + dt.timedelta(microseconds=n)
            text = value.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")
            return f"'{text}+00:00'" if value.tzinfo is not None else f"'{text}'"

        return micros, timestamp
    if isinstance(sample, dt.date):
        return (lambda value: value.toordinal()), (lambda n: f"'{dt.date.fromordinal(n).isoformat()}'")
    return int, str


def _int_key(plan: TablePlan) -> str | None:
    if len(plan.primary_key) != 1:
        return None
    column = plan.column(plan.primary_key[0])
    if column.kind != "number" or "int" not in str(column.arrow_type):
        return None
    return column.name
