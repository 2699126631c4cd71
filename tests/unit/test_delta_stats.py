"""Delta ``add`` statistics built from a Parquet footer (``lake/delta/stats.py``): exact, conservative bounds."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from lakeforge.lake.delta.stats import delta_stats

UTC = dt.UTC
SCHEMA = pa.schema(
    [
        ("id", pa.int64()),
        ("amount", pa.decimal128(12, 2)),
        ("wide", pa.decimal128(30, 10)),
        ("at", pa.timestamp("us", tz="UTC")),
        ("naive", pa.timestamp("us")),
        ("day", pa.date32()),
        ("name", pa.string()),
        ("long", pa.string()),
        ("ratio", pa.float64()),
        ("flag", pa.bool_()),
        ("tags", pa.list_(pa.int32())),
        ("empty", pa.int32()),
    ]
)


def _batch(
    ids: list[int], amounts: list[str | None], ats: list[dt.datetime | None], names: list[str]
) -> pa.RecordBatch:
    n = len(ids)
    return pa.RecordBatch.from_pydict(
        {
            "id": ids,
            "amount": [Decimal(a) if a is not None else None for a in amounts],
            "wide": [Decimal("-12345678901234567890.0000000001")] * n,
            "at": ats,
            "naive": [dt.datetime(2024, 1, 1)] * n,
            "day": [dt.date(2024, 2, 29) + dt.timedelta(days=i) for i in ids],
            "name": names,
            "long": ["x" * 40] * n,
            "ratio": [0.5] * n,
            "flag": [True] * n,
            "tags": [[1]] * n,
            "empty": [None] * n,
        },
        schema=SCHEMA,
    )


def test_stats_over_two_row_groups_are_exact_and_conservative(tmp_path: Path) -> None:
    path = tmp_path / "f.parquet"
    first = _batch([3, 1], ["-0.01", None], [dt.datetime(2024, 1, 1, 0, 0, 0, 123456, tzinfo=UTC), None], ["b", "a"])
    second = _batch([7], ["12345.67"], [dt.datetime(2024, 1, 2, 0, 0, 0, 999001, tzinfo=UTC)], ["é"])
    with pq.ParquetWriter(path, SCHEMA, store_decimal_as_integer=True) as w:
        w.write_batch(first)
        w.write_batch(second)
    meta = pq.read_metadata(path)
    assert meta.num_row_groups == 2
    stats = json.loads(delta_stats(meta, SCHEMA, 3), parse_float=Decimal)
    assert stats["numRecords"] == 3
    low, high, nulls = stats["minValues"], stats["maxValues"], stats["nullCount"]
    assert (low["id"], high["id"]) == (1, 7)
    assert (low["amount"], high["amount"]) == (Decimal("-0.01"), Decimal("12345.67"))  # exact, not a double
    assert low["wide"] == high["wide"] == Decimal("-12345678901234567890.0000000001")  # stored as bytes
    assert low["at"] == "2024-01-01T00:00:00.123Z"  # rounded down to the millisecond
    assert high["at"] == "2024-01-02T00:00:01.000Z"  # rounded up: .999001 s is past .999
    assert (low["day"], high["day"]) == ("2024-03-01", "2024-03-07")
    assert (low["name"], high["name"]) == ("a", "é")
    # no safe bound: long strings (truncated by delta-rs), naive time stamps, floats (NaN), booleans, lists, all-null
    for name in ("long", "naive", "ratio", "flag", "tags", "tags.list.element", "empty"):
        assert name not in low and name not in high
    assert nulls == {
        "id": 0, "amount": 1, "wide": 0, "at": 1, "naive": 0, "day": 0, "name": 0, "long": 0, "ratio": 0,
        "flag": 0, "empty": 3,
    }


def test_last_instant_has_no_upper_bound(tmp_path: Path) -> None:
    schema = pa.schema([("at", pa.timestamp("us", tz="UTC"))])
    last = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    pq.write_table(pa.table({"at": pa.array([last], schema.field("at").type)}), tmp_path / "f.parquet")
    stats = json.loads(delta_stats(pq.read_metadata(tmp_path / "f.parquet"), schema, 1))
    assert stats["minValues"] == {} and stats["maxValues"] == {}  # the max cannot be rounded up: neither is given
    assert stats["nullCount"] == {"at": 0}


def test_only_the_first_32_columns_are_indexed(tmp_path: Path) -> None:
    schema = pa.schema([(f"c{i}", pa.int32()) for i in range(40)])
    pq.write_table(pa.table({f"c{i}": [i] for i in range(40)}, schema=schema), tmp_path / "f.parquet")
    stats = json.loads(delta_stats(pq.read_metadata(tmp_path / "f.parquet"), schema, 1))
    assert list(stats["minValues"]) == [f"c{i}" for i in range(32)]
    assert stats["maxValues"]["c31"] == 31 and len(stats["nullCount"]) == 32
