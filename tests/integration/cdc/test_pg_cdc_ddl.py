"""PostgreSQL CDC across ALTER TABLE in the middle of the log: columns added and dropped, a widening type
change, and an incompatible one (the foundation's drift rules, lake/schema.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project


def test_add_drop_and_widen_in_one_catch_up(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, a int, b text, keep text)")
    cdc_pg.execute("INSERT INTO t VALUES (1, 1, 'b1', 'k'), (2, 2, 'b2', 'k')")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}, cdc_commit_seconds=600))
    assert project.run().ok
    for sql in ("INSERT INTO t VALUES (3, 3, 'b3', 'k')",
                "ALTER TABLE t ADD COLUMN c text",
                "INSERT INTO t VALUES (4, 4, 'b4', 'k', 'c4')",
                "ALTER TABLE t DROP COLUMN b",
                "INSERT INTO t VALUES (5, 5, 'k', 'c5')",
                "UPDATE t SET keep = 'u' WHERE id = 1",
                "ALTER TABLE t ALTER COLUMN a TYPE bigint",
                "INSERT INTO t VALUES (6, 1099511627776, 'k', 'c6')",
                "UPDATE t SET a = -1099511627776 WHERE id = 2"):
        cdc_pg.execute(sql)
    result = project.run()  # one catch-up run, one micro-batch
    assert result.ok, result
    schema = project.lake.schema("bronze.src_t")
    assert schema is not None
    assert schema.field("a").type == pa.int64() and schema.field("c").type == pa.string()
    lake = [tuple(r.values()) for r in project.sql("select id, a, b, keep, c from bronze.src_t order by id")
            .to_pylist()]
    # b keeps the values rows had before the drop; rows written (or rewritten) after it have NULL
    assert lake == [(1, 1, None, "u", None), (2, -1099511627776, None, "k", None), (3, 3, "b3", "k", None),
                    (4, 4, "b4", "k", "c4"), (5, 5, None, "k", "c5"), (6, 1099511627776, None, "k", "c6")]
    source = [tuple(r) for r in cdc_pg.execute("SELECT id, a, keep, c FROM t ORDER BY id")]
    assert [(r[0], r[1], r[3], r[4]) for r in lake] == source
    log = project.sql("select id, b, c from bronze.src_t_changes where id in (3, 4) order by id").to_pylist()
    assert log == [{"id": 3, "b": "b3", "c": None}, {"id": 4, "b": "b4", "c": "c4"}]


def test_incompatible_type_change_stops_the_table(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, a int)")
    cdc_pg.execute("INSERT INTO t VALUES (1, 1)")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_pg.execute("INSERT INTO t VALUES (2, 2)")
    cdc_pg.execute("ALTER TABLE t ALTER COLUMN a TYPE text USING a::text")
    cdc_pg.execute("INSERT INTO t VALUES (3, 'three')")
    result = project.run()
    assert not result.ok
    text = str(result)
    assert "bronze.src_t" in text and "'a'" in text and "int32" in text and "string" in text
    assert project.sql("select id, a from bronze.src_t order by id").to_pylist() == [{"id": 1, "a": 1}]


def test_column_dropped_before_the_run_reads_its_pending_values(cdc_pg: PgDb, tmp_path: Path) -> None:
    """Changes logged before a DROP COLUMN are read in a later run, when the catalog no longer has the column:
    its values keep their type (from the log's relation message) and land in the lake column."""
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, n int, at timestamptz)")
    cdc_pg.execute("INSERT INTO t VALUES (1, 1, '2024-01-01 00:00:00+00')")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_pg.execute("INSERT INTO t VALUES (2, 2, '2024-01-02 00:00:00+00')")
    cdc_pg.execute("ALTER TABLE t DROP COLUMN n, DROP COLUMN at")
    cdc_pg.execute("INSERT INTO t VALUES (3)")
    result = project.run()
    assert result.ok, result
    schema = project.lake.schema("bronze.src_t")
    assert schema is not None and schema.field("n").type == pa.int32()
    assert schema.field("at").type == pa.timestamp("us", tz="UTC")
    rows = sorted(project.lake.dataset("bronze.src_t").to_table(columns=["id", "n", "at"]).to_pylist(),
                  key=lambda r: r["id"])
    day = [None if r["at"] is None else r["at"].isoformat() for r in rows]
    assert [(r["id"], r["n"]) for r in rows] == [(1, 1), (2, 2), (3, None)]
    assert day == ["2024-01-01T00:00:00+00:00", "2024-01-02T00:00:00+00:00", None]
