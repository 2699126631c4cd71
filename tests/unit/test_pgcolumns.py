"""pgoutput row messages decoded a micro-batch at a time (``pgcolumns.text_columns``) give value for value what
the per-row decoder (``pgoutput.tuple_at``) gives, and refuse (None, so the batch goes row by row) every message
that is not text and NULL values only. The messages are built byte for byte as the walsender writes them."""

from __future__ import annotations

import struct
from typing import Any

import pyarrow as pa
import pytest

from lakeforge.sources.cdc import RowBatch
from lakeforge.sources.postgres.pgcolumns import RawRows, text_columns
from lakeforge.sources.postgres.pgoutput import text_array_to_arrow, text_to_arrow, tuple_at


def value(v: str | bytes | None) -> bytes:
    if v is None:
        return b"n"
    if isinstance(v, bytes):  # already a kind byte and body ('u', or a raw 't' payload)
        return v
    data = v.encode()
    return b"t" + struct.pack("!i", len(data)) + data


def message(kind: bytes, values: list[Any], marker: bytes = b"N") -> bytes:
    body = struct.pack("!h", len(values)) + b"".join(value(v) for v in values)
    return kind + struct.pack("!I", 16384) + marker + body


ROWS = [
    (b"I", ["1", "héllo wörld ✓", "", None]),
    (b"U", ["2", None, "x" * 300, "12.50"]),
    (b"D", ["3", None, None, None]),
    (b"I", ["4", "a,b\x00c", "'quoted' \"too\"", "-0.01"]),
]


def test_columns_are_what_the_row_decoder_gives() -> None:
    columns = ["id", "name", "note", "amount"]
    parts = [RawRows(columns, [message(k, v, b"K" if k == b"D" else b"N") for k, v in ROWS[:2]]),
             RawRows(columns, [message(k, v, b"K" if k == b"D" else b"N") for k, v in ROWS[2:]])]
    arrays = text_columns(parts)
    assert arrays is not None
    expected = [tuple_at(p, 6)[0] for part in parts for p in part.payloads]
    assert [a.type for a in arrays] == [pa.string()] * 4
    assert [list(r) for r in zip(*[a.to_pylist() for a in arrays], strict=True)] == expected
    assert expected == [v for _, v in ROWS]
    rows, unchanged = parts[0].rows()
    assert rows == [v for _, v in ROWS[:2]] and unchanged == {}


@pytest.mark.parametrize(
    "values",
    [
        ["1", b"u", "x"],  # an unchanged TOAST value
        ["1", b"b" + struct.pack("!i", 2) + b"\x00\x01", "x"],  # a binary value
        ["1", b"t" + struct.pack("!i", 2) + b"\xff\xfe", "x"],  # text that is not UTF-8
    ],
)
def test_anything_but_text_and_null_goes_row_by_row(values: list[Any]) -> None:
    part = RawRows(["a", "b", "c"], [message(b"I", ["0", "y", "z"]), message(b"I", values)])
    assert text_columns([part]) is None


def test_a_message_of_another_width_or_shape_goes_row_by_row() -> None:
    assert text_columns([RawRows(["a", "b"], [message(b"I", ["1", "2"]), message(b"I", ["1"])])]) is None
    short = message(b"I", ["1", "2"])[:-1]
    assert text_columns([RawRows(["a", "b"], [short])]) is None
    longer = message(b"I", ["1", "2"]) + b"n"
    assert text_columns([RawRows(["a", "b"], [longer])]) is None


def test_unchanged_values_come_back_from_the_row_path() -> None:
    batch = RowBatch(None, ["a", "b"], raw=RawRows(["a", "b"], [message(b"U", ["1", b"u"])]))  # type: ignore[arg-type]
    batch.ops.append("update")
    assert text_columns([batch.raw]) is None  # type: ignore[list-item]
    batch.decode()
    assert batch.raw is None and batch.rows == [["1", None]] and batch.unchanged == {0: frozenset({"b"})}
    assert not batch.plain


@pytest.mark.parametrize(
    ("target", "values"),
    [
        (pa.int64(), ["1", None, "-9223372036854775808"]),
        (pa.decimal128(12, 2), ["1.50", "-0.01", None]),
        (pa.bool_(), ["t", "f", None]),
        (pa.date32(), ["2024-02-29", "infinity", None]),  # infinity: the per-value rules' clamp
        (pa.timestamp("us", tz="UTC"), ["2024-01-02 03:04:05.5+02", "-infinity", None]),
        (pa.float32(), ["0.1", None]),
        (pa.string(), ["x", None, ""]),
    ],
)
def test_text_arrays_convert_as_text_values_do(target: pa.DataType, values: list[str | None]) -> None:
    converted = text_array_to_arrow(pa.array(values, pa.string()), target, "c")
    assert converted.type == target
    assert converted.to_pylist() == text_to_arrow(values, target, "c").to_pylist()


def test_long_text_and_empty_columns() -> None:
    """Values larger than one copy step, many rows across steps, and columns of only NULL or empty values."""
    big = "ü" * 1_500_000  # 3 MB of UTF-8: more than one copy step (1 MiB)
    rows = [[str(i), big if i % 50 == 0 else f"v{i}", None, ""] for i in range(200)]
    part = RawRows(["id", "t", "nothing", "empty"], [message(b"I", r) for r in rows])
    arrays = text_columns([part])
    assert arrays is not None
    assert [list(r) for r in zip(*[a.to_pylist() for a in arrays], strict=True)] == rows
    assert arrays[2].null_count == 200 and arrays[3].null_count == 0
