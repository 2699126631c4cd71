"""Incremental mode: rows past the last committed cursor, merged by key.

Each run fixes an upper bound first (the source's current maximum cursor), reads
``lower < cursor <= upper`` (``lower`` moved back by the lookback, if any), and MERGEs those rows by the
primary key (or ``merge_key``) in one commit that also records ``upper`` as the new cursor. A crash before
that commit leaves the old cursor, so the same window is read again; re-read rows replace themselves, so
nothing is lost and nothing is duplicated. Rows whose cursor is NULL are never selected (document them or
use full mode).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.config.models import parse_lookback
from lakeforge.errors import ConfigError
from lakeforge.lake.checkpoint import Checkpoint, encode_value
from lakeforge.load.batches import META_COLUMNS
from lakeforge.load.context import LoadContext
from lakeforge.load.full import _partitions, plan_evolution, stream
from lakeforge.sources.base import ColumnPlan, TablePlan
from lakeforge.sources.sql import SqlSource

if TYPE_CHECKING:
    import pyarrow as pa


def merge_keys(plan: TablePlan) -> list[str]:
    """Lake names of the merge key: ``merge_key``, else ``primary_key`` option, else the catalog's key."""
    keys = plan.options.merge_key or plan.options.primary_key or plan.primary_key
    if not keys:
        raise ConfigError(
            f"source '{plan.source}': table {plan.ref.qualified} has no primary key; "
            f"incremental mode needs one: set tables.{plan.ref.name}.merge_key in lakeforge.yml"
        )
    return [plan.column(k).lake_name for k in keys]


def cursor_columns(plan: TablePlan) -> list[ColumnPlan]:
    if not plan.options.cursor:
        raise ConfigError(
            f"source '{plan.source}': table {plan.ref.qualified} is incremental but has no cursor; "
            f"set tables.{plan.ref.name}.cursor (e.g. [updated_at] or [id]) in lakeforge.yml"
        )
    return [plan.column(c) for c in plan.options.cursor]


def load_incremental(ctx: LoadContext, source: SqlSource, plan: TablePlan, name: str) -> Checkpoint | None:
    """Load the new window; returns the committed checkpoint, or None when nothing changed (no commit)."""
    keys = merge_keys(plan)
    cursor = cursor_columns(plan)
    previous = ctx.lake.checkpoint(name)
    upper = _upper_bound(source, plan, cursor)
    lower = _usable_lower(previous, cursor)
    changed_from = _changed_cursor(previous, cursor)
    if changed_from is not None:
        ctx.note(
            f"cursor changed from [{', '.join(changed_from)}] to [{', '.join(c.name for c in cursor)}]: "
            "the table was reloaded in full (rows are merged by key, so nothing is duplicated)"
        )
    if upper is None or (lower is not None and lower == upper and plan.options.lookback is None):
        return None
    checkpoint = Checkpoint(
        run_id=ctx.stamp.run_id,
        mode="incremental",
        sequence=ctx.lake.next_sequence(name),
        cursor={"columns": [c.name for c in cursor], "values": [encode_value(v) for v in upper]},
        source=source.name,
        source_table=plan.ref.qualified,
    )
    lake_schema = ctx.lake.schema(name)
    evolution = plan_evolution(name, lake_schema, plan)
    if evolution.replaced:
        lower = None  # schema_change: replace reloads the whole table
        ctx.note("schema_change: replace: a column changed type incompatibly; the table was reloaded in full")
    where = _window(source, plan, cursor, lower, upper)
    if lower is None or lake_schema is None:
        batches = source.read(plan, where=where, batch_size=ctx.run.batch_size, partitions=_partitions(ctx, plan))
        ctx.lake.write(
            name,
            stream(ctx, name, batches, evolution.schema),
            schema=evolution.schema,
            mode="overwrite",
            checkpoint=checkpoint,
            schema_mode="overwrite",
        )
        return checkpoint
    if evolution.rewrite:
        rewrite_widened(ctx, name, evolution.schema, previous)
        ctx.note(evolution.rewrite_reason())
    batches = source.read(plan, where=where, batch_size=ctx.run.batch_size)
    metrics = ctx.lake.merge(
        name,
        stream(ctx, name, batches, evolution.schema),
        schema=evolution.schema,
        keys=keys,
        checkpoint=checkpoint,
        compare=None if evolution.added else _compared(evolution.schema),
    )
    changed = sum(
        int(metrics.get(k) or 0)
        for k in ("num_target_rows_inserted", "num_target_rows_updated", "num_target_rows_deleted")
    )
    return checkpoint if changed or evolution.rewrite else None


def _compared(schema: pa.Schema) -> list[str] | None:
    """Columns whose change makes a re-read row rewrite its match (None: always rewrite).

    Metadata columns are left out, so re-reading unchanged rows (lookback) commits nothing. Nested
    columns cannot be compared by the MERGE engine; with one, every matched row is rewritten.
    """
    import pyarrow as pa

    fields = [f for f in schema if f.name not in META_COLUMNS]
    if any(pa.types.is_nested(f.type) for f in fields):
        return None
    return [f.name for f in fields]


def _usable_lower(previous: Checkpoint | None, cursor: list[ColumnPlan]) -> list[Any] | None:
    if previous is None or previous.mode != "incremental" or not previous.cursor:
        return None
    if previous.cursor["columns"] != [c.name for c in cursor]:
        return None  # the cursor changed: start over with a full window
    return previous.cursor_values()


def _changed_cursor(previous: Checkpoint | None, cursor: list[ColumnPlan]) -> list[str] | None:
    """The previous cursor's columns when the table was loaded incrementally with other cursor columns."""
    if previous is None or previous.mode != "incremental" or not previous.cursor:
        return None
    columns: list[str] = previous.cursor["columns"]
    return columns if columns != [c.name for c in cursor] else None


def _upper_bound(source: SqlSource, plan: TablePlan, cursor: list[ColumnPlan]) -> list[Any] | None:
    cols = ", ".join(source.cursor_expr(c) for c in cursor)
    not_null = " AND ".join(f"{source.cursor_expr(c)} IS NOT NULL" for c in cursor)
    order = ", ".join(f"{source.cursor_expr(c)} DESC" for c in cursor)
    rows = source.query(f"SELECT {cols} FROM {source.table_sql(plan.ref)} WHERE {not_null} ORDER BY {order} LIMIT 1")
    return list(rows[0]) if rows else None


def _window(
    source: SqlSource, plan: TablePlan, cursor: list[ColumnPlan], lower: list[Any] | None, upper: list[Any]
) -> str:
    cols = "(" + ", ".join(source.cursor_expr(c) for c in cursor) + ")"
    upper_lit = "(" + ", ".join(source.literal(v, c) for v, c in zip(upper, cursor, strict=True)) + ")"
    where = f"{cols} <= {upper_lit}"
    if lower is None:
        return where
    if plan.options.lookback is not None:
        first = cursor[0]
        back = source.minus(source.literal(lower[0], first), parse_lookback(plan.options.lookback), first)
        return f"{source.cursor_expr(first)} > {back} AND {where}"
    lower_lit = "(" + ", ".join(source.literal(v, c) for v, c in zip(lower, cursor, strict=True)) + ")"
    return f"{cols} > {lower_lit} AND {where}"


def rewrite_widened(ctx: LoadContext, name: str, schema: Any, previous: Checkpoint | None) -> None:
    """Rewrite the table with widened column types, keeping its checkpoint (one commit)."""
    from lakeforge.sources.convert import conform

    dataset = ctx.lake.dataset(name)

    def batches() -> Any:
        for batch in dataset.to_batches():
            arrays = {f.name: batch.column(f.name) for f in batch.schema}
            import pyarrow as pa

            cols = [arrays.get(f.name, pa.nulls(batch.num_rows, f.type)) for f in schema]
            yield conform(pa.RecordBatch.from_arrays(cols, names=schema.names), schema)

    carried = None
    if previous is not None:
        carried = Checkpoint(**{**previous.__dict__, "sequence": ctx.lake.next_sequence(name)})
    ctx.lake.write(name, batches(), schema=schema, mode="overwrite", checkpoint=carried, schema_mode="overwrite")
