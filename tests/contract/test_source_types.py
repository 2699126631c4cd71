"""Types only one database has: each lands as docs/type-mapping.md says, value and Arrow type checked."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
from deltalake import DeltaTable

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase, write_project

UTC = dt.UTC


def _load(project_dir: Path, kind: str, url: str, table: str) -> tuple[pa.Schema, list[dict[str, object]]]:
    write_project(project_dir, f"""
        sources:
          src: {{type: {kind}, url: "{url}"}}
    """)
    project = Project(project_dir)
    result = project.run()
    assert result.ok, [r.error for r in result.tables] + result.errors
    data = DeltaTable(project.lake.uri(f"bronze.src_{table}")).to_pyarrow_table().sort_by("id")
    return data.schema, data.drop_columns(["_lf_source", "_lf_extracted_at", "_lf_run_id"]).to_pylist()


def test_postgres_only_types(pg_db: PgDatabase, project_dir: Path) -> None:
    u = uuid.UUID("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")
    pg_db.execute("""
        CREATE TYPE mood AS ENUM ('sad', 'happy');
        CREATE DOMAIN price AS numeric(9,3);
        CREATE TABLE t (id int PRIMARY KEY, u uuid, j json, jb jsonb, ai int[], at text[], an numeric(6,2)[],
          e mood, b bytea, iv interval, ip inet, cr cidr, m money, tm time, nu numeric, dp price,
          c3 char(3), ts_inf timestamptz, d_inf date);
        INSERT INTO t VALUES (1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '{"b": 2,  "a": [1]}', '{"b": 2, "a": [1]}',
          '{1,NULL,3}', '{"x","y z"}', '{1.50,-2.25}', 'happy', '\\x00ff10', '1 year 2 mons 3 days 04:05:06.5',
          '192.168.0.1/24', '10.0.0.0/8', 12.34, '23:59:59.999999',
          3.14159265358979323846264338327950288419716939937510, 123456.789, 'ab', 'infinity', '-infinity');
        INSERT INTO t (id) VALUES (2);
    """)
    schema, rows = _load(project_dir, "postgres", pg_db.url, "t")
    expected_types = {
        "u": pa.string(), "j": pa.string(), "jb": pa.string(), "ai": pa.list_(pa.int32()),
        "at": pa.list_(pa.string()), "an": pa.list_(pa.decimal128(6, 2)), "e": pa.string(), "b": pa.binary(),
        "iv": pa.string(), "ip": pa.string(), "cr": pa.string(), "m": pa.decimal128(38, 2), "tm": pa.string(),
        "nu": pa.string(), "dp": pa.decimal128(9, 3), "c3": pa.string(), "ts_inf": pa.timestamp("us", tz="UTC"),
        "d_inf": pa.date32(),
    }
    for name, arrow in expected_types.items():
        assert schema.field(name).type == arrow, name
    first = rows[0]
    assert first["u"] == str(u)
    assert first["j"] == '{"b": 2,  "a": [1]}'  # json keeps its text exactly
    assert json.loads(first["jb"]) == {"a": [1], "b": 2}
    assert first["ai"] == [1, None, 3] and first["at"] == ["x", "y z"]
    assert first["an"] == [Decimal("1.50"), Decimal("-2.25")]
    assert first["e"] == "happy" and first["b"] == b"\x00\xff\x10"
    assert first["iv"] == "P1Y2M3DT4H5M6.5S"
    assert first["ip"] == "192.168.0.1/24" and first["cr"] == "10.0.0.0/8"
    assert first["m"] == Decimal("12.34") and first["tm"] == "23:59:59.999999"
    assert first["nu"] == "3.14159265358979323846264338327950288419716939937510"  # not one digit lost
    assert first["dp"] == Decimal("123456.789") and first["c3"] == "ab "
    assert first["ts_inf"] == dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
    assert first["d_inf"] == dt.date(1, 1, 1)
    assert all(v is None for k, v in rows[1].items() if k != "id")


def test_mysql_only_types(my_db: MyDatabase, project_dir: Path) -> None:
    my_db.execute("""
        SET SESSION sql_mode = '';
        CREATE TABLE t (id int PRIMARY KEY, ub bigint unsigned, ui int unsigned, ut tinyint unsigned,
          d date, dtm datetime(6), ts timestamp(6) NULL, tm time(3), y year, b1 bit(1), b5 bit(5),
          e enum('a','b'), s set('x','y','z'), j json, bl blob, vb varbinary(8), ti tinyint(1), md mediumint,
          dwide decimal(65,30), dbig decimal(30,15));
        INSERT INTO t VALUES (1, 18446744073709551615, 4294967295, 255, '2024-02-29', '2024-01-02 03:04:05.123456',
          '2024-01-02 03:04:05.654321', '-838:59:59.000', 2024, b'1', b'10101', 'b', 'x,z', '{"a": [1, 2]}',
          x'00ff', x'0102', 1, -8388608, '12345678901234567890123456789012345.123456789012345678901234567890',
          '123456789012345.123456789012345');
        INSERT INTO t (id, d, dtm, ts) VALUES (2, '0000-00-00', '0000-00-00 00:00:00', '0000-00-00 00:00:00');
        INSERT INTO t (id, d, dtm) VALUES (3, '2024-00-10', '2024-05-00 10:00:00')
    """)
    schema, rows = _load(project_dir, "mysql", my_db.url, "t")
    expected_types = {
        "ub": pa.decimal128(20, 0), "ui": pa.int64(), "ut": pa.int16(), "d": pa.date32(),
        "dtm": pa.timestamp("us"), "ts": pa.timestamp("us", tz="UTC"), "tm": pa.string(), "y": pa.int16(),
        "b1": pa.bool_(), "b5": pa.int64(), "e": pa.string(), "s": pa.string(), "j": pa.string(),
        "bl": pa.binary(), "vb": pa.binary(), "ti": pa.int8(), "md": pa.int32(), "dwide": pa.string(),
        "dbig": pa.decimal128(30, 15),
    }
    for name, arrow in expected_types.items():
        assert schema.field(name).type == arrow, name
    first = rows[0]
    assert first["ub"] == Decimal("18446744073709551615") and first["ui"] == 4294967295 and first["ut"] == 255
    assert first["d"] == dt.date(2024, 2, 29)
    assert first["dtm"] == dt.datetime(2024, 1, 2, 3, 4, 5, 123456)
    assert first["ts"] == dt.datetime(2024, 1, 2, 3, 4, 5, 654321, tzinfo=UTC)  # session time zone is UTC
    assert first["tm"] == "-838:59:59.000" and first["y"] == 2024
    assert first["b1"] is True and first["b5"] == 21
    assert first["e"] == "b" and first["s"] == "x,z" and json.loads(first["j"]) == {"a": [1, 2]}
    assert first["bl"] == b"\x00\xff" and first["vb"] == b"\x01\x02"
    assert first["ti"] == 1 and first["md"] == -8388608
    assert first["dwide"] == "12345678901234567890123456789012345.123456789012345678901234567890"
    assert first["dbig"] == Decimal("123456789012345.123456789012345")
    # zero and partial-zero dates have no date value: NULL, as documented
    for row in rows[1:]:
        assert row["d"] is None and row["dtm"] is None
    assert rows[1]["ts"] is None
