"""Publish modes and failures against the real servers: upsert applies updates, inserts and deletes in place;
a publish SIGKILLed half-way (and, on MariaDB, between the swap and the record) then run again leaves exactly
the lake's rows; readers during a replace see the old table or the new one, never a mix; an unreachable target
or a missing privilege is one line without the password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.conftest import MY_HOST, MY_PORT, PG_ADMIN, MyDatabase, PgDatabase
from tests.integration.publish_helpers import write_lake, write_project

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")


def rows_table(first: int, last: int, tag: str) -> pa.Table:
    ids = list(range(first, last + 1))
    return pa.table({
        "id": pa.array(ids, pa.int64()),
        "label": pa.array([f"{tag}-{i}" for i in ids]),
        "amount": pa.array([Decimal(i * 100 + 1) / 100 for i in ids], pa.decimal128(18, 2)),
    })


def keyed(project: Project) -> Project:
    """The project with ``gold.items`` keyed by id (publish options)."""
    text = (project.path / "lakeforge.yml").read_text()
    text = text.replace("gold.types: {primary_key: [id], json_columns: [c_json]}", "gold.items: {primary_key: [id]}")
    (project.path / "lakeforge.yml").write_text(text)
    return Project(project.path)


def target_rows(db: Any) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in db.execute("SELECT id, label, amount FROM items"))


def lake_rows(project: Project) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in project.lake.read("gold.items").to_pylist())


def lakeforge(project: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LAKEFORGE_TEST_KILL_AT"}
    if kill_at:
        env["LAKEFORGE_TEST_KILL_AT"] = kill_at
    return subprocess.run([LAKEFORGE, "publish", *args, "--project", str(project)], env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("mode", ["upsert", "replace"])
def test_changes_reach_the_target_exactly(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase, mode: str) -> None:
    project = keyed(write_project(tmp_path / "p", pg_db.url, my_db.url, mode=mode))
    write_lake(project, "gold.items", rows_table(1, 1000, "a"))
    assert {r.status for r in project.publish()} == {"published"}
    pg_oid = pg_db.execute("SELECT 'items'::regclass::oid")
    changed = pa.concat_tables([rows_table(1, 400, "a"), rows_table(401, 500, "b"), rows_table(1001, 1200, "c")])
    write_lake(project, "gold.items", changed)  # 501..1000 deleted, 401..500 updated, 1001..1200 inserted
    results = project.publish()
    assert {(r.status, r.mode, r.rows) for r in results} == {("published", mode, 700)}
    for db in (pg_db, my_db):
        assert target_rows(db) == lake_rows(project)
        assert db.execute("SELECT lake_version, mode, row_count FROM _lakeforge_published") == [(1, mode, 700)]
    same_table = pg_db.execute("SELECT 'items'::regclass::oid") == pg_oid
    assert same_table == (mode == "upsert")  # upsert merges in place; replace swaps a new table in


@pytest.mark.parametrize("mode", ["replace", "upsert"])
def test_sigkill_mid_publish_then_rerun_gives_the_lakes_rows(tmp_path: Path, pg_db: PgDatabase,
                                                              my_db: MyDatabase, mode: str) -> None:
    project = keyed(write_project(tmp_path / "p", pg_db.url, my_db.url, mode=mode))
    write_lake(project, "gold.items", rows_table(1, 150_000, "a"))
    assert lakeforge(project.path).returncode == 0
    before = target_rows(pg_db)
    changed = pa.concat_tables([rows_table(1, 100_000, "a"), rows_table(100_001, 200_000, "b")])
    write_lake(project, "gold.items", changed)
    for target, db in (("pg", pg_db), ("my", my_db)):
        killed = lakeforge(project.path, target, kill_at="publish:gold.items")
        assert killed.returncode == -9, killed.stderr
        assert target_rows(db) == before  # the old table, untouched
        assert db.execute("SELECT lake_version FROM _lakeforge_published") == [(0,)]
    rerun = lakeforge(project.path, "--output", "json")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert {(r["status"], r["version"], r["rows"]) for r in json.loads(rerun.stdout)} == {("published", 1, 200_000)}
    for db in (pg_db, my_db):
        assert target_rows(db) == lake_rows(project)
    assert my_db.execute("SHOW TABLES LIKE 'items\\_\\_lf\\_%'") == []


def test_sigkill_between_mariadb_swap_and_record_republishes(tmp_path: Path, pg_db: PgDatabase,
                                                              my_db: MyDatabase) -> None:
    project = keyed(write_project(tmp_path / "p", pg_db.url, my_db.url))
    write_lake(project, "gold.items", rows_table(1, 100, "a"))
    assert lakeforge(project.path, "my").returncode == 0
    write_lake(project, "gold.items", rows_table(1, 50, "b"))
    killed = lakeforge(project.path, "my", kill_at="publish_swapped:gold.items")
    assert killed.returncode == -9
    assert target_rows(my_db) == lake_rows(project)  # swapped in, record not yet written
    assert my_db.execute("SELECT lake_version FROM _lakeforge_published") == [(0,)]
    rerun = lakeforge(project.path, "my", "--output", "json")
    assert [(r["status"], r["version"]) for r in json.loads(rerun.stdout)] == [("published", 1)]
    assert target_rows(my_db) == lake_rows(project)
    assert my_db.execute("SHOW TABLES LIKE 'items\\_\\_lf\\_%'") == []


def test_readers_during_replace_see_old_or_new_never_a_mix(tmp_path: Path, pg_db: PgDatabase,
                                                            my_db: MyDatabase) -> None:
    project = keyed(write_project(tmp_path / "p", pg_db.url, my_db.url))
    states = {}
    for tag, last in (("a", 60_000), ("b", 90_000)):
        table = rows_table(1, last, tag)
        states[tag] = (last, sum(i * 100 + 1 for i in range(1, last + 1)))
        write_lake(project, f"gold.items_{tag}", table)
    seen: dict[str, set[tuple[int, int]]] = {"pg": set(), "my": set()}
    stop = threading.Event()

    def read(name: str, db: Any) -> None:
        while not stop.is_set():
            count, total = db.execute("SELECT count(*), sum(amount) * 100 FROM items")[0]
            seen[name].add((int(count), int(total)))

    text = (project.path / "lakeforge.yml").read_text().replace("gold.items: {primary_key: [id]}",
                                                                 "gold.items_a: {name: items}")
    for tag in ("a", "b"):
        (project.path / "lakeforge.yml").write_text(text.replace("items_a", f"items_{tag}"))
        Project(project.path).publish(tables=[f"gold.items_{tag}"])
    readers = [threading.Thread(target=read, args=(n, db)) for n, db in (("pg", pg_db), ("my", my_db))]
    for t in readers:
        t.start()
    try:
        for round_ in range(4):
            tag = "ab"[round_ % 2]
            (project.path / "lakeforge.yml").write_text(text.replace("items_a", f"items_{tag}"))
            results = Project(project.path).publish(tables=[f"gold.items_{tag}"], force=True)
            assert {r.status for r in results} == {"published"}
    finally:
        stop.set()
        for t in readers:
            t.join()
    for name in ("pg", "my"):
        assert seen[name] <= set(states.values()), name
        assert len(seen[name]) == 2, name  # both states were observed, nothing else


def test_unreachable_target_is_one_line_without_the_password(tmp_path: Path) -> None:
    project = write_project(tmp_path / "p", "postgresql://lf:s3cret-pw@127.0.0.1:1/x",
                            "mysql://lf:s3cret-pw@127.0.0.1:1/x")
    write_lake(project, "gold.items", rows_table(1, 3, "a"))
    for target, name in (("pg", "PostgreSQL"), ("my", "MariaDB/MySQL")):
        result = lakeforge(project.path, target)
        assert result.returncode == 1
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and "s3cret-pw" not in result.stderr + result.stdout
        assert f"target '{target}': cannot publish to {name} lf@127.0.0.1:1/x" in lines[0]
        assert "refused" in lines[0].lower() or "can't connect" in lines[0].lower()


@pytest.fixture
def limited_users(pg_db: PgDatabase, my_db: MyDatabase) -> Any:
    import psycopg
    import pymysql

    role = pg_db.name + "_ro"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'ro-secret-1'")
    my = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
    with my.cursor() as cur:
        cur.execute(f"CREATE USER '{role}'@'%' IDENTIFIED BY 'ro-secret-1'")
        cur.execute(f"GRANT SELECT ON `{my_db.name}`.* TO '{role}'@'%'")
    yield role
    with my.cursor() as cur:
        cur.execute(f"DROP USER IF EXISTS '{role}'@'%'")
    my.close()
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{pg_db.name}" WITH (FORCE)')
        conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_missing_privilege_is_one_clear_line(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase,
                                             limited_users: str) -> None:
    role = limited_users
    pg_url = f"postgresql://{role}:ro-secret-1@127.0.0.1:5432/{pg_db.name}"
    my_url = f"mysql://{role}:ro-secret-1@{MY_HOST}:{MY_PORT}/{my_db.name}"
    project = write_project(tmp_path / "p", pg_url, my_url)
    write_lake(project, "gold.items", rows_table(1, 3, "a"))
    for target, expected in (("pg", "permission denied"), ("my", "denied")):
        result = lakeforge(project.path, target)
        assert result.returncode == 1
        assert len(result.stderr.strip().splitlines()) == 1
        assert expected in result.stderr.lower() and "ro-secret-1" not in result.stderr + result.stdout
        assert f"target '{target}'" in result.stderr


def fk_names(pg_db: PgDatabase, my_db: MyDatabase) -> tuple[set[str], set[str]]:
    pg = {r[0] for r in pg_db.execute("SELECT conname FROM pg_constraint WHERE contype = 'f'")}
    my = {r[0] for r in my_db.execute("SELECT CONSTRAINT_NAME FROM information_schema.REFERENTIAL_CONSTRAINTS "
                                      "WHERE CONSTRAINT_SCHEMA = DATABASE()")}
    return pg, my


@pytest.mark.parametrize("mode", ["replace", "upsert"])
def test_star_schema_foreign_keys_from_model_relationships(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase,
                                                           mode: str) -> None:
    project = write_project(tmp_path / "p", pg_db.url, my_db.url, mode=mode)
    models = project.path / "models" / "gold"
    models.mkdir(parents=True)
    (models / "dim.sql").write_text("/* lakeforge\nchecks:\n  - {type: unique, column: id}\n*/\nselect 1 as id\n")
    (models / "fact.sql").write_text(
        "/* lakeforge\nchecks:\n  - {type: unique, column: fact_id}\n"
        "  - {type: relationships, column: dim_id, to: gold.dim, field: id}\n*/\nselect 1 as fact_id, 1 as dim_id\n")
    dim = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": ["a", "b", "c"]})
    fact = pa.table({"fact_id": pa.array([10, 11, 12], pa.int64()), "dim_id": pa.array([1, 3, 3], pa.int64())})
    write_lake(project, "gold.dim", dim)
    write_lake(project, "gold.fact", fact)
    assert {r.status for r in project.publish()} == {"published"}
    assert fk_names(pg_db, my_db) == ({"lf_fk_fact_dim_id"}, {"lf_fk_fact_dim_id"})
    with pytest.raises(Exception, match="foreign key"):
        pg_db.execute("INSERT INTO fact VALUES (99, 42)")

    write_lake(project, "gold.dim", pa.table({"id": pa.array([1, 3], pa.int64()), "name": ["a", "C"]}))
    results = {(r.target, r.lake_table): r for r in project.publish()}
    assert results[("pg", "gold.dim")].status == "published" and results[("pg", "gold.fact")].status == "unchanged"
    assert fk_names(pg_db, my_db) == ({"lf_fk_fact_dim_id"}, {"lf_fk_fact_dim_id"})  # dropped, then made again
    assert sorted(my_db.execute("SELECT id, name FROM dim")) == [(1, "a"), (3, "C")]

    write_lake(project, "gold.dim", pa.table({"id": pa.array([1], pa.int64()), "name": ["a"]}))  # 3 is gone
    results = {(r.target, r.lake_table): r for r in project.publish()}
    assert {results[(t, "gold.dim")].status for t in ("pg", "my")} == {"published"}
    assert fk_names(pg_db, my_db) == (set(), set())
    for target in ("pg", "my"):
        assert any("dim_id: foreign key to dim.id not created" in n for n in results[(target, "gold.fact")].notes)
