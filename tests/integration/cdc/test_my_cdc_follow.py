"""MariaDB CDC with ``follow``: changes land while the run is up, the stop event ends it promptly, the binlog
reader thread and its server connection go away, and a failure inside the reader thread fails the run."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_my_cdc import ORDER_COLUMNS, assert_same, op_counts, orders


def _wait(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def _dump_threads(db: MyDb) -> list[Any]:
    return [r for r in db.execute("SHOW PROCESSLIST") if str(r[4]).startswith("Binlog Dump")]


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("lakeforge-binlog-")]


def _follow(project: Project) -> tuple[threading.Thread, threading.Event, list[Any]]:
    stop = threading.Event()
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(project.run(follow=True, stop=stop)))
    thread.start()
    return thread, stop, out


def test_follow_then_stop(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 5)
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    thread, stop, out = _follow(project)
    try:
        _wait(lambda: project.lake.exists("bronze.src_orders") and len(_dump_threads(cdc_my)) == 1)
        cdc_my.execute("INSERT INTO orders VALUES (6, 'live', 6, 6.60, now(6), now(6), 'f')")
        cdc_my.execute("UPDATE orders SET qty = 99 WHERE id = 1")
        _wait(lambda: project.sql("select count(*) n from bronze.src_orders").to_pylist() == [{"n": 6}]
              and project.sql("select qty from bronze.src_orders where id = 1").to_pylist() == [{"qty": 99}])
        cdc_my.execute("DELETE FROM orders WHERE id = 2")
    finally:
        stopped = time.monotonic()
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    assert time.monotonic() - stopped < 10
    assert out[0].ok, out[0]
    assert not _readers()
    _wait(lambda: not _dump_threads(cdc_my), 10)
    # what came in before the stop is committed on the way out, or read by the next run
    assert project.run().ok
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)


def test_killed_connection_resumes_without_repeats(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 5)
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}))
    thread, stop, out = _follow(project)
    try:
        _wait(lambda: project.lake.exists("bronze.src_orders") and len(_dump_threads(cdc_my)) == 1)
        cdc_my.execute("INSERT INTO orders VALUES (6, 'before kill', 6, 6.60, now(6), now(6), NULL)")
        _wait(lambda: project.sql("select count(*) n from bronze.src_orders").to_pylist() == [{"n": 6}])
        killed = _dump_threads(cdc_my)[0][0]
        cdc_my.execute(f"KILL {killed}")
        cdc_my.execute("INSERT INTO orders VALUES (7, 'after kill', 7, 7.70, now(6), now(6), NULL)")
        cdc_my.execute("UPDATE orders SET qty = 0 WHERE id = 6")
        # the package reconnects by itself; the reader points it after the last whole transaction
        _wait(lambda: project.sql("select count(*) n from bronze.src_orders_changes").to_pylist() == [{"n": 3}])
        assert [r[0] for r in _dump_threads(cdc_my)] != [killed]
    finally:
        stop.set()
        thread.join(30)
    assert out[0].ok, out[0]
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    assert op_counts(project, "orders") == {"insert": 2, "update": 1}


def test_reader_thread_failure_fails_the_run(cdc_my: MyDb, tmp_path: Path) -> None:
    orders(cdc_my, 5)
    cdc_my.execute("CREATE USER 'lf_cdc'@'127.0.0.1' IDENTIFIED BY 'Sekr1t-pw'")
    try:
        cdc_my.execute("GRANT ALL PRIVILEGES ON *.* TO 'lf_cdc'@'127.0.0.1'")
        db = MyDb(cdc_my.port, cdc_my.name)
        db.url = f"mysql://lf_cdc:Sekr1t-pw@127.0.0.1:{cdc_my.port}/{cdc_my.name}"
        project = Project(cdc_project(tmp_path / "p", db, {"orders": {"mode": "cdc"}}))
        thread, stop, out = _follow(project)
        try:
            _wait(lambda: len(_dump_threads(cdc_my)) == 1)
            # the reader's reconnect after the kill is refused: the failure must reach the run
            cdc_my.execute("ALTER USER 'lf_cdc'@'127.0.0.1' IDENTIFIED BY 'other-pw'")
            cdc_my.execute(f"KILL {_dump_threads(cdc_my)[0][0]}")
            thread.join(30)
        finally:
            stop.set()
            thread.join(30)
    finally:
        cdc_my.execute("DROP USER 'lf_cdc'@'127.0.0.1'")
    assert not thread.is_alive()
    result = out[0]
    assert not result.ok
    error = result.tables[0].error or ""
    assert error.startswith("source 'src': binlog stream failed"), error
    assert "Access denied" in error and "Sekr1t" not in error, error
    assert not _readers()
