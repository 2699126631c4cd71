"""How a Delta write encodes its columns: which get a Parquet dictionary, which are delta-encoded.

The Parquet writer starts every column with a dictionary and drops it once the dictionary grows too big, so a
column of (nearly) unique values pays for a dictionary it never keeps: ~14% of the write's CPU for a table
with three such columns (ids, amounts, instants), and the files come out ~5% bigger (docs/benchmarks.md, Files).
Such a column is recognised on the stream's first batch and written without one. Only the encoding changes:
every reader sees the same values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


SAMPLE_ROWS = 16_384
"""Values of a column looked at in the first batch."""
MIN_SAMPLE = 4_096
"""Fewer values than this in the first batch: too few to tell, the writer's default is kept."""
DISTINCT_SHARE = 0.5
"""A column with more distinct values than this share of the sample is written without a dictionary."""


def writer_properties(schema: pa.Schema, first: pa.RecordBatch | None) -> Any:
    """delta-rs ``WriterProperties`` for a write of ``schema`` whose first batch is ``first``; None when every
    column keeps the writer's default."""
    from lakeforge.lake.naming import counting_columns

    counting = counting_columns(schema)
    unique = [n for n in high_cardinality(first) if n not in counting] if first is not None else []
    if not counting and not unique:
        return None
    from deltalake import ColumnProperties, WriterProperties

    delta = ColumnProperties(dictionary_enabled=False, encoding="DELTA_BINARY_PACKED")
    plain = ColumnProperties(dictionary_enabled=False)
    columns = {**dict.fromkeys(unique, plain), **dict.fromkeys(counting, delta)}
    # compression as delta-rs sets it without writer properties (these would otherwise write uncompressed)
    return WriterProperties(compression="SNAPPY", column_properties=columns)


def high_cardinality(batch: pa.RecordBatch) -> list[str]:
    """The fixed-width columns (integers, decimals, instants, dates, floats) of ``batch`` whose first
    ``SAMPLE_ROWS`` values are mostly distinct."""
    import numpy as np
    import pyarrow as pa

    found = []
    for field, column in zip(batch.schema, batch.columns, strict=True):
        kind = field.type
        fixed = pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
        fixed = fixed or pa.types.is_timestamp(kind) or pa.types.is_date(kind)
        if not fixed or "." in field.name or len(column) < MIN_SAMPLE:
            continue
        width = kind.bit_width // 8
        n = min(len(column), SAMPLE_ROWS)
        data = column.buffers()[1]
        if data is None or width < 1:
            continue
        dtype = f"u{width}" if width in (1, 2, 4, 8) else f"V{width}"
        raw = np.frombuffer(data, dtype=dtype, count=n, offset=column.offset * width)
        if len(np.unique(raw)) > DISTINCT_SHARE * n:  # a NULL slot holds any value: at worst a wrong guess
            found.append(field.name)
    return found
