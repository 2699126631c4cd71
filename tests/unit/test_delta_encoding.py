"""Delta writes: a column of mostly distinct values is written without a Parquet dictionary, a column of few
values keeps one; the values read back exactly either way (lake/delta/encoding.py)."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lakeforge.lake.delta.encoding import high_cardinality
from lakeforge.lake.delta.lake import DeltaLake

N = 20_000


def _batch(offset: int, n: int) -> pa.RecordBatch:
    start = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    return pa.RecordBatch.from_pydict(
        {
            "id": pa.array(range(offset, offset + n), pa.int64()),
            "amount": pa.array(
                [None if i % 97 == 0 else decimal.Decimal(i * 7919 % 10**7) / 100 for i in range(offset, offset + n)],
                pa.decimal128(12, 2),
            ),
            "at": pa.array(
                [start + dt.timedelta(seconds=i * 37) for i in range(offset, offset + n)], pa.timestamp("us", "UTC")
            ),
            "status": pa.array(["shipped", "pending", None, "returned"][i % 4] for i in range(offset, offset + n)),
            "qty": pa.array([i % 5 for i in range(offset, offset + n)], pa.int32()),
        }
    )


def _encodings(folder: Path) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for part in folder.glob("*.parquet"):
        meta = pq.ParquetFile(part).metadata
        for g in range(meta.num_row_groups):
            for i in range(meta.num_columns):
                column = meta.row_group(g).column(i)
                found.setdefault(column.path_in_schema, set()).update(column.encodings)
    return found


def test_mostly_distinct_columns_are_written_without_a_dictionary_and_read_back_exactly(tmp_path: Path) -> None:
    lake = DeltaLake(tmp_path / "lh")
    batches = [_batch(0, N), _batch(N, N)]
    lake.write("bronze.orders", iter(batches), schema=batches[0].schema, mode="overwrite")
    encodings = _encodings(tmp_path / "lh" / "bronze" / "orders")
    for unique in ("id", "amount", "at"):
        assert "RLE_DICTIONARY" not in encodings[unique] and "PLAIN" in encodings[unique]
    for few in ("status", "qty"):
        assert "RLE_DICTIONARY" in encodings[few]
    assert {
        c.compression
        for p in (tmp_path / "lh" / "bronze" / "orders").glob("*.parquet")
        for c in [pq.ParquetFile(p).metadata.row_group(0).column(0)]
    } == {"SNAPPY"}
    back = lake.read("bronze.orders").sort_by("id")
    expected = pa.Table.from_batches(batches)
    assert back.schema == expected.schema
    assert back.to_pylist() == expected.to_pylist()  # decimals, instants (UTC) and NULLs exact
    assert back.column("amount").null_count == len([i for i in range(2 * N) if i % 97 == 0])


def test_a_small_or_empty_write_keeps_the_writer_defaults(tmp_path: Path) -> None:
    lake = DeltaLake(tmp_path / "lh")
    small = _batch(0, 100)
    lake.write("bronze.small", iter([small]), schema=small.schema, mode="overwrite")
    assert "RLE_DICTIONARY" in _encodings(tmp_path / "lh" / "bronze" / "small")["id"]
    assert lake.read("bronze.small").sort_by("id").to_pylist() == pa.Table.from_batches([small]).to_pylist()
    lake.write("bronze.small", iter([]), schema=small.schema, mode="overwrite")
    assert lake.read("bronze.small").num_rows == 0


def test_high_cardinality_looks_at_fixed_width_columns_of_a_slice() -> None:
    batch = _batch(0, N)
    assert high_cardinality(batch) == ["id", "amount", "at"]
    assert high_cardinality(batch.slice(5_000, 10_000)) == ["id", "amount", "at"]  # a slice: its own values
    repeated = pa.RecordBatch.from_pydict({"id": pa.array([7] * N, pa.int64())})
    assert high_cardinality(repeated) == []
