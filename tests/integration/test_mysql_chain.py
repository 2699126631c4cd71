"""MariaDB: a large table read in key ranges one after another, all in one snapshot (``sources/mysql/chain``).

The ranges are forced on small tables (``range_count`` patched); everything else is the real path: connectorx
readers, ``LOCK TABLES``, user locks, the server's own snapshots.
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pymysql
import pytest
from deltalake import DeltaTable

from lakeforge import Project
from lakeforge.config.models import MySQLSource as MySQLConfig
from lakeforge.config.models import TableConfig
from lakeforge.sources.base import TableRef
from lakeforge.sources.mysql import chain
from lakeforge.sources.mysql.source import MySQLSource
from tests.conftest import MY_HOST, MY_PORT, MyDatabase, write_project

ROWS = 20_000


@pytest.fixture
def ranges(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Force 4 ranges on any table; the list records each chained read's range count."""
    seen: list[int] = []
    original = chain.ChainedRead.__init__

    def spy(self: chain.ChainedRead, *args: Any) -> None:
        original(self, *args)
        seen.append(len(self.ranges))

    monkeypatch.setattr(chain, "range_count", lambda plan, size: 4)
    monkeypatch.setattr(chain.ChainedRead, "__init__", spy)
    return seen


def _fill(db: MyDatabase) -> None:
    db.execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, amount decimal(20,10), ts datetime(6), note varchar(20), "
        "u bigint unsigned)"
    )
    db.execute(
        f"INSERT INTO t SELECT seq, seq / 7, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MICROSECOND, "
        f"IF(seq % 5 = 0, NULL, CONCAT('n', seq)), 18446744073709551615 - seq FROM seq_1_to_{ROWS}"
    )


def _source(db: MyDatabase, user: str = "root", password: str = "") -> MySQLSource:
    cred = f"{user}:{password}@" if password else f"{user}@"
    return MySQLSource("src", MySQLConfig(type="mysql", url=f"mysql://{cred}{MY_HOST}:{MY_PORT}/{db.name}"))


def test_full_load_in_ranges_is_exact(my_db: MyDatabase, project_dir: Path, ranges: list[int]) -> None:
    _fill(my_db)
    write_project(project_dir, f"""
        sources:
          src: {{type: mysql, url: "{my_db.url}"}}
    """)
    project = Project(project_dir)
    result = project.run()
    assert result.ok, [r.error for r in result.tables] + result.errors
    assert ranges == [4]
    data = DeltaTable(project.lake.uri("bronze.src_t")).to_pyarrow_table().sort_by("id")
    assert data.num_rows == ROWS
    assert data.column("id").to_pylist() == list(range(1, ROWS + 1))  # every row once, none twice
    truth = my_db.execute("SELECT SUM(amount), MAX(ts), SUM(note IS NULL), MIN(u) FROM t")[0]
    assert sum(data.column("amount").to_pylist()) == truth[0]
    assert data.schema.field("amount").type == pa.decimal128(20, 10)
    assert data.column("amount")[6].as_py() == Decimal("1.0000000000")
    assert max(data.column("ts").to_pylist()) == truth[1]
    assert data.column("note").null_count == int(truth[2])
    assert min(data.column("u").to_pylist()) == truth[3] == 18446744073709551615 - ROWS
    running = (
        "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lf_gate%' AND ID <> CONNECTION_ID()"
    )
    assert my_db.execute(running) == [(0,)]


def test_ranges_read_one_snapshot_while_writers_commit(my_db: MyDatabase, ranges: list[int]) -> None:
    """A writer moves amounts between the first and the last row (the sum never changes) while the ranges are
    read slowly: every range sees the same state, so the sum read is the invariant one."""
    _fill(my_db)
    total = my_db.execute("SELECT SUM(amount) FROM t")[0][0]
    source = _source(my_db)
    plan = source.describe(TableRef(my_db.name, "t"), TableConfig())
    stop = threading.Event()
    moves = [0]

    def writer() -> None:
        conn = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", database=my_db.name, autocommit=False)
        while not stop.is_set():
            with conn.cursor() as cur:
                cur.execute("UPDATE t SET amount = amount - 1 WHERE id = 1")
                cur.execute(f"UPDATE t SET amount = amount + 1 WHERE id = {ROWS}")
            conn.commit()
            moves[0] += 1
            time.sleep(0.005)
        conn.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        time.sleep(0.2)
        read_sum, count, before = Decimal(0), 0, moves[0]
        for batch in source.read(plan, batch_size=1_000):
            read_sum += sum(batch.column(1).to_pylist())
            count += batch.num_rows
            time.sleep(0.05)  # a slow consumer: the writer commits between the ranges
        during = moves[0] - before
    finally:
        stop.set()
        thread.join()
        source.close()
    assert ranges == [4]
    assert during > 20, "the writer must have committed while the ranges were read"
    assert count == ROWS
    assert read_sum == total
    assert my_db.execute("SELECT SUM(amount) FROM t")[0][0] == total


def test_without_lock_privilege_one_query_reads_the_table(my_db: MyDatabase, ranges: list[int]) -> None:
    _fill(my_db)
    user = f"lf_{my_db.name[-8:]}"
    my_db.execute(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'pw'")
    try:
        my_db.execute(f"GRANT SELECT ON `{my_db.name}`.* TO '{user}'@'%'")  # no LOCK TABLES
        source = _source(my_db, user, "pw")
        plan = source.describe(TableRef(my_db.name, "t"), TableConfig())
        ids = [i for b in source.read(plan, batch_size=5_000) for i in b.column(0).to_pylist()]
        source.close()
        assert ranges == [4]  # the chained read was tried, then fell back
        assert sorted(ids) == list(range(1, ROWS + 1))
    finally:
        my_db.execute(f"DROP USER '{user}'@'%'")


def test_a_stopped_read_leaves_no_range_running(my_db: MyDatabase, ranges: list[int]) -> None:
    _fill(my_db)
    source = _source(my_db)
    plan = source.describe(TableRef(my_db.name, "t"), TableConfig())
    batches = source.read(plan, batch_size=500)
    first = next(batches)
    assert first.num_rows == 500
    batches.close()
    source.close()
    deadline = time.monotonic() + 10
    while True:
        left = my_db.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lf_gate%' "
            f"AND DB = '{my_db.name}' AND ID <> CONNECTION_ID()"
        )[0][0]
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert left == 0
    assert ranges == [4]
