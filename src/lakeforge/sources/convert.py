"""Cast a driver's record batch to the planned lake schema, exactly or not at all.

Every cast is ``safe``: a value that would lose digits or overflow raises instead of changing. Through
:func:`conform` that failure is a :class:`~lakeforge.errors.ConversionError` naming the column, the first
value that does not fit and the lake type; :func:`conform_array` raises pyarrow's own error (callers that
have a slower exact path catch it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConversionError

if TYPE_CHECKING:
    import pyarrow as pa


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    arrays = []
    for i, target in enumerate(schema):
        column = batch.column(i)
        try:
            arrays.append(conform_array(column, target.type))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
            raise _explain(column, target, exc) from None
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def conform_array(array: pa.Array, target: pa.DataType) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    array = _storage(array)
    if array.type == target:
        return array
    if pa.types.is_timestamp(array.type) and pa.types.is_timestamp(target) and array.type.tz and target.tz:
        # same instants, normalised zone name (connectorx says "+00:00", Delta wants "UTC")
        return array.cast(pa.timestamp(array.type.unit, target.tz)).cast(target)
    if pa.types.is_large_binary(array.type) and pa.types.is_binary(target):
        return array.cast(target)
    if _is_list(array.type) and pa.types.is_list(target) and _has_extension(array.type.value_type):
        # list<opaque numeric> (ADBC numeric[]): cast the elements' storage, keep offsets and nulls
        values = conform_array(array.flatten(), target.value_type)
        offsets = array.offsets if array.offset == 0 else pc.subtract(array.offsets, array.offsets[0])
        return pa.ListArray.from_arrays(offsets, values, type=target, mask=array.is_null())
    return pc.cast(array, target, safe=True)


def _storage(array: Any) -> Any:
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if isinstance(array.type, pa.ExtensionType) or isinstance(array, pa.ExtensionArray):
        return array.storage
    return array


def _is_list(t: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_list(t) or pa.types.is_large_list(t))


def _has_extension(t: pa.DataType) -> bool:
    import pyarrow as pa

    return isinstance(t, pa.ExtensionType)


def _explain(column: pa.Array, target: pa.Field, exc: Exception) -> ConversionError:
    """Find the first value that does not fit (slow path, only after a failure)."""
    import pyarrow as pa

    column = _storage(column)
    for i in range(len(column)):
        value = column[i : i + 1]
        try:
            conform_array(value, target.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            shown = repr(value.to_pylist()[0])
            return ConversionError(
                f"column '{target.name}': value {shown[:100]} cannot be stored exactly as {target.type} "
                f"({str(exc).splitlines()[0][:200]}); see docs/type-mapping.md"
            )
    return ConversionError(f"column '{target.name}': cannot be stored as {target.type}: {exc}")
