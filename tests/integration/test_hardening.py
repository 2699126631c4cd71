"""Issue #15: the edges a new user hits first, each reproduced against the real servers.

Each test failed before its fix (the issue's numbered findings are named in the test names).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.errors import ConfigError
from tests.conftest import write_project


def cli(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m lakeforge`` (what the ``lakeforge`` script runs) in a fresh process."""
    return subprocess.run([sys.executable, "-m", "lakeforge", *args, "--project", str(project)],
                          capture_output=True, text=True, timeout=180, env={**os.environ, **(env or {})})


def pg_project(path: Path, url: str, extra: str = "") -> Project:
    """A project with one PostgreSQL source ``my``; ``extra`` is more YAML under that source."""
    body = f"lake:\n  path: ./lakehouse\nsources:\n  my:\n    type: postgres\n    url: {url}\n"
    return Project(write_project(path, body + textwrap.indent(textwrap.dedent(extra), "    ")))


# -- 1. lake-name collisions ----------------------------------------------------------------------------------
def test_01_tables_normalising_to_one_name_are_refused_before_anything_is_written(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute('CREATE TABLE "Dup Name" (id int PRIMARY KEY, a text)')
    pg_db.execute("CREATE TABLE dup_name (id int PRIMARY KEY, b int)")
    pg_db.execute("INSERT INTO \"Dup Name\" VALUES (1, 'x'); INSERT INTO dup_name VALUES (1, 2), (2, 3)")
    project = pg_project(tmp_path / "p", pg_db.url)
    with pytest.raises(ConfigError) as caught:
        project.run()
    message = str(caught.value)
    assert "bronze.my_dup_name" in message and "my.public.Dup Name" in message and "my.public.dup_name" in message
    assert ".name:" in message and ".prefix:" in message
    assert project.lake.names() == [] and not project.lake.exists("_lakeforge.runs")  # nothing written

    # the way out the message gives works: a per-table lake name
    fixed = pg_project(tmp_path / "q", pg_db.url, """
        tables:
          Dup Name: {name: my_dup_name_spaced}
        """)
    result = fixed.run()
    assert result.ok, result
    assert fixed.sql("select id, a from bronze.my_dup_name_spaced").to_pylist() == [{"id": 1, "a": "x"}]
    assert fixed.sql("select count(*) n from bronze.my_dup_name").to_pylist() == [{"n": 2}]


def test_01_tables_of_two_sources_colliding_are_refused_and_a_prefix_resolves_it(
    pg_db: Any, my_db: Any, tmp_path: Path
) -> None:
    pg_db.execute("CREATE TABLE x_y (id int PRIMARY KEY)")
    my_db.execute("CREATE TABLE y (id int PRIMARY KEY, v varchar(5))")
    pg_db.execute("INSERT INTO x_y VALUES (1)")
    my_db.execute("INSERT INTO y VALUES (7, 'seven')")
    body = (f"lake:\n  path: ./lakehouse\nsources:\n  my:\n    type: postgres\n    url: {pg_db.url}\n"
            f"  my_x:\n    type: mysql\n    url: {my_db.url}\n")
    project = Project(write_project(tmp_path / "p", body))
    with pytest.raises(ConfigError, match=r"bronze\.my_x_y <- my\.public\.x_y and my_x\.\S+\.y"):
        project.run(select=["my_x"])  # even a run of one source: the other would overwrite it next time
    check = cli(tmp_path / "p", "check", "--output", "json")
    assert check.returncode == 1 and "bronze.my_x_y" in check.stdout
    assert project.lake.names() == []

    fixed = Project(write_project(tmp_path / "q", body + "    prefix: shop\n"))
    assert fixed.run().ok
    assert fixed.lake.names() == ["bronze.my_x_y", "bronze.shop_y"]
    assert fixed.sql("select id, v from bronze.shop_y").to_pylist() == [{"id": 7, "v": "seven"}]


# -- 4. non-ASCII identifiers ---------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["postgres", "mysql"])
def test_04_unicode_table_and_column_names_are_kept(kind: str, pg_db: Any, my_db: Any, tmp_path: Path) -> None:
    db = pg_db if kind == "postgres" else my_db
    q = '"' if kind == "postgres" else "`"
    db.execute(f"CREATE TABLE {q}商品{q} (id int PRIMARY KEY, {q}価格{q} decimal(10,2), {q}数量{q} int, "
               f"{q}Größe{q} varchar(10))")
    db.execute(f"INSERT INTO {q}商品{q} VALUES (1, 12.50, 3, 'XL'), (2, NULL, 0, NULL)")
    project = Project(write_project(tmp_path / "p", f"""
        lake:
          path: ./lakehouse
        sources:
          my:
            type: {kind}
            url: {db.url}
        """))
    result = project.run()
    assert result.ok, result
    assert [r.table for r in result.tables] == ["bronze.my_商品"]
    table = project.lake.read("bronze.my_商品").sort_by("id")
    assert table.schema.names[:4] == ["id", "価格", "数量", "größe"]
    assert table.schema.field("価格").type == pa.decimal128(10, 2)
    assert table.column("数量").to_pylist() == [3, 0] and table.column("größe").to_pylist() == ["XL", None]
    assert project.sql("select sum(価格) s from bronze.my_商品").column("s").to_pylist()[0].as_tuple().exponent == -2


# -- 5. views -------------------------------------------------------------------------------------------------
def test_05_views_and_materialized_views_load_when_named(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, amount numeric(8,2), updated int)")
    pg_db.execute("INSERT INTO t SELECT g, g * 1.25, g FROM generate_series(1, 10) g")
    pg_db.execute("CREATE VIEW big AS SELECT id, amount, updated FROM t WHERE amount > 5")
    pg_db.execute("CREATE MATERIALIZED VIEW totals AS SELECT count(*) AS n, sum(amount) AS total FROM t")
    plain = pg_project(tmp_path / "plain", pg_db.url)
    assert [r.table for r in plain.run().tables] == ["bronze.my_t"]  # '*' picks tables, never every view

    project = pg_project(tmp_path / "p", pg_db.url, """
        tables:
          big: {mode: incremental, cursor: [updated], merge_key: [id]}
          totals: {}
        """)
    result = project.run()
    assert result.ok, result
    assert {r.table: r.rows for r in result.tables} == {"bronze.my_t": 10, "bronze.my_big": 6, "bronze.my_totals": 1}
    # sum() of numeric(8,2) is an unconstrained numeric: stored as its exact text (docs/type-mapping.md)
    assert project.sql("select n, total from bronze.my_totals").to_pylist() == [{"n": 10, "total": "68.75"}]
    pg_db.execute("INSERT INTO t VALUES (11, 100, 11)")
    again = {r.table: (r.status, r.rows) for r in project.run(select=["my_big"]).tables}
    assert again == {"bronze.my_big": ("success", 1)}
    assert project.sql("select count(*) n from bronze.my_big").to_pylist() == [{"n": 7}]

    cdc = pg_project(tmp_path / "cdc", pg_db.url, "tables:\n  big: {mode: cdc}\n")
    with pytest.raises(ConfigError, match="is a view, which has no change log"):
        cdc.run()


def test_05_the_column_collision_advice_works(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute('CREATE TABLE t (id int PRIMARY KEY, "A b" int, "a_b" int)')
    pg_db.execute("INSERT INTO t VALUES (1, 2, 3)")
    project = pg_project(tmp_path / "p", pg_db.url)
    failed = project.run().tables[0]
    assert failed.status == "failed" and "create a view that renames it" in (failed.error or "")
    pg_db.execute('CREATE VIEW t_renamed AS SELECT id, "A b" AS a_b_spaced, a_b FROM t')
    fixed = pg_project(tmp_path / "q", pg_db.url, "exclude: [t]\ntables:\n  t_renamed: {}\n")
    assert fixed.run().ok
    assert fixed.sql("select a_b_spaced, a_b from bronze.my_t_renamed").to_pylist() == [{"a_b_spaced": 2, "a_b": 3}]


# -- 6. empty selection ---------------------------------------------------------------------------------------
def test_06_a_selection_matching_nothing_fails_with_close_names(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY)")
    project = pg_project(tmp_path / "p", pg_db.url)
    run = cli(project.path, "run", "-s", "custmers*")
    assert run.returncode == 1
    assert "matches no table" in run.stderr and "my_customers" in run.stderr and "--allow-empty" in run.stderr
    allowed = cli(project.path, "run", "-s", "nomatch*", "--allow-empty", "--output", "json")
    assert allowed.returncode == 0 and json.loads(allowed.stdout)["tables"] == []


# -- 7. cursor change ----------------------------------------------------------------------------------------
def test_07_a_changed_cursor_reloads_in_full_and_says_so(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, updated int)")
    pg_db.execute("INSERT INTO t SELECT g, 100 - g FROM generate_series(1, 5) g")
    first = pg_project(tmp_path / "p", pg_db.url, "tables:\n  t: {mode: incremental, cursor: [id]}\n")
    assert first.run().tables[0].reason is None
    changed = pg_project(tmp_path / "p", pg_db.url, "tables:\n  t: {mode: incremental, cursor: [updated]}\n")
    result = changed.run()
    assert result.ok and result.tables[0].rows == 5
    assert "cursor changed from [id] to [updated]" in (result.tables[0].reason or "")
    runs = cli(changed.path, "runs", "--output", "json")
    assert "cursor changed from [id] to [updated]" in json.loads(runs.stdout)[0]["tables"][0]["reason"]
    assert changed.sql("select count(*) n from bronze.my_t").to_pylist() == [{"n": 5}]


# -- 8. interrupted run --------------------------------------------------------------------------------------
def test_08_a_sigint_after_a_commit_is_in_the_run_history(pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY)")
    pg_db.execute("INSERT INTO a SELECT generate_series(1, 3); INSERT INTO b SELECT generate_series(1, 4)")
    project = pg_project(tmp_path / "p", pg_db.url)
    run = cli(project.path, "run", env={"LAKEFORGE_TEST_KILL_AT": "committed:bronze.my_a",
                                        "LAKEFORGE_TEST_KILL_SIGNAL": "INT"})
    assert run.returncode != 0
    assert project.lake.exists("bronze.my_a") and not project.lake.exists("bronze.my_b")
    history = project.runs()[0]
    assert history["run"]["status"] == "interrupted" and "SIGINT" in history["run"]["error"]
    assert [(t["table"], t["status"], t["delta_version"]) for t in history["tables"]] == [("bronze.my_a", "success", 0)]
    assert project.run().ok  # the next run loads everything
    assert project.sql("select count(*) n from bronze.my_b").to_pylist() == [{"n": 4}]


# -- 9. long values in messages -------------------------------------------------------------------------------
def test_09_errors_quote_long_values_shortened(tmp_path: Path, pg_db: Any) -> None:
    project = pg_project(tmp_path / "p", pg_db.url)
    sql = cli(project.path, "sql", "select cast(repeat('x', 5000000) as int)")
    assert sql.returncode == 1
    assert len(sql.stderr) < 2_000, len(sql.stderr)
    assert "5,000,000 characters" in sql.stderr and "xxxxxxxxxx" in sql.stderr


def test_09_run_history_errors_are_shortened(tmp_path: Path) -> None:
    from lakeforge.lake.delta import DeltaLake
    from lakeforge.load.table import TableResult
    from lakeforge.state.history import Event, RunHistory

    lake = DeltaLake(tmp_path / "lake")
    huge = "value '" + "z" * 1_000_000 + "' is not valid"
    result = TableResult("src", "public.t", "bronze.t", "full", "failed", error=huge)
    RunHistory(lake).record(Event.of(result, "r1", dt.datetime.now(dt.UTC), dt.datetime.now(dt.UTC)))
    error = RunHistory(lake).latest()[0]["tables"][0]["error"]
    assert len(error) < 300 and "1,000,000 characters" in error and error.endswith("is not valid")


# -- 11. inet ------------------------------------------------------------------------------------------------
def test_11_inet_is_stored_in_its_own_output_form(pg_db: Any, tmp_path: Path) -> None:
    literals = ["::1", "::1/128", "::1/64", "2001:db8::/48", "10.1.2.3", "10.1.2.3/32", "10.0.0.0/8",
                "192.168.0.1/24"]
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, ip inet, ips inet[], net cidr)")
    for i, literal in enumerate(literals):
        pg_db.execute("INSERT INTO t VALUES (%s, %s, ARRAY[%s::inet, NULL], %s::inet::cidr)",
                      (i, literal, literal, literal))
    pg_db.execute("INSERT INTO t VALUES (99, NULL, NULL, NULL)")
    shown = {r[0]: (r[1], r[2]) for r in pg_db.execute("SELECT id, ip::varchar, net::varchar FROM t")}
    psql_form = {r[0]: r[1] for r in pg_db.execute("SELECT id, format('%s', ip) FROM t WHERE ip IS NOT NULL")}
    project = pg_project(tmp_path / "p", pg_db.url)
    assert project.run().ok
    lake = {r["id"]: r for r in project.lake.read("bronze.my_t").to_pylist()}
    for i in range(len(literals)):
        assert lake[i]["ip"] == psql_form[i], literals[i]
        assert lake[i]["ips"] == [psql_form[i], None]
        assert lake[i]["net"] == shown[i][1]
    assert [lake[i]["ip"] for i in range(len(literals))] == [
        "::1", "::1", "::1/64", "2001:db8::/48", "10.1.2.3", "10.1.2.3", "10.0.0.0/8", "192.168.0.1/24"]
    assert lake[99] | {"_lf_source": None, "_lf_extracted_at": None, "_lf_run_id": None} == {
        "id": 99, "ip": None, "ips": None, "net": None, "_lf_source": None, "_lf_extracted_at": None,
        "_lf_run_id": None}


# -- 12. metadata columns last -------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_12_columns_added_by_drift_come_before_the_metadata(mode: str, pg_db: Any, tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, a text)")
    pg_db.execute("INSERT INTO t VALUES (1, 'one')")
    extra = "tables:\n  t: {mode: incremental, cursor: [id]}\n" if mode == "incremental" else ""
    project = pg_project(tmp_path / "p", pg_db.url, extra)
    assert project.run().ok
    pg_db.execute("ALTER TABLE t ADD COLUMN b numeric(6,3)")
    pg_db.execute("INSERT INTO t VALUES (2, 'two', 1.5)")
    result = project.run()
    assert result.ok, result
    expected = ["id", "a", "b", "_lf_source", "_lf_extracted_at", "_lf_run_id"]
    assert project.lake.schema("bronze.my_t").names == expected
    assert project.sql("select * from bronze.my_t").column_names == expected
    rows = project.sql("select id, a, b from bronze.my_t order by id").to_pylist()
    assert [(r["id"], r["a"], None if r["b"] is None else str(r["b"])) for r in rows] == [
        (1, "one", None), (2, "two", "1.500")]
    if mode == "incremental":
        assert "before the _lf_ metadata columns" in (result.tables[0].reason or "")


# -- 10. native panic output ---------------------------------------------------------------------------------
def test_10_a_driver_panic_stays_out_of_the_terminal(tmp_path: Path) -> None:
    import pymysql

    from tests.servers import mariadb_server

    with mariadb_server() as server:  # a private server: max_allowed_packet is global
        conn = pymysql.connect(host="127.0.0.1", port=server.port, user="root", autocommit=True)
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE x")
            cur.execute("CREATE TABLE x.big (id int PRIMARY KEY, b longblob)")
            cur.execute("INSERT INTO x.big VALUES (1, REPEAT('a', 3000000))")
            cur.execute("SET GLOBAL max_allowed_packet = 1048576")
        conn.close()
        path = write_project(tmp_path / "p", f"""
            sources:
              my:
                type: mysql
                url: mysql://root@127.0.0.1:{server.port}/x
            """)
        run = cli(path, "run", env={"RUST_BACKTRACE": "1"})
        debug = cli(path, "run", "--debug", env={"RUST_BACKTRACE": "1"})
    assert run.returncode == 1
    assert "max_allowed_packet" in run.stdout and "SET GLOBAL max_allowed_packet" in run.stdout
    assert "panicked" not in run.stderr and "arrow_batch_iter" not in run.stderr and "backtrace" not in run.stderr
    assert "panicked at" in debug.stderr and "lakeforge.native" in debug.stderr  # kept for --debug
