"""Give a record source's batch its declared column types, row by row exactly or not at all.

Each declared column is cast whole (safe casts: a value that would lose digits fails); when a cast fails, the
column is split in halves until the values that do not fit are found, so a bad value costs a few casts, not
a Python loop over the batch. The rows holding one are taken out and reported with the reason (column, value,
type); the rest keep their exact values.

Strings become timestamps with a time zone when they carry an offset (``Z``, ``+02:00``); a string without
one is taken as UTC (docs/type-mapping.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan


@dataclass(frozen=True)
class RowError:
    row: int
    """Index of the row in the batch."""
    reason: str


def apply_types(batch: pa.RecordBatch, columns: list[ColumnPlan]) -> tuple[pa.RecordBatch, list[RowError]]:
    """``batch`` with each declared column cast to its type, without the rows whose value does not fit."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not columns or not batch.num_columns:
        return batch, []
    errors: dict[int, str] = {}
    arrays = {name: batch.column(name) for name in batch.schema.names}
    for column in columns:
        name = column.name if column.name in arrays else column.lake_name
        if name not in arrays:
            continue
        cast, bad = cast_exact(arrays[name], column.arrow_type)
        arrays[name] = cast
        for row, value in bad:
            errors.setdefault(row, f"column {column.name}: {value!r} is not a valid {column.source_type}")
    table = pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))
    if not errors:
        return table, []
    keep = pa.array([i not in errors for i in range(batch.num_rows)], pa.bool_())
    return pc.filter(table, keep), [RowError(row, reason) for row, reason in sorted(errors.items())]


def cast_exact(array: pa.Array, target: pa.DataType) -> tuple[pa.Array, list[tuple[int, object]]]:
    """``array`` cast to ``target``, with NULL where a value does not fit, and those (row, value) pairs."""
    import pyarrow as pa

    if array.type == target:
        return array, []
    try:
        return _cast(array, target), []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        pass
    if len(array) == 1:
        return pa.nulls(1, target), [(0, array[0].as_py())]
    half = len(array) // 2
    left, left_bad = cast_exact(array.slice(0, half), target)
    right, right_bad = cast_exact(array.slice(half), target)
    merged = pa.concat_arrays([left, right])
    return merged, left_bad + [(half + row, value) for row, value in right_bad]


def _cast(array: pa.Array, target: pa.DataType) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeforge.sources.convert import conform_array

    if pa.types.is_string(array.type) or pa.types.is_large_string(array.type):
        if pa.types.is_timestamp(target) and target.tz:
            try:
                return pc.cast(array, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                naive = pc.cast(array, pa.timestamp(target.unit), safe=True)  # no offset: taken as UTC
                return naive.cast(target)
        if pa.types.is_binary(target):
            return array.cast(pa.binary())
    if pa.types.is_binary(array.type) and (pa.types.is_string(target) or pa.types.is_large_string(target)):
        return array.cast(target)  # validates UTF-8
    return conform_array(array, target)
