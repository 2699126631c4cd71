"""PostgreSQL CDC against a throwaway wal_level=logical server: snapshot + log, every kind of change."""

from __future__ import annotations

from pathlib import Path

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project

pytestmark = pytest.mark.usefixtures("lake_format")


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


def _source(db: PgDb, sql: str) -> list[tuple]:
    return [tuple(r) for r in db.execute(sql)]


def _ops(project: Project, table: str) -> list[str]:
    return [r["_lf_op"] for r in project.sql(f"select _lf_op from {table} order by _lf_position_value, _lf_seq")
            .to_pylist()]


_BIG = "(SELECT string_agg(repeat(md5(g::text || %s), 4), '') FROM generate_series(1, 200) g)"
"""25,600 characters: compresses to about a quarter, still stored out of line (TOAST)."""


def test_unchanged_toast_values_are_kept(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE big (id int PRIMARY KEY, n int, plain text, packed text)")
    cdc_pg.execute("ALTER TABLE big ALTER COLUMN plain SET STORAGE EXTERNAL")  # out of line, not compressed
    for i in (1, 2, 3):
        cdc_pg.execute(f"INSERT INTO big VALUES ({i}, 0, {_BIG.replace('%s', repr(f'p{i}'))}, "
                       f"{_BIG.replace('%s', repr(f'c{i}'))})")
    toasted = cdc_pg.execute("SELECT pg_column_size(plain), pg_column_size(packed), length(packed) FROM big "
                             "WHERE id = 1")[0]
    assert toasted[0] > 8000 and toasted[1] < toasted[2]  # one uncompressed, one compressed
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"big": {"mode": "cdc"}}, cdc_commit_seconds=600))
    assert project.run().ok
    want = "SELECT id, n, plain, packed FROM big ORDER BY id"

    # across runs: the unchanged values come from the lake
    cdc_pg.execute("UPDATE big SET n = n + 1 WHERE id IN (1, 2)")
    assert project.run().ok
    assert _state(project, "bronze.src_big") == _source(cdc_pg, want)

    # one micro-batch: insert, then updates of other columns, a key change, a change of the big value itself
    cdc_pg.execute(f"INSERT INTO big VALUES (10, 0, {_BIG.replace('%s', repr('p10'))}, "
                   f"{_BIG.replace('%s', repr('c10'))})")
    cdc_pg.execute("UPDATE big SET n = 5 WHERE id = 10")
    cdc_pg.execute("UPDATE big SET n = 6 WHERE id = 10")
    cdc_pg.execute("UPDATE big SET n = 7 WHERE id = 1")
    cdc_pg.execute("UPDATE big SET id = 30 WHERE id = 3")
    cdc_pg.execute("UPDATE big SET n = 8 WHERE id = 30")
    cdc_pg.execute(f"UPDATE big SET packed = {_BIG.replace('%s', repr('new'))} WHERE id = 2")
    cdc_pg.execute("UPDATE big SET n = 9 WHERE id = 2")
    assert project.run().ok
    assert _state(project, "bronze.src_big") == _source(cdc_pg, want)
    # every change-log image has the full values too
    log = project.sql("select id, n, length(plain) p, length(packed) c from bronze.src_big_changes "
                      "where _lf_op <> 'delete'").to_pylist()
    assert log and all(r["p"] == 25600 and r["c"] == 25600 for r in log)


def test_truncate_mid_stream(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'old' FROM generate_series(1, 50) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_pg.execute("INSERT INTO t VALUES (51, 'before')")
    cdc_pg.execute("TRUNCATE t")
    cdc_pg.execute("INSERT INTO t SELECT g, 'after' FROM generate_series(5, 7) g")
    assert project.run().ok
    assert _state(project, "bronze.src_t") == _source(cdc_pg, "SELECT id, v FROM t ORDER BY id")
    assert _ops(project, "bronze.src_t_changes") == ["insert", "truncate", "insert", "insert", "insert"]


def test_one_transaction_two_tables(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE a (id int PRIMARY KEY, v int)")
    cdc_pg.execute("CREATE TABLE b (id int PRIMARY KEY, a_id int, w text)")
    cdc_pg.execute("INSERT INTO a SELECT g, 0 FROM generate_series(1, 10) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"a": {"mode": "cdc"}, "b": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_pg.execute("BEGIN; UPDATE a SET v = v + 1 WHERE id <= 5; INSERT INTO b SELECT g, g, 'x' "
                   "FROM generate_series(1, 5) g; DELETE FROM a WHERE id = 10; COMMIT")
    assert project.run().ok
    assert _state(project, "bronze.src_a") == _source(cdc_pg, "SELECT id, v FROM a ORDER BY id")
    assert _state(project, "bronze.src_b") == _source(cdc_pg, "SELECT id, a_id, w FROM b ORDER BY id")
    # both tables carry the same source transaction: one position, one commit time
    pos = project.sql("select distinct _lf_position_value p, _lf_commit_ts c from bronze.src_a_changes "
                      "union select distinct _lf_position_value, _lf_commit_ts from bronze.src_b_changes").to_pylist()
    assert len(pos) == 1


def test_soft_delete_keeps_deleted_rows(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc", "soft_delete": True}}))
    assert project.run().ok
    cdc_pg.execute("DELETE FROM t WHERE id IN (2, 4)")
    cdc_pg.execute("UPDATE t SET v = 'changed' WHERE id = 3")
    cdc_pg.execute("INSERT INTO t VALUES (11, 'new')")
    assert project.run().ok
    live = project.sql("select id, v from bronze.src_t where not _lf_deleted order by id").to_pylist()
    assert [(r["id"], r["v"]) for r in live] == _source(cdc_pg, "SELECT id, v FROM t ORDER BY id")
    gone = project.sql("select id, v, _lf_op from bronze.src_t where _lf_deleted order by id").to_pylist()
    assert gone == [{"id": 2, "v": "v2", "_lf_op": "delete"}, {"id": 4, "v": "v4", "_lf_op": "delete"}]
    # a deleted key inserted again comes back live
    cdc_pg.execute("INSERT INTO t VALUES (2, 'again')")
    assert project.run().ok
    assert project.sql("select v, _lf_deleted from bronze.src_t where id = 2").to_pylist() == [
        {"v": "again", "_lf_deleted": False}]


def test_table_without_primary_key(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE nopk (code text NOT NULL, v int)")
    cdc_pg.execute("INSERT INTO nopk SELECT 'k' || g, g FROM generate_series(1, 5) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"nopk": {"mode": "cdc", "merge_key": ["code"]}}))
    result = project.run()
    assert not result.ok
    assert "REPLICA IDENTITY FULL" in str(result) and "nopk" in str(result)
    assert not project.lake.exists("bronze.src_nopk")

    cdc_pg.execute("ALTER TABLE nopk REPLICA IDENTITY FULL")
    result = project.run()
    assert result.ok, result
    cdc_pg.execute("UPDATE nopk SET v = 100 WHERE code = 'k2'")
    cdc_pg.execute("DELETE FROM nopk WHERE code = 'k3'")
    cdc_pg.execute("INSERT INTO nopk VALUES ('k9', 9)")
    assert project.run().ok
    assert _state(project, "bronze.src_nopk", "code") == _source(cdc_pg, "SELECT code, v FROM nopk ORDER BY code")


def test_lost_slot_resnapshots_only_those_tables(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("CREATE TABLE plain (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 20) g")
    cdc_pg.execute("INSERT INTO plain SELECT g, 'v' FROM generate_series(1, 3) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}, "plain": {"mode": "full"}}))
    assert project.run().ok
    plain_version = project.lake.version("bronze.src_plain")
    cdc_pg.execute("UPDATE t SET v = 'missed' WHERE id <= 5")
    cdc_pg.execute("SELECT pg_drop_replication_slot('lakeforge_src')")
    cdc_pg.execute("DELETE FROM t WHERE id > 15")
    result = project.run()
    assert not result.ok
    assert "bronze.src_t" in str(result) and "resnapshot" in str(result)
    result = project.run(resnapshot=True)
    assert result.ok, result
    assert _state(project, "bronze.src_t") == _source(cdc_pg, "SELECT id, v FROM t ORDER BY id")
    assert project.sql("select distinct _lf_op from bronze.src_t").to_pylist() == [{"_lf_op": "snapshot"}]
    # the full table was loaded by each run as usual, the cdc table reloaded once, from the new slot
    assert project.lake.version("bronze.src_plain") > plain_version
    cdc_pg.execute("UPDATE t SET v = 'after' WHERE id = 1")
    assert project.run().ok
    assert _state(project, "bronze.src_t") == _source(cdc_pg, "SELECT id, v FROM t ORDER BY id")


def test_truncate_with_soft_delete_flags_every_row(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'old' FROM generate_series(1, 20) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc", "soft_delete": True}}))
    assert project.run().ok
    cdc_pg.execute("TRUNCATE t")
    cdc_pg.execute("INSERT INTO t SELECT g, 'after' FROM generate_series(5, 7) g")
    assert project.run().ok
    live = project.sql("select id, v from bronze.src_t where not _lf_deleted order by id").to_pylist()
    assert [(r["id"], r["v"]) for r in live] == _source(cdc_pg, "SELECT id, v FROM t ORDER BY id")
    gone = project.sql("select id, _lf_op from bronze.src_t where _lf_deleted order by id").to_pylist()
    assert gone == [{"id": i, "_lf_op": "truncate"} for i in range(1, 21) if i not in (5, 6, 7)]
