"""PostgreSQL CDC against a throwaway wal_level=logical server: snapshot + log, every kind of change."""

from __future__ import annotations

from pathlib import Path

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project


def _state(project: Project, table: str, order: str = "id") -> list[tuple]:
    cols = project.sql(f"select * exclude (_lf_source, _lf_extracted_at, _lf_run_id, _lf_op, _lf_position, "
                       f"_lf_position_value, _lf_seq, _lf_commit_ts, _lf_deleted) from {table} order by {order}")
    return [tuple(r.values()) for r in cols.to_pylist()]


def test_snapshot_then_changes(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE orders (id int PRIMARY KEY, item text, qty int, price numeric(10,2), "
                   "at timestamptz, big text)")
    cdc_pg.execute("INSERT INTO orders SELECT g, 'item' || g, g, g * 1.5, '2024-01-01'::timestamptz, "
                   "repeat('x', 5000) FROM generate_series(1, 100) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}}))
    result = project.run()
    assert result.ok, result
    assert project.sql("select count(*) c from bronze.src_orders").to_pylist() == [{"c": 100}]
    cdc_pg.execute("INSERT INTO orders VALUES (101, 'new', 1, 9.99, now(), 'small')")
    cdc_pg.execute("UPDATE orders SET qty = qty + 1000 WHERE id <= 10")
    cdc_pg.execute("DELETE FROM orders WHERE id BETWEEN 11 AND 20")
    cdc_pg.execute("UPDATE orders SET id = 1000 WHERE id = 21")
    result = project.run()
    assert result.ok, result
    got = _state(project, "bronze.src_orders")
    want = cdc_pg.execute("SELECT id, item, qty, price, at, big FROM orders ORDER BY id")
    assert got == [tuple(r) for r in want]
    ops = project.sql("select _lf_op, count(*) n from bronze.src_orders_changes group by 1 order by 1").to_pylist()
    assert ops == [{"_lf_op": "delete", "n": 11}, {"_lf_op": "insert", "n": 2}, {"_lf_op": "update", "n": 10}]
