"""MariaDB reads with flow control (``sources/mysql/pace.py``): the server pauses every batch until the
consumer has taken the batches before. Real server, real connectorx; small batches so that a 20,000-row
table passes many gates."""

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
from lakeforge.sources.mysql.pace import LEAD
from lakeforge.sources.mysql.source import MySQLSource
from tests.conftest import MY_HOST, MY_PORT, MyDatabase, write_project

ROWS = 20_000
RUNNING = (
    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lf_pace%' AND ID <> CONNECTION_ID() "
    "AND DB = DATABASE()"
)


def _fill(db: MyDatabase) -> None:
    db.execute(
        "CREATE TABLE t (id bigint PRIMARY KEY, amount decimal(20,10), ts datetime(6), note varchar(20), "
        "u bigint unsigned)"
    )
    db.execute(
        f"INSERT INTO t SELECT seq, seq / 7, TIMESTAMP '2024-01-01 00:00:00' + INTERVAL seq MICROSECOND, "
        f"IF(seq % 5 = 0, NULL, CONCAT('n', seq)), 18446744073709551615 - seq FROM seq_1_to_{ROWS}"
    )


@pytest.fixture(autouse=True)
def _pace_every_table(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tables are small: pace them anyway (by default only tables of 256 MiB and more are paced)."""
    monkeypatch.setattr(MySQLSource, "pace_from_bytes", 0)


def _source(db: MyDatabase, pace: str = "auto") -> MySQLSource:
    return MySQLSource("src", MySQLConfig(type="mysql", url=db.url, pace=pace))


def _read_with_a_pause(db: MyDatabase, pace: str = "auto") -> tuple[list[int], list[Any]]:
    """Read ``t`` in 1,000-row batches, holding on to the first batch for a second: every id read, and the
    (state, query) of each paced query of the server during that second."""
    _fill(db)
    source = _source(db, pace)
    plan = source.describe(TableRef(db.name, "t"), TableConfig())
    batches = source.read(plan, batch_size=1_000)
    ids = next(batches).column(0).to_pylist()
    time.sleep(1.0)
    states = db.execute(
        "SELECT STATE, INFO FROM information_schema.PROCESSLIST WHERE INFO LIKE '%lf_pace%' AND ID <> CONNECTION_ID() "
        "AND DB = DATABASE()"
    )
    for batch in batches:
        ids += batch.column(0).to_pylist()
    source.close()
    return ids, list(states)


def _wait_none_running(db: MyDatabase) -> int:
    deadline = time.monotonic() + 10
    while True:
        left = int(db.execute(RUNNING)[0][0])
        if left == 0 or time.monotonic() > deadline:
            return left
        time.sleep(0.1)


def test_full_load_paced_is_exact(my_db: MyDatabase, project_dir: Path) -> None:
    _fill(my_db)
    write_project(
        project_dir,
        f"""
        run: {{batch_size: 1000}}
        sources:
          src: {{type: mysql, url: "{my_db.url}"}}
    """,
    )
    project = Project(project_dir)
    result = project.run()
    assert result.ok, [r.error for r in result.tables] + result.errors
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
    assert _wait_none_running(my_db) == 0


def test_server_waits_for_a_slow_consumer(my_db: MyDatabase) -> None:
    """While the consumer holds on to its first batch, the query stops in the server at a gate (state
    'User lock') instead of sending the table into connectorx's buffer; then every row still arrives."""
    ids, states = _read_with_a_pause(my_db)
    assert [s for s, _ in states] == ["User lock"], states
    assert sorted(ids) == list(range(1, ROWS + 1))
    assert LEAD >= 1


def test_window_that_skips_rows_is_paced_by_rows_sent(my_db: MyDatabase) -> None:
    """Rows the WHERE rejects do not count towards a gate (else the server would stop early and the reader
    would wait for a batch that never comes)."""
    _fill(my_db)
    source = _source(my_db)
    plan = source.describe(TableRef(my_db.name, "t"), TableConfig())
    ids = [
        i
        for b in source.read(plan, where="id % 3 = 0 AND note IS NOT NULL", batch_size=500)
        for i in b.column(0).to_pylist()
    ]
    source.close()
    assert sorted(ids) == [i for i in range(1, ROWS + 1) if i % 3 == 0 and i % 5 != 0]


def test_paced_read_is_one_snapshot_while_writers_commit(my_db: MyDatabase) -> None:
    """A writer moves amounts between the first and the last row (the sum never changes) while the paced
    query is held at its gates: the rows read are still one state."""
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
            time.sleep(0.05)  # a slow consumer: the query waits at its gates while the writer commits
        during = moves[0] - before
    finally:
        stop.set()
        thread.join()
        source.close()
    assert during > 20, "the writer must have committed while the rows were read"
    assert count == ROWS
    assert read_sum == total
    assert my_db.execute("SELECT SUM(amount) FROM t")[0][0] == total


def test_a_stopped_read_leaves_no_query_running(my_db: MyDatabase) -> None:
    _fill(my_db)
    source = _source(my_db)
    plan = source.describe(TableRef(my_db.name, "t"), TableConfig())
    batches = source.read(plan, batch_size=500)
    assert next(batches).num_rows == 500
    assert int(my_db.execute(RUNNING)[0][0]) == 1  # held at a gate
    batches.close()
    source.close()
    assert _wait_none_running(my_db) == 0


def test_a_small_table_is_read_unpaced(my_db: MyDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """Below ``pace_from_bytes`` the query has no gate: the server sends on while the consumer waits."""
    monkeypatch.setattr(MySQLSource, "pace_from_bytes", 256 * 1024 * 1024)
    ids, states = _read_with_a_pause(my_db)
    assert states == [], states
    assert sorted(ids) == list(range(1, ROWS + 1))


def test_pace_setting_overrides_the_size_rule(my_db: MyDatabase, monkeypatch: pytest.MonkeyPatch) -> None:
    """``pace: never`` reads a table the size rule paces (here: every table) without a gate; ``pace: always``
    paces a table the size rule would read unpaced."""
    ids, states = _read_with_a_pause(my_db, pace="never")
    assert states == [], states
    assert sorted(ids) == list(range(1, ROWS + 1))
    my_db.execute("DROP TABLE t")
    monkeypatch.setattr(MySQLSource, "pace_from_bytes", 256 * 1024 * 1024)
    ids, states = _read_with_a_pause(my_db, pace="always")
    assert [state for state, _ in states] == ["User lock"], states
    assert sorted(ids) == list(range(1, ROWS + 1))
