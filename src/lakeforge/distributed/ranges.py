"""Split a table into range queries on its integer primary key, with bounds read inside the snapshot."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lakeforge.distributed.snapshot import Snapshot
    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.sql import SqlSource


def key_ranges(low: int, high: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` half-open ranges ``[start, end)`` covering ``low..high`` exactly once (fewer when the key
    span is smaller than ``parts``)."""
    parts = max(1, min(parts, high - low + 1))
    step = -(-(high - low + 1) // parts)  # ceiling
    return [(start, min(start + step, high + 1)) for start in range(low, high + 1, step)]


def range_queries(source: SqlSource, plan: TablePlan, snapshot: Snapshot, partitions: int) -> list[str]:
    """One query per range (a single query when the table has no single integer key, or is empty)."""
    guard = snapshot.where()
    key = _int_key(plan)
    if key is None or partitions <= 1:
        return [source.select_sql(plan, guard)]
    qkey = source.quote(key)
    low, high = snapshot.query(f"SELECT MIN({qkey}), MAX({qkey}) FROM {source.table_sql(plan.ref)}")[0]
    if low is None or high is None:
        return [source.select_sql(plan, guard)]
    queries = []
    for start, end in key_ranges(int(low), int(high), partitions):
        cond = f"{qkey} >= {start} AND {qkey} < {end}"
        queries.append(source.select_sql(plan, f"{cond} AND {guard}" if guard else cond))
    return queries


def _int_key(plan: TablePlan) -> str | None:
    if len(plan.primary_key) != 1:
        return None
    column = plan.column(plan.primary_key[0])
    if column.kind != "number" or "int" not in str(column.arrow_type):
        return None
    return column.name
