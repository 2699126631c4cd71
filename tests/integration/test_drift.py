"""Schema drift on PostgreSQL and MariaDB, for full and incremental tables: an added column, a dropped column
(history kept, NULL afterwards), widening changes (INT -> BIGINT, longer VARCHAR, higher decimal precision),
and an incompatible change that stops only that table with an error naming table, column, old and new type."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.conftest import write_project

pytestmark = pytest.mark.usefixtures("lake_format")

T0 = dt.datetime(2024, 1, 1)
CASES = [("postgres", "full"), ("postgres", "incremental"), ("mysql", "full"), ("mysql", "incremental")]


@pytest.fixture(params=CASES, ids=["-".join(c) for c in CASES])
def case(request: pytest.FixtureRequest) -> tuple[Any, str]:
    kind, mode = request.param
    db = request.getfixturevalue("pg_db" if kind == "postgres" else "my_db")
    db.kind = kind
    return db, mode


def alter(db: Any, column: str, new_type: str) -> None:
    if db.kind == "postgres":
        db.execute(f"ALTER TABLE t ALTER COLUMN {column} TYPE {new_type}")
    else:
        db.execute(f"ALTER TABLE t MODIFY {column} {new_type}")


def rows(p: Project, columns: list[str], version: int | None = None) -> list[tuple[Any, ...]]:
    table = p.lake.read("bronze.src_t", version).select(columns)
    return sorted(tuple(r.values()) for r in table.to_pylist())


def test_drift(case: tuple[Any, str], project_dir: Path) -> None:
    db, mode = case
    ts = "timestamp" if db.kind == "postgres" else "datetime(6)"
    db.execute(f"CREATE TABLE t (id int PRIMARY KEY, a int, b varchar(10), c numeric(8,2), gone varchar(10), "
               f"updated_at {ts} NOT NULL)")
    db.execute("CREATE TABLE other (id int PRIMARY KEY)")
    db.execute("INSERT INTO t VALUES (1, 10, 'x', 1.50, 'g1', %s), (2, 20, 'y', 2.50, 'g2', %s)", (T0, T0))
    db.execute("INSERT INTO other VALUES (1)")
    options = "{mode: incremental, cursor: updated_at}" if mode == "incremental" else "{mode: full}"
    p = Project(write_project(project_dir, f"""
    lake: {{path: ./lake}}
    sources:
      src:
        type: {db.kind}
        url: {db.url}
        tables:
          t: {options}
          other: {{mode: full}}
    """))
    assert p.run().ok
    assert p.lake.schema("bronze.src_t").field("a").type == pa.int32()
    first = p.lake.version("bronze.src_t")

    # added, dropped and widened columns, then rows that need the wider types
    db.execute("ALTER TABLE t ADD COLUMN extra varchar(20)")
    db.execute("ALTER TABLE t DROP COLUMN gone")
    alter(db, "a", "bigint")
    alter(db, "b", "varchar(50)")
    alter(db, "c", "numeric(12,2)")
    db.execute("INSERT INTO t (id, a, b, c, extra, updated_at) VALUES (3, 5000000000, %s, 1234567890.12, 'e3', %s)",
               ("a much longer text value", T0 + dt.timedelta(hours=1)))
    result = p.run()
    assert result.ok, result
    schema = p.lake.schema("bronze.src_t")
    assert schema.field("a").type == pa.int64()
    assert schema.field("b").type == pa.string()
    assert schema.field("c").type == pa.decimal128(12, 2)
    assert "extra" in schema.names and "gone" in schema.names
    current = ["id", "a", "b", "c", "extra"]
    source = sorted(tuple(r) for r in db.execute("SELECT id, a, b, c, extra FROM t"))
    assert rows(p, current) == source
    assert rows(p, ["id", "c"])[2] == (3, decimal.Decimal("1234567890.12"))
    gone = dict(rows(p, ["id", "gone"]))
    assert gone[3] is None  # rows loaded after the drop have NULL
    if mode == "incremental":
        assert gone[1] == "g1" and gone[2] == "g2"  # rows loaded before the drop keep their values
    else:
        assert gone == {1: None, 2: None, 3: None}  # the new snapshot has no values; history has them
        assert dict(rows(p, ["id", "gone"], version=first)) == {1: "g1", 2: "g2"}

    # an incompatible change stops this table only
    version = p.lake.version("bronze.src_t")
    db.execute("INSERT INTO other VALUES (2)")
    alter(db, "a", "varchar(30)")
    db.execute("UPDATE t SET updated_at = %s WHERE id = 1", (T0 + dt.timedelta(hours=2),))
    result = p.run()
    assert result.status == "failed"
    by_table = {r.table: r for r in result.tables}
    assert by_table["bronze.src_other"].status == "success"
    assert sorted(rows_other(p)) == [1, 2]
    failed = by_table["bronze.src_t"]
    assert failed.status == "failed" and failed.error is not None
    assert "bronze.src_t" in failed.error and "'a'" in failed.error
    assert "from int64 to string" in failed.error
    assert "varchar(30)" in failed.error.replace("character varying", "varchar")
    assert p.lake.version("bronze.src_t") == version
    assert rows(p, current) == source

    # the remedy the error names: schema_change: replace reloads the table with the new type in one commit
    config = project_dir / "lakeforge.yml"
    config.write_text(config.read_text().replace(options, options[:-1] + ", schema_change: replace}"))
    result = Project(project_dir).run()
    assert result.ok, result
    assert p.lake.schema("bronze.src_t").field("a").type == pa.string()
    assert p.lake.version("bronze.src_t") > version  # one commit (Iceberg: delete + append snapshots of it)
    assert rows(p, current) == sorted(tuple(r) for r in db.execute("SELECT id, a, b, c, extra FROM t"))


def rows_other(p: Project) -> list[int]:
    return [int(v) for v in p.lake.read("bronze.src_other").column("id").to_pylist()]


def test_added_datetime_column_merges(my_db: Any, project_dir: Path) -> None:
    """A MySQL DATETIME (timestamp without time zone) column added to an incremental table that had none: the
    MERGE must enable Delta's timestampNtz feature first (delta-rs's MERGE does not, write_deltalake does)."""
    my_db.execute("CREATE TABLE t (id int PRIMARY KEY, n int NOT NULL)")
    my_db.execute("INSERT INTO t VALUES (1, 1), (2, 2)")
    p = Project(write_project(project_dir, f"""
    lake: {{path: ./lake}}
    sources:
      src:
        type: mysql
        url: {my_db.url}
        tables:
          t: {{mode: incremental, cursor: n}}
    """))
    assert p.run().ok
    my_db.execute("ALTER TABLE t ADD COLUMN at datetime(6) NULL")
    my_db.execute("INSERT INTO t VALUES (3, 3, '2024-07-07 07:07:07.777777')")
    my_db.execute("UPDATE t SET n = 4, at = '2024-01-01 00:00:00' WHERE id = 1")
    result = p.run()
    assert result.ok, result
    assert p.lake.schema("bronze.src_t").field("at").type == pa.timestamp("us")
    assert rows(p, ["id", "n", "at"]) == [(1, 4, T0), (2, 2, None), (3, 3, dt.datetime(2024, 7, 7, 7, 7, 7, 777777))]
