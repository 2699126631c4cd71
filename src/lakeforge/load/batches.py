"""Batch plumbing shared by the load strategies: bronze metadata columns, casting to the target schema."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

META_SOURCE = "_lf_source"
META_EXTRACTED_AT = "_lf_extracted_at"
META_RUN_ID = "_lf_run_id"
META_COLUMNS = (META_SOURCE, META_EXTRACTED_AT, META_RUN_ID)


@dataclass(frozen=True)
class Stamp:
    """What every bronze row records about the load that wrote it."""

    source: str
    run_id: str
    extracted_at: dt.datetime


def meta_fields() -> list[pa.Field]:
    import pyarrow as pa

    return [
        pa.field(META_SOURCE, pa.string()),
        pa.field(META_EXTRACTED_AT, pa.timestamp("us", tz="UTC")),
        pa.field(META_RUN_ID, pa.string()),
    ]


def with_meta(schema: pa.Schema) -> pa.Schema:
    import pyarrow as pa

    names = set(schema.names)
    return pa.schema([*schema, *[f for f in meta_fields() if f.name not in names]])


def stamp_and_cast(
    batches: Iterable[pa.RecordBatch], target: pa.Schema, stamp: Stamp, constants: Constants | None = None
) -> Iterator[pa.RecordBatch]:
    """Add the metadata columns and cast each batch to ``target`` (missing columns become NULL). A caller
    that stamps one batch at a time passes the same ``constants`` each time (they are built once)."""
    import pyarrow as pa

    from lakeforge.sources.convert import conform_array

    constants = constants or Constants(stamp)
    physical = constants.schema(target)
    for batch in batches:
        n = batch.num_rows
        arrays = []
        for field in target:
            if field.name in META_COLUMNS:
                arrays.append(constants.column(field, n))
            elif field.name in batch.schema.names:
                arrays.append(conform_array(batch.column(field.name), field.type))
            else:
                arrays.append(pa.nulls(n, field.type))
        yield pa.RecordBatch.from_arrays(arrays, schema=physical)


class Constants:
    """The metadata columns, built once per load and sliced (zero-copy) for each batch.

    The values are built from raw buffers: ``pa.scalar()`` or ``pa.array()`` on a Python value makes
    pyarrow import pandas to check for pandas objects, ~0.5 s of CPU per process (docs/benchmarks.md).
    """

    def __init__(self, stamp: Stamp, *, dictionary: bool = False) -> None:
        self.values = {
            META_SOURCE: _one_string(stamp.source),
            META_EXTRACTED_AT: _one_timestamp(stamp.extracted_at),
            META_RUN_ID: _one_string(stamp.run_id),
        }
        self.columns: dict[str, pa.Array] = {}
        self.dictionary = dictionary
        """The text constants as dictionary arrays (one value, every index 0), for lakeforge's own Parquet
        encoders (load/staged.py), which then write the dictionary as it is instead of hashing every row's
        string to build it: ~0.2 user CPU s per GB of CSV (docs/benchmarks.md, session 9). Only those encoders get
        them; the rows' type in the table stays ``string``."""

    def schema(self, target: pa.Schema) -> pa.Schema:
        """``target`` with each text constant column of the type :meth:`column` builds it as."""
        import pyarrow as pa

        if not self.dictionary:
            return target
        return pa.schema(
            [f.with_type(pa.dictionary(pa.int32(), f.type)) if self._as_dictionary(f) else f for f in target],
            metadata=target.metadata,
        )

    def _as_dictionary(self, field: pa.Field) -> bool:
        import pyarrow as pa

        return self.dictionary and field.name in META_COLUMNS and pa.types.is_string(field.type)

    def column(self, field: pa.Field, n: int) -> pa.Array:
        import pyarrow as pa

        built = self.columns.get(field.name)
        logical = built.type.value_type if built is not None and pa.types.is_dictionary(built.type) else None
        if built is None or len(built) < n or (logical or built.type) != field.type:
            one = self.values[field.name]
            if self._as_dictionary(field):
                zeros = pa.Array.from_buffers(pa.int32(), n, [None, pa.py_buffer(bytes(4 * n))])
                built = pa.DictionaryArray.from_arrays(zeros, one)
            else:
                built = pa.repeat(one[0], n)  # not nulls().fill_null(): that imports pyarrow.compute (~0.1 s)
                if built.type != field.type:
                    built = built.cast(field.type)
            self.columns[field.name] = built
        return built.slice(0, n)


def _one_string(value: str) -> pa.Array:
    import struct

    import pyarrow as pa

    data = value.encode()
    offsets = pa.py_buffer(struct.pack("<ii", 0, len(data)))
    return pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(data)])


def _one_timestamp(value: dt.datetime) -> pa.Array:
    import struct

    import pyarrow as pa

    aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    micros = (aware - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)
    return pa.Array.from_buffers(pa.timestamp("us", tz="UTC"), 1, [None, pa.py_buffer(struct.pack("<q", micros))])


def counted(batches: Iterable[pa.RecordBatch], on_rows: Callable[[int], None]) -> Iterator[pa.RecordBatch]:
    """Report each batch's rows; stop (rolling the table back) when the run was asked to stop."""
    from lakeforge import interrupt

    for batch in batches:
        interrupt.check()
        on_rows(batch.num_rows)
        yield batch


def rechunk(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Split batches longer than ``batch_size`` rows into zero-copy slices (some drivers return one huge
    batch), so progress, retries and the writer's file flushes see the stream at ``run.batch_size``."""
    for batch in batches:
        if batch.num_rows <= batch_size:
            yield batch
            continue
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)
