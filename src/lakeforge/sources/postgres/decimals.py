"""Read ``numeric(p,s)`` with p <= 18 as a scaled ``int8`` and rebuild the exact decimal on the client.

ADBC has no decimal output for NUMERIC: it decodes every value into its decimal text (a slow per-digit path,
~0.5 µs a value: 2.9 of the 5.4 s of client CPU fetching the bench's wide 1M table with six decimals) and
lakeforge then parses the text back into ``decimal128``. For a column of at most 18 digits PostgreSQL can send
``(col * 10^s)::int8`` instead: the product is exact (numeric arithmetic, no rounding: the value has at most
``s`` decimals) and fits int8 (|v| < 10^18 < 2^63). ADBC reads int64 at memcpy speed; on the client the int64
is cast to ``decimal128(19, 0)`` (exact, vectorised) and its buffers are re-labelled ``decimal128(p, s)``:
the unscaled integer is the same. Only the bulk reader uses this (a copy of the plan, local to the read); the
CDC snapshot and every other consumer of the plan keep its exact text path.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import TablePlan

MAX_DIGITS = 18
"""10^18 < 2^63: every numeric(p<=18, s) value times 10^s fits int8."""


def scaled_columns(plan: TablePlan) -> dict[int, pa.DataType]:
    """Positions of the numeric columns read as scaled integers, with their decimal type."""
    import pyarrow as pa

    found = {}
    for i, col in enumerate(plan.columns):
        t = col.arrow_type
        if pa.types.is_decimal128(t) and t.precision <= MAX_DIGITS and col.source_type.startswith("numeric"):
            found[i] = t
    return found


def read_plan(plan: TablePlan, scaled: dict[int, pa.DataType]) -> TablePlan:
    """``plan`` whose scaled columns select ``(expr * 10^s)::int8`` (a copy: the plan itself is unchanged).

    ``numeric(p,s)`` may hold NaN, which no decimal stores: it stops the query with a message naming the
    column, as the text path's cast does (docs/type-mapping.md)."""
    from lakeforge.sources.postgres.types import refuse, render

    columns = list(plan.columns)
    for i, t in scaled.items():
        col = columns[i]
        factor = "1" + "0" * t.scale
        value = f"({col.select_expr})"
        # the message depends on the row, so the planner cannot fold it and fail early (types.refuse)
        why = f"'holds ' || {value}::text || ', which decimal({t.precision},{t.scale}) cannot store'"
        stop = render(refuse(why, "0::int8"), value, col.name)
        expr = f"CASE WHEN {value} = 'NaN' THEN {stop} ELSE ({value} * {factor})::int8 END"
        columns[i] = replace(col, select_expr=expr)
    return replace(plan, columns=columns)


def unscale(batch: pa.RecordBatch, scaled: dict[int, pa.DataType]) -> pa.RecordBatch:
    """The scaled int64 columns of ``batch`` as their exact ``decimal128(p, s)``."""
    if not scaled:
        return batch
    import pyarrow as pa
    import pyarrow.compute as pc

    arrays = list(batch.columns)
    for i, t in scaled.items():
        whole = pc.cast(arrays[i], pa.decimal128(19, 0), safe=True)  # every int64; Arrow wants 19 digits
        arrays[i] = pa.Array.from_buffers(
            t, len(whole), whole.buffers(), null_count=whole.null_count, offset=whole.offset
        )
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)
