"""A CDC table's initial snapshot read by range tasks (ThreadExecutor here; Ray in tests/scale) inside the
snapshot the replication slot exported: one commit at the slot's position, then the log applies on top."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from lakeforge import Project
from lakeforge.distributed.executor import ThreadExecutor
from lakeforge.distributed.extract import DistributedExtractor
from tests.integration.cdc.conftest import PgDb, cdc_project


def test_cdc_snapshot_by_range_tasks_then_changes(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int, price numeric(10,2))")
    cdc_pg.execute("INSERT INTO orders SELECT g, g % 10, g * 1.5 FROM generate_series(1, 30000) g")
    folder = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}}, partitions=4, parallel_min_rows=0)
    project = Project(folder)
    project.extractor = DistributedExtractor(ThreadExecutor(4))  # type: ignore[misc]
    assert project.run().ok
    tasks = project.extractor.results  # type: ignore[union-attr]
    assert len(tasks) == 4 and sum(t.rows for t in tasks) == 30_000
    snap = project.sql(
        "select _lf_op, count(*) n, min(_lf_position) lo, max(_lf_position) hi from bronze.src_orders group by 1"
    )
    (row,) = snap.to_pylist()
    assert row["_lf_op"] == "snapshot" and row["n"] == 30_000 and row["lo"] == row["hi"]
    checkpoint = project.lake.checkpoint("bronze.src_orders")
    assert checkpoint is not None and checkpoint.mode == "cdc"
    assert checkpoint.position["text"] == row["lo"]  # the rows and the checkpoint: one position

    cdc_pg.execute("UPDATE orders SET qty = 100 WHERE id <= 5")
    cdc_pg.execute("DELETE FROM orders WHERE id > 29990")
    cdc_pg.execute("INSERT INTO orders VALUES (40000, 7, 1.25)")
    assert project.run().ok
    got = project.sql("select id, qty, price from bronze.src_orders order by id").to_pylist()
    want = cdc_pg.execute("SELECT id, qty, price FROM orders ORDER BY id")
    assert [(r["id"], r["qty"], r["price"]) for r in got] == [tuple(r) for r in want]
    assert got[-1] == {"id": 40000, "qty": 7, "price": Decimal("1.25")}
