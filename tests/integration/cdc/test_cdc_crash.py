"""CDC exactly once under SIGKILL: a real ``lakeforge run`` process kills itself at a CDC point named by
``LAKEFORGE_TEST_KILL_AT`` (see ``lakeforge.load.killpoint``): during the snapshot, with changes buffered,
between the change-log and current-state commits of one micro-batch, between the tables of one micro-batch,
and while ``run --follow`` applies changes. The source changes between runs, so every restart has real work.
After the next run (no hook) each current-state table equals its source row for row and each change log holds
every change made after the table's snapshot exactly once: exact counts per op, no repeated
``(_lf_position_value, _lf_seq)``.

Two tables, ``a_orders`` then ``b_items`` (the order lakeforge flushes them in), changed by multi-table
transactions of several sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, PgDb, cdc_project

pytestmark = pytest.mark.usefixtures("lake_format")

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
FIRST, SECOND = "bronze.src_a_orders", "bronze.src_b_items"
TABLES = {FIRST: ("a_orders", "id, item, qty, price"), SECOND: ("b_items", "id, name, n")}
SOURCES = ["postgres", "mysql"]


class Src:
    """The source database with row counts: transactions of several statements, each statement's rowcount."""

    def __init__(self, db: PgDb | MyDb) -> None:
        self.db = db
        self.kind = "postgres" if isinstance(db, PgDb) else "mysql"

    def txn(self, *statements: str) -> list[int]:
        """Run ``statements`` in one transaction; return each one's affected row count."""
        if self.kind == "postgres":
            import psycopg

            with psycopg.connect(self.db.url) as conn, conn.cursor() as cur:
                counts = []
                for sql in statements:
                    cur.execute(sql)  # type: ignore[arg-type]
                    counts.append(cur.rowcount)
                return counts
        import pymysql

        conn = pymysql.connect(host="127.0.0.1", port=self.db.port, user="root", database=self.db.name,
                               autocommit=False, charset="utf8mb4")
        try:
            with conn.cursor() as cur:
                counts = [cur.execute(sql) for sql in statements]
            conn.commit()
            return counts
        finally:
            conn.close()

    def series(self, first: int, last: int) -> str:
        from tests.servers import integer_series

        return integer_series(self.kind, first, last)

    def rows(self, table: str, columns: str) -> list[tuple[Any, ...]]:
        return sorted(tuple(r) for r in self.db.execute(f"SELECT {columns} FROM {table}"))


def create(src: Src, orders: int = 2000, items: int = 500) -> None:
    src.db.execute("CREATE TABLE a_orders (id int PRIMARY KEY, item text, qty int, price numeric(10,2))")
    src.db.execute("CREATE TABLE b_items (id int PRIMARY KEY, name varchar(100), n bigint)")
    src.txn(f"INSERT INTO a_orders SELECT g, concat('item ', g), g, g * 1.25 FROM {src.series(1, orders)}",
            f"INSERT INTO b_items SELECT g, concat('name ', g), g * 1000 FROM {src.series(1, items)}")


def mutate(src: Src, step: int, expected: dict[str, Counter[str]]) -> None:
    """Inserts, updates and deletes in both tables, in a big, a middle-sized and many one-row transactions;
    adds what changed to ``expected`` (per lake table, per op)."""
    base = 100_000 + step * 1_000
    counts = src.txn(
        f"INSERT INTO a_orders SELECT g, concat('new ', g), 1, 9.99 FROM {src.series(base, base + 299)}",
        f"INSERT INTO b_items SELECT g, concat('new ', g), g FROM {src.series(base, base + 49)}",
        f"UPDATE a_orders SET qty = qty + 1, item = concat(item, '+') WHERE id % 7 = {step % 7}",
    )
    _add(expected, [(FIRST, "insert"), (SECOND, "insert"), (FIRST, "update")], counts)
    counts = src.txn(f"UPDATE b_items SET n = n + 1 WHERE id % 5 = {step % 5}",
                     f"DELETE FROM a_orders WHERE id % 11 = {step % 11} AND id < 100000",
                     f"DELETE FROM b_items WHERE id % 13 = {step % 13}")
    _add(expected, [(SECOND, "update"), (FIRST, "delete"), (SECOND, "delete")], counts)
    for i in range(20):
        counts = src.txn(f"UPDATE a_orders SET price = price + 1 WHERE id = {base + i}",
                         f"UPDATE b_items SET name = 'one {step} {i}' WHERE id = {base + i}")
        _add(expected, [(FIRST, "update"), (SECOND, "update")], counts)


def _add(expected: dict[str, Counter[str]], what: list[tuple[str, str]], counts: list[int]) -> None:
    for (table, op), n in zip(what, counts, strict=True):
        expected[table][op] += n


def lakeforge_env(kill_at: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "LAKEFORGE_TEST_KILL_AT"}
    if kill_at:
        env["LAKEFORGE_TEST_KILL_AT"] = kill_at
    return env


def killed(p: Project, point: str) -> None:
    """``lakeforge run`` with the hook: it must die by SIGKILL."""
    proc = subprocess.run([LAKEFORGE, "run", "--project", str(p.path)], env=lakeforge_env(point),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == -9, (point, proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])


def follow_command(p: Project) -> list[str]:
    """``lakeforge run --follow`` when the CLI has it, else the same through the Python API."""
    help_text = subprocess.run([LAKEFORGE, "run", "--help"], capture_output=True, text=True).stdout
    if "--follow" in help_text:
        return [LAKEFORGE, "run", "--follow", "--project", str(p.path)]
    return [sys.executable, "-c", f"from lakeforge import Project; Project({str(p.path)!r}).run(follow=True)"]


def versions(p: Project) -> dict[str, int | None]:
    names = [n for t in TABLES for n in (t, f"{t}_changes")]
    return {n: p.lake.version(n) if p.lake.exists(n) else None for n in names}


def bumped(before: dict[str, int | None], after: dict[str, int | None]) -> set[str]:
    return {n for n in after if after[n] != before[n]}


def assert_exact(src: Src, p: Project, expected: dict[str, Counter[str]]) -> None:
    """State == source row for row; change log == every expected change once."""
    for name, (table, columns) in TABLES.items():
        lake = [tuple(r.values()) for r in p.sql(f"select {columns} from {name}").to_pylist()]
        assert sorted(lake) == src.rows(table, columns), f"{name} differs from {table}"
        ops = {r["_lf_op"]: r["n"] for r in p.sql(f"select _lf_op, count(*) n from {name}_changes group by 1")
               .to_pylist()}
        assert ops == {op: n for op, n in expected[name].items() if n}, f"{name}_changes per op"
        dup = p.sql(f"select _lf_position_value, _lf_seq, count(*) n from {name}_changes group by 1, 2 "
                    "having count(*) > 1").to_pylist()
        assert dup == [], f"{name}_changes holds changes twice: {dup[:5]}"


def recover(src: Src, p: Project, expected: dict[str, Counter[str]]) -> None:
    result = p.run()
    assert result.ok, result
    assert_exact(src, p, expected)


@pytest.fixture(params=SOURCES)
def setup(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Src, Project]:
    src = Src(request.getfixturevalue("cdc_pg" if request.param == "postgres" else "cdc_my"))
    create(src)
    tables = {"a_orders": {"mode": "cdc"}, "b_items": {"mode": "cdc"}}
    return src, Project(cdc_project(tmp_path / "p", src.db, tables, batch_size=500))


def new_expected() -> dict[str, Counter[str]]:
    return {name: Counter() for name in TABLES}


def test_kill_during_snapshot(setup: tuple[Src, Project]) -> None:
    src, p = setup
    expected = new_expected()
    # the first table's snapshot has read a batch: nothing is committed; changes before the rerun land in the
    # rerun's snapshot, not in the change log
    killed(p, f"cdc_snapshot:{FIRST}")
    assert set(versions(p).values()) == {None}
    mutate(src, 1, new_expected())
    recover(src, p, expected)

    # a new source table set to cdc: second table snapshotted while the first streams
    src.db.execute("CREATE TABLE c_extra (id int PRIMARY KEY, v int)")
    src.db.execute("INSERT INTO c_extra VALUES (1, 1), (2, 2)")
    tables = {"a_orders": {"mode": "cdc"}, "b_items": {"mode": "cdc"}, "c_extra": {"mode": "cdc"}}
    cdc_project(p.path, src.db, tables, batch_size=500)
    p = Project(p.path)
    mutate(src, 2, expected)
    before = versions(p)
    killed(p, "cdc_snapshot:bronze.src_c_extra")
    assert bumped(before, versions(p)) == set(), "the snapshot kill must come before any commit"
    mutate(src, 3, expected)
    src.db.execute("INSERT INTO c_extra VALUES (3, 3)")
    recover(src, p, expected)
    assert sorted(tuple(r.values()) for r in p.sql("select id, v from bronze.src_c_extra").to_pylist()) == \
        src.rows("c_extra", "id, v")


def test_kill_between_snapshot_commits(setup: tuple[Src, Project]) -> None:
    src, p = setup
    expected = new_expected()
    # the first table's state committed with its snapshot position, its change log not created yet
    killed(p, f"cdc_snapshot_committed:{FIRST}")
    assert {n for n, v in versions(p).items() if v is not None} == {FIRST}
    # a table whose change log has no position is snapshotted again (not reported as a lost log), so these
    # changes land in both tables' snapshots and in neither change log
    mutate(src, 1, new_expected())
    recover(src, p, expected)
    mutate(src, 2, expected)
    recover(src, p, expected)


# point, and which lake tables the killed run committed
STREAM_KILLS = [
    (f"cdc_buffer:{FIRST}", set()),
    (f"cdc_buffer:{SECOND}", set()),
    (f"cdc_flush:{FIRST}", set()),
    (f"cdc_log_committed:{FIRST}", {f"{FIRST}_changes"}),
    (f"cdc_flush:{SECOND}", {FIRST, f"{FIRST}_changes"}),  # between tables of one micro-batch
    (f"cdc_log_committed:{SECOND}", {FIRST, f"{FIRST}_changes", f"{SECOND}_changes"}),
    (f"cdc_committed:{SECOND}", {FIRST, f"{FIRST}_changes", SECOND, f"{SECOND}_changes"}),  # before the ack
]


@pytest.mark.slow
def test_kill_while_streaming_and_committing(setup: tuple[Src, Project]) -> None:
    src, p = setup
    expected = new_expected()
    recover(src, p, expected)  # snapshot
    for step, (point, committed) in enumerate(STREAM_KILLS, start=1):
        mutate(src, step, expected)
        before = versions(p)
        killed(p, point)
        assert bumped(before, versions(p)) == committed, point
        mutate(src, step + 100, expected)  # the restart has new work besides the killed batch
        recover(src, p, expected)


@pytest.mark.slow
def test_kill_while_following(setup: tuple[Src, Project]) -> None:
    src, p = setup
    expected = new_expected()
    recover(src, p, expected)
    for step, point in enumerate((f"cdc_log_committed:{SECOND}", f"cdc_flush:{SECOND}"), start=1):
        before = versions(p)
        steps = iter(range(step * 100, step * 100 + 99))
        child = subprocess.Popen(follow_command(p), env=lakeforge_env(point), stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 90
            while child.poll() is None and time.monotonic() < deadline:
                mutate(src, next(steps), expected)
                time.sleep(0.5)
            assert child.poll() == -9, (point, child.returncode, child.stderr.read() if child.stderr else "")
        finally:
            if child.poll() is None:
                child.kill()
            child.communicate()
        assert f"{FIRST}_changes" in bumped(before, versions(p)), "the follow run committed nothing first"
        mutate(src, next(steps), expected)
        recover(src, p, expected)


# a backlog: micro-batches of ~100 changes are full, so the state MERGE of each waits for the next one
DEFERRED_KILLS = [
    (f"cdc_state_deferred:{FIRST}", {f"{FIRST}_changes"}),
    (f"cdc_committed:{SECOND}", {f"{FIRST}_changes", f"{SECOND}_changes"}),
]


@pytest.mark.slow
def test_kill_while_the_state_merge_waits(setup: tuple[Src, Project]) -> None:
    src, p = setup
    tables = {"a_orders": {"mode": "cdc"}, "b_items": {"mode": "cdc"}}
    p = Project(cdc_project(p.path, src.db, tables, batch_size=500, cdc_commit_changes=100))
    expected = new_expected()
    recover(src, p, expected)  # snapshot
    for step, (point, committed) in enumerate(DEFERRED_KILLS, start=1):
        mutate(src, step, expected)
        before = versions(p)
        killed(p, point)
        # the change logs committed the first micro-batch; the current-state tables did not move
        assert bumped(before, versions(p)) == committed, point
        mutate(src, step + 100, expected)
        recover(src, p, expected)
        for name in TABLES:  # the run's last micro-batch MERGEd what waited: both tables at one position
            state, log = p.lake.checkpoint(name), p.lake.checkpoint(f"{name}_changes")
            assert state is not None and log is not None
            assert state.position["value"] == log.position["value"], name
