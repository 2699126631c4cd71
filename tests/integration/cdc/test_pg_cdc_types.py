"""PostgreSQL CDC type fidelity: the same values loaded by the snapshot and by the log (pgoutput text) land
identical in the lake, and equal the values the type mapping promises (docs/type-mapping.md)."""

from __future__ import annotations

import datetime as dt
import struct
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project

pytestmark = pytest.mark.usefixtures("lake_format")

UTC = dt.UTC
TS_MAX = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
TS_MIN = dt.datetime(1, 1, 1)

# column -> (declaration, arrow type in the lake, [(SQL literal, expected lake value) per row])
COLUMNS: dict[str, tuple[str, pa.DataType, list[tuple[str, Any]]]] = {
    "i2": ("smallint", pa.int16(), [("-32768", -32768), ("NULL", None), ("7", 7)]),
    "i8": ("bigint", pa.int64(), [("9223372036854775807", 9223372036854775807), ("-1", -1), ("NULL", None)]),
    "f4": ("real", pa.float32(), [("1.1", struct.unpack("f", struct.pack("f", 1.1))[0]), ("'NaN'", "nan"),
                                  ("'-Infinity'", "-inf")]),
    "f8": ("double precision", pa.float64(), [("0.1", 0.1), ("'Infinity'", "inf"), ("'-0'", "-0.0")]),
    "n": ("numeric(12,3)", pa.decimal128(12, 3), [("123456789.123", Decimal("123456789.123")), ("-0.001",
          Decimal("-0.001")), ("NULL", None)]),
    "nu": ("numeric", pa.string(), [("3.14159265358979323846264338327950288419716939937510",
                                     "3.14159265358979323846264338327950288419716939937510"),
                                    ("'NaN'", "NaN"), ("1e-40", "0." + "0" * 39 + "1")]),
    "nw": ("numeric(50,10)", pa.string(), [("1234567890123456789012345678901234567890.0123456789",
                                           "1234567890123456789012345678901234567890.0123456789"),
                                          ("0", "0.0000000000"), ("NULL", None)]),
    "m": ("money", pa.decimal128(38, 2), [("1234567.89", Decimal("1234567.89")), ("-0.5", Decimal("-0.50")),
                                          ("NULL", None)]),
    "b": ("boolean", pa.bool_(), [("true", True), ("false", False), ("NULL", None)]),
    "tx": ("text", pa.string(), [("'héllo, \"wörld\" \\ {x}'", 'héllo, "wörld" \\ {x}'), ("''", ""),
                                 ("NULL", None)]),
    "ch": ("char(3)", pa.string(), [("'a'", "a  "), ("'abc'", "abc"), ("NULL", None)]),
    "d": ("date", pa.date32(), [("'2024-02-29'", dt.date(2024, 2, 29)), ("'infinity'", dt.date(9999, 12, 31)),
                                ("'-infinity'", dt.date(1, 1, 1))]),
    "ts": ("timestamp", pa.timestamp("us"), [("'2024-01-02 03:04:05.123456'",
                                              dt.datetime(2024, 1, 2, 3, 4, 5, 123456)),
                                             ("'infinity'", TS_MAX), ("'-infinity'", TS_MIN)]),
    "tz": ("timestamptz", pa.timestamp("us", tz="UTC"), [
        ("'2024-01-02 03:04:05.5+02'", dt.datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=UTC)),
        ("'infinity'", TS_MAX.replace(tzinfo=UTC)), ("'-infinity'", TS_MIN.replace(tzinfo=UTC))]),
    "tm": ("time", pa.string(), [("'24:00:00'", "24:00:00"), ("'13:14:15.5'", "13:14:15.5"), ("NULL", None)]),
    "ttz": ("timetz", pa.string(), [("'12:00:00+02'", "12:00:00+02"), ("NULL", None), ("'00:00:01-05:30'",
                                                                                       "00:00:01-05:30")]),
    "iv": ("interval", pa.string(), [("'1 year 2 months 3 days 04:05:06.5'", "P1Y2M3DT4H5M6.5S"),
                                     ("'-1 day'", "P-1D"), ("'0'", "PT0S")]),
    "u": ("uuid", pa.string(), [("'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
                                ("NULL", None), ("'00000000-0000-0000-0000-000000000000'",
                                                 "00000000-0000-0000-0000-000000000000")]),
    "j": ("json", pa.string(), [("'{\"b\": 1, \"a\": [1, 2]}'", '{"b": 1, "a": [1, 2]}'), ("'null'", "null"),
                                ("NULL", None)]),
    "jb": ("jsonb", pa.string(), [("'{\"b\": 1, \"a\": [1, 2.50]}'", '{"a": [1, 2.50], "b": 1}'),
                                  ("'\"x\"'", '"x"'), ("NULL", None)]),
    "by": ("bytea", pa.binary(), [("'\\x00ff10'", b"\x00\xff\x10"), ("''", b""), ("NULL", None)]),
    "ai": ("int[]", pa.list_(pa.int32()), [("'{1,NULL,3}'", [1, None, 3]), ("'{}'", []), ("NULL", None)]),
    "at": ("text[]", pa.list_(pa.string()), [
        (r"""'{"a,b","c\"d",NULL,"NULL","e\\f"}'""", ["a,b", 'c"d', None, "NULL", "e\\f"]),
        ("'{\" x \",\"{y}\"}'", [" x ", "{y}"]), ("NULL", None)]),
    "ats": ("timestamptz[]", pa.list_(pa.timestamp("us", tz="UTC")), [
        ("'{\"2024-01-01 00:00:00+00\",infinity,NULL}'",
         [dt.datetime(2024, 1, 1, tzinfo=UTC), TS_MAX.replace(tzinfo=UTC), None]), ("'{-infinity}'",
                                                                                  [TS_MIN.replace(tzinfo=UTC)]),
        ("NULL", None)]),
    "ab": ("boolean[]", pa.list_(pa.bool_()), [("'{t,f,NULL}'", [True, False, None]), ("NULL", None),
                                               ("'{}'", [])]),
    "aby": ("bytea[]", pa.list_(pa.binary()), [("ARRAY['\\x0001'::bytea, NULL]", [b"\x00\x01", None]),
                                               ("NULL", None), ("'{}'", [])]),
    "an": ("numeric(6,2)[]", pa.list_(pa.decimal128(6, 2)), [("'{1.50,-2}'", [Decimal("1.50"), Decimal("-2.00")]),
                                                             ("NULL", None), ("'{NULL}'", [None])]),
    "au": ("uuid[]", pa.list_(pa.string()), [("'{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}'",
                                              ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]), ("NULL", None),
                                             ("'{}'", [])]),
    "ajb": ("jsonb[]", pa.list_(pa.string()), [("ARRAY['{\"k\": \"v,w\"}'::jsonb]", ['{"k": "v,w"}']),
                                               ("NULL", None), ("'{}'", [])]),
    "a2": ("int[][]", pa.string(), [("'{{1,2},{3,4}}'", "{{1,2},{3,4}}"), ("NULL", None), ("'{}'", "{}")]),
    "e": ("mood", pa.string(), [("'happy'", "happy"), ("NULL", None), ("'sad'", "sad")]),
    "ip": ("inet", pa.string(), [("'192.168.0.1/24'", "192.168.0.1/24"), ("NULL", None), ("'::1'", "::1")]),
    "aip": ("inet[]", pa.list_(pa.string()), [("'{10.0.0.1,NULL,::1/64}'", ["10.0.0.1", None, "::1/64"]),
                                              ("NULL", None), ("'{}'", [])]),
    "bt": ("bit(4)", pa.string(), [("B'1010'", "1010"), ("NULL", None), ("B'0000'", "0000")]),
}
ROWS = 3
META = ("_lf_source", "_lf_extracted_at", "_lf_run_id", "_lf_op", "_lf_position", "_lf_position_value",
        "_lf_seq", "_lf_commit_ts", "_lf_deleted")


def _create(db: PgDb) -> None:
    db.execute("CREATE TYPE mood AS ENUM ('sad', 'happy')")
    db.execute("CREATE TABLE t (id int PRIMARY KEY, " + ", ".join(f"{c} {d}" for c, (d, _, _) in COLUMNS.items())
               + ")")


def _insert(db: PgDb, first_id: int) -> None:
    for i in range(ROWS):
        values = ", ".join(rows[i][0] for _, _, rows in COLUMNS.values())
        db.execute(f"INSERT INTO t VALUES ({first_id + i}, {values})")


def _plain(value: Any) -> Any:
    """Floats by repr, so NaN equals NaN and -0.0 differs from 0.0."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _expected(i: int) -> dict[str, Any]:
    out = {}
    for column, (_, _, rows) in COLUMNS.items():
        value = rows[i][1]
        special = isinstance(value, str) and value in ("nan", "inf", "-inf", "-0.0")
        out[column] = _plain(float(value) if special else value)
    return out


def _lake(project: Project) -> tuple[pa.Schema, dict[int, dict[str, Any]]]:
    table = project.lake.dataset("bronze.src_t").to_table()
    rows = {r["id"]: r for r in table.to_pylist()}
    return table.schema, rows


def test_snapshot_and_log_load_the_same_values(cdc_pg: PgDb, tmp_path: Path) -> None:
    _create(cdc_pg)
    _insert(cdc_pg, 1)
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    result = project.run()
    assert result.ok, result
    _insert(cdc_pg, 101)  # the same values again, now through the log
    result = project.run()
    assert result.ok, result
    schema, rows = _lake(project)
    widened = {pa.int16(): pa.int32()} if project.lake.FORMAT == "iceberg" else {}  # Iceberg has no smallint
    for column, (_, arrow, _) in COLUMNS.items():
        assert schema.field(column).type == widened.get(arrow, arrow), column
    assert [n for n in schema.names if n in COLUMNS] == list(COLUMNS)  # columns keep their place
    assert sorted(rows) == [1, 2, 3, 101, 102, 103]
    for i in range(ROWS):
        snap, log = rows[1 + i], rows[101 + i]
        assert (snap["_lf_op"], log["_lf_op"]) == ("snapshot", "insert")
        snap_values = {c: _plain(snap[c]) for c in COLUMNS}
        log_values = {c: _plain(log[c]) for c in COLUMNS}
        assert log_values == snap_values, f"row {i + 1}"
        assert snap_values == _expected(i), f"row {i + 1}"


@pytest.mark.parametrize(("declared", "literal", "shown"), [
    ("numeric(10,2)", "'NaN'", "NaN"),
    ("timestamp", "'0044-03-15 00:00:00 BC'", "BC"),
    ("date", "'10000-01-01'", "10000-01-01"),
    ("int[]", "'{{1,2},{3,4}}'", "multi-dimensional"),
])
def test_values_the_lake_cannot_hold_stop_the_table(cdc_pg: PgDb, tmp_path: Path, declared: str, literal: str,
                                                    shown: str) -> None:
    """Whether the value comes by snapshot or by the log: a clear error naming the column, nothing loaded."""
    cdc_pg.execute(f"CREATE TABLE t (id int PRIMARY KEY, bad {declared})")
    cdc_pg.execute(f"INSERT INTO t VALUES (1, {literal})")
    project = Project(cdc_project(tmp_path / "snap", cdc_pg, {"t": {"mode": "cdc"}}))
    result = project.run()
    assert not result.ok
    assert "bad" in str(result) and shown.lower() in str(result).lower()
    assert not project.lake.exists("bronze.src_t") or project.lake.checkpoint("bronze.src_t") is None

    cdc_pg.execute("DELETE FROM t")
    cdc_pg.execute("SELECT pg_drop_replication_slot('lakeforge_src')")
    project = Project(cdc_project(tmp_path / "log", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_pg.execute(f"INSERT INTO t VALUES (2, {literal})")
    result = project.run()
    assert not result.ok
    assert "bad" in str(result) and shown.lower() in str(result).lower()
    assert project.lake.dataset("bronze.src_t").to_table().num_rows == 0
