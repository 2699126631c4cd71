"""Arrow record batches as tab-separated text, vectorised in Arrow (no Python loop over rows).

PostgreSQL's ``COPY ... FROM STDIN`` text format and MariaDB's ``LOAD DATA`` default format read the same
thing: fields separated by a tab, rows by a newline, ``\\N`` for NULL, and a backslash escaping a backslash,
tab, newline or carriage return inside a value. Each column is first rendered as text by a per-column
function the destination picks (how it spells booleans, bytes, timestamps); this module escapes and joins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

Render = Callable[["pa.Array"], "pa.Array"]
"""Turns one column into a string array (nulls stay null)."""

_ESCAPES = (("\\", "\\\\"), ("\t", "\\t"), ("\n", "\\n"), ("\r", "\\r"))


class EncodeError(ValueError):
    """A column's value cannot be written exactly; ``column`` names it."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(f"column '{column}': {message}")
        self.column = column


def as_text(array: pa.Array) -> pa.Array:
    """Arrow's own text rendering (exact: shortest round-trip floats, every decimal digit)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.cast(array, pa.large_string())


def escaped(array: pa.Array) -> pa.Array:
    """A string column with the four special characters escaped."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.cast(array, pa.large_string())
    for raw, esc in _ESCAPES:
        out = pc.replace_substring(out, raw, esc)
    return out


def hex_digits(array: pa.Array) -> pa.Array:
    """Binary values as lower-case hex digits, without a Python loop over the values."""
    import numpy as np
    import pyarrow as pa

    arr = array.cast(pa.large_binary())
    n = len(arr)
    validity, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + n + 1]
    start, end = int(offsets[0]), int(offsets[-1])
    data = np.frombuffer(data_buf, dtype=np.uint8)[start:end] if data_buf is not None else np.empty(0, np.uint8)
    digits = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
    out = np.empty(2 * len(data), dtype=np.uint8)
    out[0::2] = digits[data >> 4]
    out[1::2] = digits[data & 0x0F]
    new_offsets = (offsets - start) * 2
    if validity is not None and arr.offset:
        validity = pa.array(arr.is_valid()).buffers()[1]
    return pa.Array.from_buffers(
        pa.large_string(),
        n,
        [validity, pa.py_buffer(new_offsets.tobytes()), pa.py_buffer(out.tobytes())],
        null_count=arr.null_count,
    )


def microseconds(array: pa.Array) -> pa.Array:
    """Timestamps/times at microsecond precision: a value with finer digits raises instead of being cut."""
    import pyarrow as pa

    t = array.type
    if pa.types.is_timestamp(t):
        return array.cast(pa.timestamp("us", t.tz), safe=True)
    if pa.types.is_time(t):
        return array.cast(pa.time64("us"), safe=True)
    if pa.types.is_duration(t):
        return array.cast(pa.duration("us"), safe=True)
    return array


def encode(batch: pa.RecordBatch, renders: list[Render]) -> bytes:
    """The batch as tab-separated lines, ready for COPY / LOAD DATA."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if batch.num_rows == 0:
        return b""
    columns = []
    for i, render in enumerate(renders):
        try:
            columns.append(render(batch.column(i)))
        except EncodeError:
            raise
        except (pa.ArrowInvalid, ValueError) as exc:
            raise EncodeError(batch.schema.names[i], " ".join(str(exc).split())) from None
    tab, newline = pa.scalar("\t", pa.large_string()), pa.scalar("\n", pa.large_string())
    rows = pc.binary_join_element_wise(*columns, tab, null_handling="replace", null_replacement="\\N")
    lines = pc.binary_join_element_wise(rows, newline, pa.scalar("", pa.large_string()))
    _, offsets_buf, data_buf = lines.buffers()
    import numpy as np

    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[lines.offset : lines.offset + len(lines) + 1]
    data: bytes = data_buf[int(offsets[0]) : int(offsets[-1])].to_pybytes()
    return data
