"""pgoutput row messages kept as they came and decoded a whole micro-batch at a time, column by column.

Decoding a pgoutput tuple value by value in Python (``pgoutput.tuple_at``: a list and a ``str`` per value),
then transposing the rows and handing Arrow one Python list per column cost ~2/3 of a PostgreSQL catch-up's
CPU (docs/benchmarks.md, "Profiles 3"). Here the reading thread only keeps each Insert/Update/Delete message's
bytes; the commit thread joins a micro-batch's messages into one buffer and walks all of them at once, one
column at a time, with numpy (every message's tuple starts at byte 6 and its values follow each other, so
the offset of column ``i + 1`` is the offset of column ``i`` plus its size, computed for every row in one
array operation). Each column comes out as an Arrow string array of the values' text, which
``pgoutput.text_array_to_arrow`` converts as ``text_to_arrow`` converts the same values one by one.

Anything else (an unchanged TOAST value, a binary value, a message of another shape, text that is not
UTF-8) makes :meth:`RawRows.arrays` return None, and the batch is decoded row by row by :meth:`RawRows.rows`,
the per-row path as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.sources.postgres.pgoutput import tuple_at

if TYPE_CHECKING:
    import pyarrow as pa

_TUPLE_AT = 6
"""Insert: kind, relation oid, 'N'; Update without an old tuple: the same; Delete: kind, oid, 'K'/'O'."""
_GATHER_BYTES = 2**20
"""Bytes of text copied per step into a column (the copy's index array is 8 bytes a byte)."""


@dataclass(slots=True)
class RawRows:
    """Row messages of one relation (Insert, Update without an old tuple, Delete) as the server sent them."""

    columns: list[str]
    payloads: list[bytes] = field(default_factory=list)

    def rows(self) -> tuple[list[list[Any]], dict[int, frozenset[str]]]:
        """Each message's values decoded by ``tuple_at``, and the columns not sent (unchanged TOAST values) by
        row number."""
        rows: list[list[Any]] = []
        unchanged: dict[int, frozenset[str]] = {}
        names = self.columns
        for i, payload in enumerate(self.payloads):
            values, skipped, _ = tuple_at(payload, _TUPLE_AT)
            if skipped is not None:
                unchanged[i] = frozenset(names[j] for j in skipped)
            rows.append(values)
        return rows, unchanged


def text_columns(parts: list[RawRows]) -> list[pa.Array] | None:
    """The text of every column of ``parts`` (one relation's messages, in order) as Arrow string arrays, one
    per column in relation order; None when a message holds anything but text and NULL values (or is not
    UTF-8, or not of the expected shape)."""
    import numpy as np
    import pyarrow as pa

    payloads = [p for part in parts for p in part.payloads]
    count = len(payloads)
    width = len(parts[0].columns)
    if not count:
        return [pa.array([], pa.string()) for _ in range(width)]
    sizes = np.fromiter(map(len, payloads), np.int64, count)
    ends = np.cumsum(sizes)
    starts = ends - sizes
    data = np.frombuffer(b"".join(payloads) + bytes(8), np.uint8)  # padding: a NULL's "length" may read past
    at = starts + _TUPLE_AT
    if (at + 2 > ends).any():
        return None
    counts = (data[at].astype(np.int64) << 8) | data[at + 1]
    if (counts != width).any():
        return None
    at = at + 2
    columns = []
    for _ in range(width):
        kind = data[at]
        text = kind == 116  # 't'
        if not (text | (kind == 110)).all():  # 'n' NULL; 'u' unchanged or 'b' binary: row by row
            return None
        size = (
            (data[at + 1].astype(np.int64) << 24)
            | (data[at + 2].astype(np.int64) << 16)
            | (data[at + 3].astype(np.int64) << 8)
            | data[at + 4]
        )
        size = np.where(text, size, 0)
        first = at + 5
        at = at + 1 + np.where(text, 4 + size, 0)
        if (at > ends).any():
            return None
        columns.append(_strings(data, first, size, text))
    if (at != ends).any():
        return None
    try:
        for column in columns:
            column.validate(full=True)  # UTF-8
    except pa.ArrowInvalid:
        return None
    return columns


def _strings(data: Any, first: Any, size: Any, valid: Any) -> pa.Array:
    """The Arrow string array of the byte ranges ``data[first[i] : first[i] + size[i]]`` (null where not
    ``valid``)."""
    import numpy as np
    import pyarrow as pa

    count = len(size)
    offsets = np.zeros(count + 1, np.int64)
    np.cumsum(size, out=offsets[1:])
    total = int(offsets[-1])
    values = np.empty(total, np.uint8)
    # the byte positions to copy, a few rows at a time: one int64 index per byte of text would take 8x the text
    marks = np.arange(0, total, _GATHER_BYTES)  # no step for a column of empty and NULL values only
    steps = np.unique(np.searchsorted(offsets, marks, side="right") - 1).tolist()
    for start, stop in zip(steps, [*steps[1:], count] if steps else [], strict=True):
        low, high = int(offsets[start]), int(offsets[stop])
        shift = first[start:stop] - offsets[start:stop]
        values[low:high] = data[np.repeat(shift, size[start:stop]) + np.arange(low, high, dtype=np.int64)]
    nulls = count - int(valid.sum())
    bitmap = pa.py_buffer(np.packbits(valid, bitorder="little")) if nulls else None
    kind = pa.string() if total < 2**31 else pa.large_string()
    offsets = offsets.astype(np.int32) if total < 2**31 else offsets
    array = pa.Array.from_buffers(kind, count, [bitmap, pa.py_buffer(offsets), pa.py_buffer(values)], null_count=nulls)
    return array if kind == pa.string() else array.cast(pa.string())
