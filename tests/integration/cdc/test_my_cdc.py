"""MariaDB CDC against a throwaway server (ROW binlog, FULL row image and metadata, GTID strict mode).

Every test compares the lake with the source row for row, with types: decimals exact, DATETIME naive,
TIMESTAMP as UTC, NULLs kept."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project

pytestmark = pytest.mark.usefixtures("lake_format")

ORDERS = ("CREATE TABLE orders (id int PRIMARY KEY, item varchar(50), qty int, price decimal(10,2), "
          "at datetime(6), ts timestamp(6) NULL, note text)")
ORDER_COLUMNS = "id, item, qty, price, at, ts, note"


def lake_rows(project: Project, table: str, columns: str, where: str = "true") -> list[tuple[Any, ...]]:
    """Rows of a lake table as the source's driver would return them: a TIMESTAMP (tz-aware, must be UTC)
    becomes naive UTC, as the source session (time_zone +00:00) returns it."""
    quoted = ", ".join(f'"{c.strip()}"' for c in columns.split(","))
    rows = project.sql(f"select {quoted} from {table} where {where} order by id").to_pylist()
    result = []
    for row in rows:
        values = []
        for value in row.values():
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                assert value.utcoffset() == dt.timedelta(0), value
                value = value.replace(tzinfo=None)
            values.append(value)
        result.append(tuple(values))
    return result


def assert_same(project: Project, db: MyDb, table: str, columns: str, *, where: str = "true") -> None:
    """The lake table ``bronze.src_<table>`` equals the source table on ``columns``, values and types."""
    want = [tuple(r) for r in db.execute(f"SELECT {columns} FROM {table} ORDER BY id")]
    got = lake_rows(project, f"bronze.src_{table}", columns, where)
    assert got == want
    for got_row, want_row in zip(got, want, strict=True):
        assert [type(v) for v in got_row] == [type(v) for v in want_row], (got_row, want_row)


def op_counts(project: Project, table: str) -> dict[str, int]:
    rows = project.sql(f"select _lf_op op, count(*) n from bronze.src_{table}_changes group by 1").to_pylist()
    return {r["op"]: r["n"] for r in rows}


def orders(db: MyDb, n: int = 100) -> None:
    db.execute(ORDERS)
    db.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, '2024-01-02 03:04:05.123456', "
                   "'2024-01-01 00:00:00', 'n')", [(i, f"item{i}", i, decimal.Decimal(i) * 3 / 2) for i in
                                                   range(1, n + 1)])


def test_snapshot_then_changes(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my)
    cdc_my.execute("INSERT INTO orders VALUES (500, NULL, NULL, NULL, NULL, NULL, NULL)")
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    assert op_counts(project, "orders") == {}
    cdc_my.execute("INSERT INTO orders VALUES (101, 'new', 1, 12345678.99, now(6), now(6), 'x')")
    cdc_my.execute("INSERT INTO orders VALUES (102, 'nulls', NULL, NULL, NULL, NULL, NULL)")
    cdc_my.execute("UPDATE orders SET qty = qty + 1000, price = 0.01, ts = '2030-06-30 23:59:59.999999' "
                   "WHERE id <= 10")
    cdc_my.execute("UPDATE orders SET item = 'filled', at = '1999-12-31 23:59:59', ts = '1970-01-02 00:00:00' "
                   "WHERE id = 500")
    cdc_my.execute("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
    cdc_my.execute("UPDATE orders SET id = 1000 WHERE id = 21")
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    # the key change is a delete of the old key and an insert of the new one
    assert op_counts(project, "orders") == {"insert": 3, "update": 11, "delete": 11}
    price = project.sql("select price from bronze.src_orders where id = 101").to_pylist()
    assert price == [{"price": decimal.Decimal("12345678.99")}]


def test_truncate_mid_stream(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 10)
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_my.execute("INSERT INTO orders VALUES (11, 'before', 1, 1.10, now(6), now(6), 'gone')")
    cdc_my.execute("UPDATE orders SET qty = 77 WHERE id = 1")
    cdc_my.execute("TRUNCATE TABLE orders")
    cdc_my.execute("INSERT INTO orders VALUES (100, 'after', 2, 2.20, '2024-05-05 05:05:05', NULL, NULL)")
    cdc_my.execute("INSERT INTO orders VALUES (101, 'after', 3, 3.30, NULL, '2024-05-05 05:05:05.5', 'y')")
    cdc_my.execute("UPDATE orders SET qty = 4 WHERE id = 100")
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    assert [r[0] for r in lake_rows(project, "bronze.src_orders", "id")] == [100, 101]
    assert op_counts(project, "orders") == {"insert": 3, "update": 2, "truncate": 1}


def test_one_transaction_two_tables(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 5)
    cdc_my.execute("CREATE TABLE stock (id bigint PRIMARY KEY, item varchar(50), left_qty int)")
    cdc_my.executemany("INSERT INTO stock VALUES (%s, %s, %s)", [(i, f"item{i}", 100) for i in range(1, 6)])
    tables = {"orders": {"mode": "cdc"}, "stock": {"mode": "cdc"}}
    project = Project(cdc_project(tmp_path / "p", cdc_my, tables))
    assert project.run().ok
    cdc_my.execute("BEGIN")
    cdc_my.execute("INSERT INTO orders VALUES (6, 'item1', 5, 7.50, now(6), now(6), 'sold')")
    cdc_my.execute("UPDATE stock SET left_qty = left_qty - 5 WHERE id = 1")
    cdc_my.execute("DELETE FROM stock WHERE id = 5")
    cdc_my.execute("COMMIT")
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    assert_same(project, cdc_my, "stock", "id, item, left_qty")
    positions = {r["p"] for t in ("orders", "stock")
                 for r in project.sql(f"select _lf_position p from bronze.src_{t}_changes").to_pylist()}
    assert len(positions) == 1  # one source transaction, one GTID, in both tables
    assert op_counts(project, "orders") == {"insert": 1}
    assert op_counts(project, "stock") == {"update": 1, "delete": 1}


def test_soft_delete(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 10)
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc", "soft_delete": True}}))
    assert project.run().ok
    cdc_my.execute("DELETE FROM orders WHERE id IN (3, 4)")
    cdc_my.execute("UPDATE orders SET qty = 55 WHERE id = 5")
    cdc_my.execute("INSERT INTO orders VALUES (11, 'brief', 1, 1.00, NULL, NULL, NULL)")
    cdc_my.execute("DELETE FROM orders WHERE id = 11")
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS, where="not _lf_deleted")
    deleted = project.sql("select id, qty, _lf_op from bronze.src_orders where _lf_deleted order by id").to_pylist()
    assert deleted == [{"id": 3, "qty": 3, "_lf_op": "delete"}, {"id": 4, "qty": 4, "_lf_op": "delete"},
                       {"id": 11, "qty": 1, "_lf_op": "delete"}]
    assert project.sql("select count(*) n from bronze.src_orders").to_pylist() == [{"n": 11}]
