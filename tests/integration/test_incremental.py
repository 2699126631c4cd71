"""Incremental mode against the real servers: inserts, updates, late rows, composite and numeric cursors,
merge_key on a table without a primary key, the no-key error and a run that commits nothing."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import write_project

T0 = dt.datetime(2024, 1, 1, 12, 0, 0)
pytestmark = pytest.mark.usefixtures("lake_format")


@pytest.fixture(params=["postgres", "mysql"])
def db(request: pytest.FixtureRequest) -> Any:
    db = request.getfixturevalue("pg_db" if request.param == "postgres" else "my_db")
    db.kind = request.param
    return db


def ts_type(db: Any) -> str:
    return "timestamp(6)" if db.kind == "postgres" else "datetime(6)"


def project(path: Path, db: Any, tables: str) -> Project:
    body = f"""
    lake: {{path: ./lake}}
    run: {{retry_backoff: 0}}
    sources:
      src:
        type: {db.kind}
        url: {db.url}
        include: []
        tables:
    """
    body = body.rstrip() + "\n" + "".join(f"          {line}\n" for line in tables.strip().splitlines())
    return Project(write_project(path, body))


def lake_rows(p: Project, table: str, columns: str) -> list[tuple[Any, ...]]:
    rows = p.lake.read(f"bronze.{table}").select(columns.split(", ")).to_pylist()
    return sorted(tuple(r.values()) for r in rows)


def source_rows(db: Any, table: str, columns: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in db.execute(f"SELECT {columns} FROM {table}"))


def status_of(result: Any, table: str) -> str:
    return {r.table: r.status for r in result.tables}[f"bronze.{table}"]


def test_inserts_updates_and_noop(db: Any, project_dir: Path) -> None:
    db.execute(f"CREATE TABLE orders (id int PRIMARY KEY, name varchar(20), amount numeric(10,2), "
               f"updated_at {ts_type(db)} NOT NULL)")
    db.execute("INSERT INTO orders VALUES (1, 'a', 1.10, %s), (2, 'b', 2.20, %s), (3, 'c', 3.30, %s)",
               (T0, T0 + dt.timedelta(seconds=1), T0 + dt.timedelta(seconds=2)))
    p = project(project_dir, db, "orders: {mode: incremental, cursor: updated_at}")
    cols = "id, name, amount, updated_at"

    first = p.run()
    assert first.ok and status_of(first, "src_orders") == "success"
    assert lake_rows(p, "src_orders", cols) == source_rows(db, "orders", cols)

    db.execute("UPDATE orders SET name = 'b2', amount = 22.00, updated_at = %s WHERE id = 2",
               (T0 + dt.timedelta(minutes=5),))
    db.execute("INSERT INTO orders VALUES (4, 'd', 4.40, %s), (5, 'e', NULL, %s)",
               (T0 + dt.timedelta(minutes=6), T0 + dt.timedelta(minutes=7)))
    second = p.run()
    assert status_of(second, "src_orders") == "success"
    assert second.tables[0].rows == 3  # only the window: the updated row and two new ones
    got = lake_rows(p, "src_orders", cols)
    assert got == source_rows(db, "orders", cols)
    assert len(got) == 5 and got[1][1:3] == ("b2", decimal.Decimal("22.00"))
    cp = p.lake.checkpoint("bronze.src_orders")
    assert cp is not None and cp.run_id == second.run_id and cp.cursor_values() == [T0 + dt.timedelta(minutes=7)]

    version = p.lake.version("bronze.src_orders")
    third = p.run()
    assert third.ok and status_of(third, "src_orders") == "unchanged"
    assert p.lake.version("bronze.src_orders") == version
    history = p.runs()[0]
    assert history["run"]["run_id"] == third.run_id and history["tables"][0]["status"] == "unchanged"


def test_lookback_catches_late_rows(db: Any, project_dir: Path) -> None:
    for table in ("late", "nolook"):
        db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, v varchar(10), updated_at {ts_type(db)})")
        db.execute(f"INSERT INTO {table} VALUES (1, 'a', %s), (2, 'b', %s)", (T0, T0 + dt.timedelta(hours=1)))
    p = project(project_dir, db, """
late: {mode: incremental, cursor: [updated_at], lookback: 30m}
nolook: {mode: incremental, cursor: [updated_at]}
""")
    assert p.run().ok
    # committed late, with a cursor value older than the last one loaded (a long transaction, clock skew)
    for table in ("late", "nolook"):
        db.execute(f"INSERT INTO {table} VALUES (3, 'late', %s)", (T0 + dt.timedelta(minutes=50),))
        db.execute(f"INSERT INTO {table} VALUES (4, 'new', %s)", (T0 + dt.timedelta(hours=2),))
    assert p.run().ok
    cols = "id, v, updated_at"
    assert lake_rows(p, "src_late", cols) == source_rows(db, "late", cols)
    assert [r[0] for r in lake_rows(p, "src_nolook", "id")] == [1, 2, 4]  # without lookback the late row is missed

    # nothing new: the lookback window is re-read but changes nothing, so nothing is committed
    version = p.lake.version("bronze.src_late")
    again = p.run()
    assert status_of(again, "src_late") == "unchanged"
    assert p.lake.version("bronze.src_late") == version
    # a change that kept its cursor value, inside the lookback window, is merged over its old version
    db.execute("UPDATE late SET v = 'fixed' WHERE id = 4")  # cursor unchanged, within the lookback
    assert status_of(p.run(), "src_late") == "success"
    assert lake_rows(p, "src_late", cols) == source_rows(db, "late", cols)
    assert len(lake_rows(p, "src_late", cols)) == 4


def test_composite_cursor(db: Any, project_dir: Path) -> None:
    db.execute(f"CREATE TABLE ev (id int PRIMARY KEY, v varchar(10), updated_at {ts_type(db)} NOT NULL)")
    db.execute("INSERT INTO ev VALUES (1, 'a', %s), (2, 'b', %s), (3, 'c', %s)", (T0, T0, T0))
    p = project(project_dir, db, "ev: {mode: incremental, cursor: [updated_at, id]}")
    assert p.run().ok
    # same timestamp as the last loaded row, higher id: only the (updated_at, id) tuple tells it is new
    db.execute("INSERT INTO ev VALUES (4, 'd', %s), (5, 'e', %s)", (T0, T0))
    result = p.run()
    assert status_of(result, "src_ev") == "success" and result.tables[0].rows == 2
    cols = "id, v, updated_at"
    assert lake_rows(p, "src_ev", cols) == source_rows(db, "ev", cols)
    cp = p.lake.checkpoint("bronze.src_ev")
    assert cp is not None and cp.cursor_values() == [T0, 5]


def test_numeric_cursor_pg(pg_db: Any, project_dir: Path) -> None:
    pg_db.kind = "postgres"
    pg_db.execute("CREATE TABLE log (id bigint PRIMARY KEY, msg text)")
    pg_db.execute("INSERT INTO log SELECT g, 'm' || g FROM generate_series(1, 1000) g")
    p = project(project_dir, pg_db, "log: {mode: incremental, cursor: id}")
    assert p.run().ok
    pg_db.execute("INSERT INTO log SELECT g, 'm' || g FROM generate_series(1001, 1500) g")
    result = p.run()
    assert result.tables[0].rows == 500
    assert lake_rows(p, "src_log", "id, msg") == source_rows(pg_db, "log", "id, msg")
    cp = p.lake.checkpoint("bronze.src_log")
    assert cp is not None and cp.cursor_values() == [1500]


def test_merge_key_without_primary_key_and_no_key_error(db: Any, project_dir: Path) -> None:
    db.execute(f"CREATE TABLE prices (code varchar(10) NOT NULL, price numeric(8,2), updated_at {ts_type(db)})")
    db.execute(f"CREATE TABLE nokey (code varchar(10), updated_at {ts_type(db)})")
    db.execute("INSERT INTO prices VALUES ('x', 1.00, %s), ('y', 2.00, %s)", (T0, T0))
    db.execute("INSERT INTO nokey VALUES ('x', %s)", (T0,))
    p = project(project_dir, db, """
prices: {mode: incremental, cursor: updated_at, merge_key: code}
nokey: {mode: incremental, cursor: updated_at}
""")
    first = p.run()
    assert status_of(first, "src_prices") == "success"
    assert status_of(first, "src_nokey") == "failed" and not first.ok
    error = next(r.error for r in first.tables if r.table == "bronze.src_nokey")
    assert error is not None and "no primary key" in error and "merge_key" in error and "nokey" in error
    assert not p.lake.exists("bronze.src_nokey")

    db.execute("UPDATE prices SET price = 9.99, updated_at = %s WHERE code = 'x'", (T0 + dt.timedelta(hours=1),))
    assert status_of(p.run(), "src_prices") == "success"
    cols = "code, price, updated_at"
    assert lake_rows(p, "src_prices", cols) == source_rows(db, "prices", cols)
    assert len(lake_rows(p, "src_prices", cols)) == 2
