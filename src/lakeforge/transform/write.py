"""Query results to Delta: stream DuckDB's Arrow batches with types every Delta reader accepts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from lakeforge.lake.checkpoint import Checkpoint
    from lakeforge.transform.session import Session

BATCH_ROWS = 131_072


def delta_type(t: pa.DataType) -> pa.DataType:
    """Delta has no unsigned integers, TIME, INTERVAL or NULL type: widen or spell them."""
    import pyarrow as pa

    if pa.types.is_uint8(t) or pa.types.is_uint16(t):
        return pa.int32()
    if pa.types.is_uint32(t):
        return pa.int64()
    if pa.types.is_uint64(t):
        return pa.decimal128(20, 0)
    if pa.types.is_time(t) or pa.types.is_null(t) or pa.types.is_interval(t):
        return pa.string()
    if pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return pa.string()
    if pa.types.is_large_binary(t) or pa.types.is_binary_view(t):
        return pa.binary()
    if pa.types.is_timestamp(t) and t.unit != "us":
        return pa.timestamp("us", t.tz)
    return t


def result_batches(session: Session, sql: str | exp.Expr) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """The rows of ``sql`` (on the build's DuckDB) as Delta-ready batches."""
    relation = session.con.sql(session.text(sql))
    to_reader = getattr(relation, "to_arrow_reader", None)  # DuckDB >= 1.4; fetch_record_batch before
    reader = to_reader(BATCH_ROWS) if to_reader else relation.fetch_record_batch(BATCH_ROWS)
    schema = delta_schema(reader.schema)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield conform(batch, schema)

    return schema, batches()


def delta_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with :func:`delta_type` applied to every column."""
    import pyarrow as pa

    return pa.schema([pa.field(f.name, delta_type(f.type)) for f in schema])


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """``batch`` cast column by column (by position) to ``schema``."""
    import pyarrow as pa

    if batch.schema.equals(schema):
        return batch
    return pa.RecordBatch.from_arrays([_cast(batch.column(i), f.type) for i, f in enumerate(schema)], schema=schema)


def _cast(array: Any, target: pa.DataType) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if array.type == target:
        return array
    if pa.types.is_time(array.type) or pa.types.is_interval(array.type):
        return (
            pc.cast(array, pa.string(), safe=True)
            if not pa.types.is_interval(array.type)
            else pa.array([None if v is None else str(v) for v in array.to_pylist()], pa.string())
        )
    return pc.cast(array, target, safe=True)


def overwrite(session: Session, name: str, sql: str | exp.Expr, checkpoint: Checkpoint) -> None:
    schema, batches = result_batches(session, sql)
    session.lake.write(name, batches, schema=schema, mode="overwrite", checkpoint=checkpoint, schema_mode="overwrite")


def append(session: Session, name: str, sql: str | exp.Expr) -> None:
    schema, batches = result_batches(session, sql)
    session.lake.write(name, batches, schema=schema, mode="append", schema_mode="merge")


def merge(session: Session, name: str, sql: str | exp.Expr, keys: list[str], checkpoint: Checkpoint) -> dict[str, Any]:
    schema, batches = result_batches(session, sql)
    return session.lake.merge(name, batches, schema=schema, keys=keys, checkpoint=checkpoint)
