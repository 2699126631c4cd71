"""Cast a driver's record batch to the planned lake schema, exactly or not at all.

Every cast is ``safe``: a value that would lose digits or overflow raises instead of changing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    arrays = []
    for i, target in enumerate(schema):
        arrays.append(conform_array(batch.column(i), target.type))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(array.type, pa.ExtensionType) or isinstance(array, pa.ExtensionArray):
        array = array.storage
    if array.type == target:
        return array
    if pa.types.is_timestamp(array.type) and pa.types.is_timestamp(target) and array.type.tz and target.tz:
        # same instants, normalised zone name (connectorx says "+00:00", Delta wants "UTC")
        return array.cast(pa.timestamp(array.type.unit, target.tz)).cast(target)
    if pa.types.is_large_binary(array.type) and pa.types.is_binary(target):
        return array.cast(target)
    return pc.cast(array, target, safe=True)
