"""A MariaDB CDC table's initial snapshot read by range tasks (ThreadExecutor) that open their snapshots under
one global read lock, at a GTID that becomes the table's log start; a writer runs all along, and every one of
its changes ends up either in the snapshot or applied from the binlog, exactly once."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pymysql
import pytest

from lakeforge import Project
from lakeforge.distributed.executor import ThreadExecutor
from lakeforge.distributed.extract import DistributedExtractor
from lakeforge.sources.mysql.cdc import MySQLCdc
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_my_cdc import ORDER_COLUMNS, ORDERS, assert_same

ROWS = 4000


class Writer(threading.Thread):
    """One-row autocommit transactions (update, insert, delete in turn) until stopped; records each one's
    GTID sequence number and kind."""

    def __init__(self, db: MyDb) -> None:
        super().__init__(daemon=True)
        self.db = db
        self.stop = threading.Event()
        self.done: list[tuple[int, str]] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        conn = pymysql.connect(
            host="127.0.0.1",
            port=self.db.port,
            user="root",
            database=self.db.name,
            autocommit=True,
            init_command="SET time_zone='+00:00'",
        )
        try:
            with conn.cursor() as cur:
                i = 0
                while not self.stop.is_set():
                    i += 1
                    kind = ("update", "insert", "delete")[i % 3] if i < ROWS - 20 else "update"
                    if kind == "update":
                        cur.execute(
                            "UPDATE orders SET qty = qty + 1, price = price + 0.01 WHERE id = %s", ((i * 7) % ROWS + 1,)
                        )
                    elif kind == "insert":
                        cur.execute("INSERT INTO orders VALUES (%s, 'w', %s, 1.05, now(6), NULL, NULL)", (ROWS + i, i))
                    else:
                        cur.execute("DELETE FROM orders WHERE id = %s", (ROWS - i,))
                    if cur.rowcount < 1:  # nothing changed, nothing logged
                        continue
                    cur.execute("SELECT @@last_gtid")
                    self.done.append((int(str(cur.fetchone()[0]).rsplit("-", 1)[1]), kind))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.error = exc
        finally:
            conn.close()


def _log_counts(project: Project, after: int) -> dict[str, int]:
    rows = project.sql(
        "select _lf_op op, count(*) n, min(_lf_position_value) lo from bronze.src_orders_changes group by 1"
    ).to_pylist()
    assert all(r["lo"] > after for r in rows), rows  # nothing in the log that the snapshot already holds
    return {r["op"]: r["n"] for r in rows}


def commit_after_reader_snapshot(monkeypatch: pytest.MonkeyPatch, db: MyDb) -> list[int]:
    """Commit one update of ids 101-110 right after the CDC reader's own snapshot was taken (before the range
    tasks take theirs); returns its GTID sequence number once done."""
    original = MySQLCdc.snapshot
    done: list[int] = []

    @contextlib.contextmanager
    def late(self: MySQLCdc, plans: Any) -> Iterator[Any]:
        with original(self, plans) as snap:
            db.execute("UPDATE orders SET note = 'window' WHERE id BETWEEN 101 AND 110")
            done.append(int(str(db.execute("SELECT @@last_gtid")[0][0]).rsplit("-", 1)[1]))
            yield snap

    monkeypatch.setattr(MySQLCdc, "snapshot", late)
    return done


def test_cdc_snapshot_by_range_tasks_under_read_lock(
    cdc_my: MyDb, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cdc_my.execute(ORDERS)
    cdc_my.executemany(
        "INSERT INTO orders VALUES (%s, %s, %s, %s, '2024-01-02 03:04:05.123456', %s, %s)",
        [
            (
                i,
                f"item{i}",
                i % 50,
                f"{i}.{i % 100:02d}",
                None if i % 5 == 0 else "2024-03-01 10:00:00.5",
                None if i % 3 == 0 else "n",
            )
            for i in range(1, ROWS + 1)
        ],
    )
    folder = cdc_project(tmp_path / "p", cdc_my, {"orders": {"mode": "cdc"}}, partitions=4, parallel_min_rows=0)
    project = Project(folder)
    project.extractor = DistributedExtractor(ThreadExecutor(4))  # type: ignore[misc]
    window = commit_after_reader_snapshot(monkeypatch, cdc_my)
    writer = Writer(cdc_my)
    writer.start()
    while len(writer.done) < 20:  # the writer is going before the snapshot is taken
        assert writer.error is None and writer.is_alive()
    try:
        result = project.run()
        during = len(writer.done)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    assert result.ok, result
    tasks = project.extractor.results  # type: ignore[union-attr]
    assert len(tasks) == 4 and sum(t.rows > 0 for t in tasks) >= 3
    ops = project.sql(
        "select _lf_op, count(*) n, min(_lf_position) lo, max(_lf_position) hi from bronze.src_orders group by 1"
    ).to_pylist()
    (snap,) = [r for r in ops if r["_lf_op"] == "snapshot"]
    # the tasks' rows (those not changed since) were all read at one GTID, past the writer's first changes
    assert snap["lo"] == snap["hi"]
    at = int(snap["lo"].rsplit("-", 1)[1])
    assert at > writer.done[0][0]
    assert at >= window[0]  # the tasks' snapshot came after the reader's: its own GTID, not the reader's
    before = [kind for seq, kind in writer.done if seq <= at]
    assert sum(t.rows for t in tasks) == ROWS + before.count("insert") - before.count("delete")

    project.run()  # the rest of the writer's changes
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    after = [kind for seq, kind in writer.done if seq > at]
    counts = _log_counts(project, at)
    # every change after the snapshot's GTID applied once from the log, none before it
    assert counts == {k: after.count(k) for k in ("insert", "update", "delete") if after.count(k)}
    assert during > 20 and len(after) > 0, (during, len(after))

    cdc_my.execute("UPDATE orders SET note = 'later', price = 99999999.99 WHERE id <= 3")
    cdc_my.execute("DELETE FROM orders WHERE id = 10")
    assert project.run().ok
    assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    got: Any = project.sql("select price from bronze.src_orders where id = 1").to_pylist()
    assert str(got[0]["price"]) == str(cdc_my.execute("SELECT price FROM orders WHERE id = 1")[0][0])


def test_cdc_snapshot_without_reload_reads_in_one_process(cdc_my: MyDb, tmp_path: Path) -> None:
    """A user without RELOAD cannot take the global read lock: range tasks could not start the binlog from one
    state, so the snapshot is read in one process, with a warning in the table's result."""
    user = f"lf_{cdc_my.name}"[:32]
    cdc_my.execute(f"CREATE USER '{user}'@'%'")
    try:
        cdc_my.execute(f"GRANT SELECT ON `{cdc_my.name}`.* TO '{user}'@'%'")
        cdc_my.execute(f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%'")
        cdc_my.execute(ORDERS)
        cdc_my.executemany(
            "INSERT INTO orders (id, item, qty, price) VALUES (%s, %s, %s, %s)",
            [(i, f"item{i}", i, f"{i}.25") for i in range(1, 2001)],
        )
        limited = MyDb(cdc_my.port, cdc_my.name)
        limited.url = f"mysql://{user}@127.0.0.1:{cdc_my.port}/{cdc_my.name}"
        folder = cdc_project(tmp_path / "p", limited, {"orders": {"mode": "cdc"}}, partitions=4, parallel_min_rows=0)
        project = Project(folder)
        project.extractor = DistributedExtractor(ThreadExecutor(4))  # type: ignore[misc]
        result = project.run()
        assert result.ok, result
        (table,) = result.tables
        assert table.rows == 2000 and "grant RELOAD" in (table.reason or ""), table
        assert project.extractor.results == []  # type: ignore[union-attr]
        assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
        cdc_my.execute("UPDATE orders SET qty = -1 WHERE id = 7")
        assert project.run().ok
        assert_same(project, cdc_my, "orders", ORDER_COLUMNS)
    finally:
        cdc_my.execute(f"DROP USER '{user}'@'%'")
