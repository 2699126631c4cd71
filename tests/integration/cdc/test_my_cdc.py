"""MariaDB CDC against a throwaway server (ROW binlog, FULL row image and metadata, GTID strict mode)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_pg_cdc import _state


@pytest.mark.xfail(run=False, strict=True, reason="MariaDB stream hangs: non-blocking BinLogStreamReader "
                   "reconnect loop never yields idle (sources/mysql/cdc.py changes()); not finished")
def test_snapshot_then_changes(cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_my.execute("CREATE TABLE orders (id int PRIMARY KEY, item varchar(50), qty int, price decimal(10,2), "
                   "at datetime(6), ts timestamp(6) NULL, note text)")
    cdc_my.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s, '2024-01-02 03:04:05.123456', "
                       "'2024-01-01 00:00:00', 'n')", [(i, f"item{i}", i, i * 1.5) for i in range(1, 101)])
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    result = project.run()
    assert result.ok, result
    assert project.sql("select count(*) c from bronze.src_orders").to_pylist() == [{"c": 100}]
    cdc_my.execute("INSERT INTO orders VALUES (101, 'new', 1, 9.99, now(6), now(6), 'x')")
    cdc_my.execute("UPDATE orders SET qty = qty + 1000 WHERE id <= 10")
    cdc_my.execute("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
    cdc_my.execute("UPDATE orders SET id = 1000 WHERE id = 21")
    result = project.run()
    assert result.ok, result
    got = _state(project, "bronze.src_orders")
    want = cdc_my.execute("SELECT id, item, qty, price, at, ts, note FROM orders ORDER BY id")
    assert [g[:5] + g[6:] for g in got] == [tuple(r[:5]) + tuple(r[6:]) for r in want]
    assert [g[5].replace(tzinfo=None) if g[5] else None for g in got] == [r[5] for r in want]
