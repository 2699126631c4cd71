"""MariaDB CDC across runs: each run resumes by GTID where the lake's positions say (nothing missed, nothing
repeated), and a purged binlog fails the run by name until ``resnapshot`` reloads the table."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_my_cdc import ORDER_COLUMNS, assert_same, op_counts, orders


def _round(db: MyDb, first_id: int) -> None:
    """Two inserts, one update, one delete on orders, and noise in a table outside the project."""
    db.execute("INSERT INTO orders VALUES (%s, 'r', 1, 1.50, now(6), now(6), NULL)", (first_id,))
    db.execute("INSERT INTO orders VALUES (%s, 'r', 2, 2.50, NULL, NULL, 'x')", (first_id + 1,))
    db.execute("INSERT INTO other VALUES (%s)", (first_id,))
    db.execute("UPDATE orders SET qty = qty + 100 WHERE id = %s", (first_id,))
    db.execute("DELETE FROM orders WHERE id = %s", (first_id // 100,))


def test_resume_three_runs(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 10)
    cdc_my.execute("CREATE TABLE other (id int PRIMARY KEY)")
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    for n in range(1, 4):
        _round(cdc_my, n * 100)
        started = time.monotonic()
        result = project.run()
        assert result.ok, result
        assert time.monotonic() - started < 30  # a run without follow ends once caught up
        assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
        assert op_counts(project, "orders") == {"insert": 2 * n, "update": n, "delete": n}
    # a run with nothing new adds nothing
    assert project.run().ok
    assert op_counts(project, "orders") == {"insert": 6, "update": 3, "delete": 3}
    dupes = project.sql("select _lf_position, _lf_op, id, count(*) n from bronze.src_orders_changes "
                        "group by all having count(*) > 1").to_pylist()
    assert dupes == []
    positions = project.sql("select distinct _lf_position_value v from bronze.src_orders_changes "
                            "order by v").to_pylist()
    assert len(positions) == 12  # one GTID per source statement (autocommit): 4 per round on orders


def _purge_binlogs(db: MyDb) -> None:
    """Start a new binlog file and purge every older one (retried: MariaDB keeps a file until InnoDB's binlog
    checkpoint has moved past it)."""
    db.execute("FLUSH BINARY LOGS")
    newest = db.execute("SHOW BINARY LOGS")[-1][0]
    deadline = time.monotonic() + 30
    while len(db.execute("SHOW BINARY LOGS")) > 1:
        assert time.monotonic() < deadline, "the old binlog files could not be purged"
        db.execute(f"PURGE BINARY LOGS TO '{newest}'")
        time.sleep(0.2)


def test_purged_binlog_then_resnapshot(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 10)
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_my.execute("UPDATE orders SET qty = 1000 WHERE id = 1")
    assert project.run().ok
    # changes the lake has not read yet, then a new binlog file and the old ones purged: they are gone
    cdc_my.execute("UPDATE orders SET qty = 2000 WHERE id = 2")
    cdc_my.execute("DELETE FROM orders WHERE id = 3")
    _purge_binlogs(cdc_my)
    cdc_my.execute("INSERT INTO orders VALUES (11, 'after purge', 1, 1.00, NULL, NULL, NULL)")

    result = project.run()
    assert not result.ok
    error = result.tables[0].error or ""
    assert "no longer holds changes that bronze.src_orders need" in error, error
    assert "resnapshot" in error
    # the failed run changed nothing in the lake
    assert project.sql("select qty from bronze.src_orders where id = 2").to_pylist() == [{"qty": 2}]

    result = project.run(resnapshot=True)
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    cdc_my.execute("UPDATE orders SET qty = 3000 WHERE id = 4")
    assert project.run().ok
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)


def test_run_ends_on_a_busy_source(cdc_my: MyDb, tmp_path: Path) -> None:
    """Without follow a run ends once it has read what the binlog held when it started, even while writes go on
    (to the project's table and to a table outside it)."""
    orders(cdc_my, 10)
    cdc_my.execute("CREATE TABLE other (id int PRIMARY KEY)")
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    busy = threading.Event()
    writer_db = MyDb(cdc_my.port, cdc_my.name)

    def write() -> None:
        n = 1000
        while not busy.is_set():
            n += 1
            writer_db.execute("INSERT INTO orders VALUES (%s, 'busy', 1, 1.00, now(6), now(6), NULL)", (n,))
            writer_db.execute("INSERT INTO other VALUES (%s)", (n,))

    cdc_my.execute("UPDATE orders SET qty = 42 WHERE id = 1")
    writer = threading.Thread(target=write)
    writer.start()
    try:
        time.sleep(1)
        started = time.monotonic()
        result = project.run()
        took = time.monotonic() - started
    finally:
        busy.set()
        writer.join(30)
        writer_db.close()
    assert result.ok, result
    assert took < 30
    assert project.sql("select qty from bronze.src_orders where id = 1").to_pylist() == [{"qty": 42}]
    assert project.run().ok
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    written = cdc_my.execute("SELECT count(*) FROM orders WHERE id > 1000")[0][0]
    assert written > 0
    assert op_counts(project, "orders") == {"update": 1, "insert": written}


def test_quiet_table_survives_purge(cdc_my: MyDb, tmp_path: Path) -> None:
    """A table with no changes of its own still moves its position with the binlog, so purging binlogs it has
    read past does not force a re-snapshot."""
    orders(cdc_my, 5)
    cdc_my.execute("CREATE TABLE other (id int PRIMARY KEY)")
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_my.executemany("INSERT INTO other VALUES (%s)", [(i,) for i in range(50)])
    assert project.run().ok
    assert op_counts(project, "orders") == {}
    _purge_binlogs(cdc_my)
    cdc_my.execute("UPDATE orders SET qty = 8 WHERE id = 5")
    result = project.run()
    assert result.ok, result
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    assert op_counts(project, "orders") == {"update": 1}
