"""Exactly once under SIGKILL: a real ``lakeforge run`` process kills itself at a point named by
``LAKEFORGE_TEST_KILL_AT`` (see ``lakeforge.load.killpoint``); the next run, without the hook, must leave the
lake with exactly the source's rows, row for row, for a full and an incremental table, on PostgreSQL and
MariaDB, in a Delta and an Iceberg lake (``lake_format``).

Points: during extraction, during the write, with Parquet files on disk but no commit, during the Iceberg
catalog commit (all data files written), and between tables (after one table's commit, before the next table
and before the run history records it).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import write_project

LAKEFORGE = str(Path(sys.executable).parent / "lakeforge")
T0 = dt.datetime(2024, 1, 1)
FULL, INC = "bronze.src_a_full", "bronze.src_b_inc"
COLUMNS = "id, payload, amount, updated_at"


def lakeforge(project: Path, *args: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "LAKEFORGE_TEST_KILL_AT"}
    if kill_at:
        env["LAKEFORGE_TEST_KILL_AT"] = kill_at
    return subprocess.run([LAKEFORGE, *args, "--project", str(project)], env=env, capture_output=True,
                          text=True, timeout=120)


def source_rows(db: Any, table: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in db.execute(f"SELECT {COLUMNS} FROM {table}"))


def lake_rows(p: Project, name: str) -> list[tuple[Any, ...]]:
    return sorted(tuple(r.values()) for r in p.lake.read(name).select(COLUMNS.split(", ")).to_pylist())


def rows_sql(db: Any, first: int, last: int) -> str:
    """SELECT of generated rows ``first..last`` in this database's dialect."""
    if db.kind == "postgres":
        return f"SELECT g, md5(g::text) || repeat('x', 20), g * 0.01, %s FROM generate_series({first}, {last}) g"
    return f"SELECT seq, concat(md5(seq), repeat('x', 20)), seq * 0.01, %s FROM seq_{first}_to_{last}"


def mutate(db: Any, step: int) -> None:
    """Inserts and updates in both tables, deletes in the full one; cursors only move forward."""
    when = T0 + dt.timedelta(hours=step)
    first = 20_000 + step * 500
    for table in ("a_full", "b_inc"):
        db.execute(f"INSERT INTO {table} {rows_sql(db, first, first + 499)}", (when,))
        db.execute(f"UPDATE {table} SET payload = 'changed {step}', amount = amount + 1, updated_at = %s "
                   f"WHERE id %% 97 = {step}", (when,))
    db.execute(f"DELETE FROM a_full WHERE id % 101 = {step}")


def parquet_files(p: Project, name: str) -> set[str]:
    return {str(f) for f in Path(p.lake.uri(name)).rglob("*.parquet")}


def committed_files(p: Project, name: str) -> set[str]:
    return {str(Path(f.removeprefix("file://"))) for f in p.lake.dataset(name).files}


def version(p: Project, name: str) -> int | None:
    return p.lake.version(name) if p.lake.exists(name) else None


@pytest.fixture(params=["postgres", "mysql"])
def setup(request: pytest.FixtureRequest, project_dir: Path, lake_format: str) -> tuple[Any, Project]:
    db = request.getfixturevalue("pg_db" if request.param == "postgres" else "my_db")
    db.kind = request.param
    ts = "timestamp" if db.kind == "postgres" else "datetime(6)"
    for table in ("a_full", "b_inc"):
        db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, payload text, amount numeric(12,2), "
                   f"updated_at {ts} NOT NULL)")
        db.execute(f"INSERT INTO {table} {rows_sql(db, 1, 20000)}", (T0,))
    write_project(project_dir, f"""
    lake: {{path: ./lake, target_file_size: 65536}}
    run: {{batch_size: 1000, retry_backoff: 0}}
    sources:
      src:
        type: {db.kind}
        url: {db.url}
        include: []
        tables:
          a_full: {{mode: full}}
          b_inc: {{mode: incremental, cursor: [updated_at, id]}}
    """)
    return db, Project(project_dir)


def killed(p: Project, point: str) -> str:
    """Run with the hook; assert the process died by SIGKILL; return the killed run's id."""
    proc = lakeforge(p.path, "run", kill_at=point)
    assert proc.returncode == -9, (point, proc.returncode, proc.stderr[-2000:])
    newest = p.runs(limit=1)[0]["run"]
    assert newest["status"] == "interrupted"
    return str(newest["run_id"])


def recover_and_compare(db: Any, p: Project) -> dict[str, str]:
    result = p.run()
    assert result.ok, result
    for table, name in (("a_full", FULL), ("b_inc", INC)):
        assert lake_rows(p, name) == source_rows(db, table), f"{name} differs from its source"
    return {r.table: r.status for r in result.tables}


@pytest.mark.slow
def test_sigkill_at_every_point_then_rerun_matches_source(setup: tuple[Any, Project]) -> None:
    db, p = setup

    # first load ever: a_full commits, b_inc is killed with its Parquet files written but not committed
    killed(p, f"files:{INC}")
    assert version(p, FULL) is not None
    assert parquet_files(p, INC) and version(p, INC) is None  # files on disk, no table
    recover_and_compare(db, p)
    assert len(lake_rows(p, INC)) == 20_000

    # full table: during extraction, during the write, files written but not committed, (Iceberg: during the
    # catalog commit, every data file written), after its commit
    iceberg = p.lake.FORMAT == "iceberg"
    for step, point in enumerate(("extract", "write", "files", *(["commit"] if iceberg else []), "committed"), start=1):
        mutate(db, step)
        before = version(p, FULL), version(p, INC)
        run_id = killed(p, f"{point}:{FULL}")
        if point == "committed":  # killed between tables: a_full has the new snapshot, b_inc was not started
            assert version(p, FULL) > before[0] and lake_rows(p, FULL) == source_rows(db, "a_full")
            cp = p.lake.checkpoint(FULL)
            assert cp is not None and cp.run_id == run_id
        else:
            assert version(p, FULL) == before[0]
        assert version(p, INC) == before[1]
        if point == "files":
            assert parquet_files(p, FULL) - committed_files(p, FULL), "expected uncommitted Parquet files"
        recover_and_compare(db, p)

    # incremental table (MERGE path): during extraction, during the merge, (Iceberg: the commit), after the commit
    for step, point in enumerate(("extract", "write", *(["commit"] if iceberg else []), "committed"), start=6):
        mutate(db, step)
        before = version(p, INC)
        run_id = killed(p, f"{point}:{INC}")
        assert (version(p, INC) > before) if point == "committed" else (version(p, INC) == before)
        statuses = recover_and_compare(db, p)
        if point == "committed":
            cp = p.lake.checkpoint(INC)
            assert cp is not None and cp.run_id == run_id
            assert statuses[INC] == "unchanged"  # the killed run's commit holds the cursor: nothing re-applied

    # the CLI shows the killed runs as interrupted, and the recoveries as success
    proc = lakeforge(p.path, "runs", "--output", "json", "--limit", "20")
    assert proc.returncode == 0, proc.stderr
    statuses = [entry["run"]["status"] for entry in json.loads(proc.stdout)]
    kills = 10 if iceberg else 8
    assert statuses.count("interrupted") == kills and statuses.count("success") == kills
