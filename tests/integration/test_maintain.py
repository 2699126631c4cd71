"""Maintenance on both formats: many small commits (what CDC micro-batches make) compacted, the newest
version's rows identical before and after, older versions readable while retained, unreferenced files
removed past the retention, automatic maintenance every N commits, the CLI with ``--output json``."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.usefixtures("lake_format")
T0 = dt.datetime(2024, 1, 1)
NAME = "bronze.src_t"


def project(folder: Path, db: PgDatabase, maintenance: str = "{}") -> Project:
    return Project(write_project(folder, f"""
    lake: {{path: ./lake, maintenance: {maintenance}}}
    run: {{retry_backoff: 0}}
    sources:
      src:
        type: postgres
        url: {db.url}
        include: []
        tables:
          t: {{mode: incremental, cursor: [updated_at, id]}}
    """))


def small_commits(db: PgDatabase, p: Project, count: int) -> None:
    db.execute("CREATE TABLE t (id int PRIMARY KEY, v text, amount numeric(10,2), updated_at timestamp NOT NULL)")
    db.execute("INSERT INTO t SELECT g, 'v' || g, g * 0.5, %s FROM generate_series(1, 200) g", (T0,))
    assert p.run().ok
    for step in range(1, count):
        when = T0 + dt.timedelta(minutes=step)
        db.execute("INSERT INTO t VALUES (%s, 'new', 1.25, %s)", (1000 + step, when))  # a new small file each
        assert p.run().ok


def rows(p: Project, version: int | None = None) -> list[tuple[Any, ...]]:
    data = p.lake.read(NAME, version).select(["id", "v", "amount", "updated_at"]).to_pylist()
    return sorted(tuple(r.values()) for r in data)


def files_on_disk(p: Project) -> set[str]:
    return {str(f) for f in Path(p.lake.uri(NAME)).rglob("*.parquet")}


def test_compaction_keeps_rows_and_time_travel(pg_db: PgDatabase, project_dir: Path) -> None:
    p = project(project_dir, pg_db)
    small_commits(pg_db, p, 12)
    source = sorted(pg_db.execute("SELECT id, v, amount, updated_at FROM t"))
    before_rows, before_version = rows(p), p.lake.version(NAME)
    assert before_rows == source
    checkpoint = p.lake.checkpoint(NAME)

    [result] = p.maintain(["src_t"])
    assert result.table == NAME and result.before.files >= 12 and result.after.files == 1
    assert result.after.bytes > 0 and result.removed_files == 0  # everything is younger than 7 days
    assert rows(p) == before_rows  # a reader of the newest version sees the same rows
    assert rows(p, before_version) == before_rows  # the pre-maintenance version is still readable
    assert p.lake.checkpoint(NAME) == checkpoint  # the position survives (carried into the compaction commit)
    assert p.run().tables[0].status == "unchanged"  # and the next run knows it has nothing to read


def test_retention_removes_unreferenced_files(pg_db: PgDatabase, project_dir: Path) -> None:
    p = project(project_dir, pg_db, "{retain: 0s}")
    small_commits(pg_db, p, 6)
    before_rows = rows(p)
    assert len(files_on_disk(p)) >= 6
    results = {r.table: r for r in p.maintain()}
    result = results[NAME]
    assert result.removed_files >= 6
    assert rows(p) == before_rows
    live = {Path(f).name for f in p.lake.dataset(NAME).files}
    data_files = {Path(f).name for f in files_on_disk(p) if "_delta_log" not in f and "/metadata/" not in f}
    assert data_files == live and len(live) == 1  # only the compacted file is left


def test_maintain_covers_lakeforge_own_tables(pg_db: PgDatabase, project_dir: Path) -> None:
    """The run history (a small file per event) is maintained too, after the user tables; no event is lost."""
    p = project(project_dir, pg_db)
    small_commits(pg_db, p, 4)  # 4 runs: 12 history events in 8 commits (the table's with the run's final event)
    before = [(r["run"]["run_id"], r["run"]["status"]) for r in p.runs(limit=10)]
    assert len(before) == 4
    results = p.maintain()
    assert [r.table for r in results] == [NAME, "_lakeforge.runs"]
    runs = results[1]
    assert runs.before.files == 8 and runs.after.files == 1 and runs.actions
    assert [(r["run"]["run_id"], r["run"]["status"]) for r in p.runs(limit=10)] == before
    assert len(p.lake.read("_lakeforge.runs")) == 12
    assert [r.table for r in p.maintain(["src_*"])] == [NAME]  # a glob picks tables by name as before


def test_automatic_maintenance_every_n_commits(pg_db: PgDatabase, project_dir: Path) -> None:
    p = project(project_dir, pg_db, "{compact_every: 4}")
    small_commits(pg_db, p, 8)  # checkpoint sequences 1..8: maintained after the 4th and the 8th
    assert len(p.lake.dataset(NAME).files) == 1
    assert rows(p) == sorted(pg_db.execute("SELECT id, v, amount, updated_at FROM t"))


def test_cli_maintain_json(pg_db: PgDatabase, project_dir: Path) -> None:
    p = project(project_dir, pg_db)
    small_commits(pg_db, p, 3)
    done = subprocess.run([str(Path(sys.executable).parent / "lakeforge"), "maintain", "src_*", "--project",
                           str(project_dir), "--output", "json"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    [report] = json.loads(done.stdout)
    assert report["table"] == NAME and report["before"]["files"] >= 3 and report["after"]["files"] == 1
    assert rows(p) == sorted(pg_db.execute("SELECT id, v, amount, updated_at FROM t"))


@pytest.mark.slow
def test_sigkill_during_maintenance_then_rerun(pg_db: PgDatabase, project_dir: Path) -> None:
    import os

    p = project(project_dir, pg_db, "{retain: 0s, target_file_mb: 1}")
    small_commits(pg_db, p, 8)
    before = rows(p)
    exe = str(Path(sys.executable).parent / "lakeforge")
    env = {**os.environ, "LAKEFORGE_TEST_KILL_AT": f"maintain:{NAME}"}
    killed = subprocess.run([exe, "maintain", "--project", str(project_dir)], env=env, capture_output=True,
                            text=True, timeout=120)
    assert killed.returncode == -9, killed.stderr
    assert rows(p) == before  # a killed maintenance changes no row
    again = subprocess.run([exe, "maintain", "--project", str(project_dir), "--output", "json"],
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert rows(p) == before and len(p.lake.dataset(NAME).files) == 1
    data_files = {Path(f).name for f in files_on_disk(p) if "_delta_log" not in f and "/metadata/" not in f}
    assert data_files == {Path(f).name for f in p.lake.dataset(NAME).files}  # files of the killed rewrite are gone
    assert p.run().tables[0].status == "unchanged"


@pytest.mark.slow
def test_200_micro_batches_compacted_while_a_reader_reads(lake_format: str, tmp_path: Path) -> None:
    """A CDC-shaped table (200 MERGE commits with updates and deletes, and its append-only change log)
    compacted while another thread keeps reading the newest version: every read sees exactly the rows of the
    last commit, before and after. Iceberg: 60 micro-batches, because each PyIceberg commit deep-copies the
    table metadata (every snapshot) several times, so commits slow down as snapshots accumulate (1.6 s per
    MERGE at 120 snapshots here); see docs/lake.md."""
    import threading

    import pyarrow as pa

    from lakeforge.config.models import LakeConfig
    from lakeforge.lake import open_lake
    from lakeforge.lake.checkpoint import Checkpoint

    lake = open_lake(LakeConfig(path="lh", format=lake_format), tmp_path)
    schema = pa.schema([("id", pa.int64()), ("v", pa.int64()), ("gone", pa.bool_())])
    expected: dict[int, int] = {}
    steps = 200 if lake_format == "delta" else 60
    for step in range(steps):
        ids = list(dict.fromkeys([step, step // 2, step // 3]))  # a new key, updates of older ones (one per key)
        gone = [i == len(ids) - 1 and step % 5 == 0 and step > 0 for i in range(len(ids))]
        batch = pa.record_batch([pa.array(ids, pa.int64()), pa.array([step] * len(ids), pa.int64()),
                                 pa.array(gone)], schema=schema)
        checkpoint = Checkpoint("r", "cdc", step + 1)
        lake.write("bronze.cdc_changes", [batch], schema=schema, mode="append", checkpoint=checkpoint)
        if step == 0:
            lake.write("bronze.cdc", [batch], schema=schema, mode="append", checkpoint=checkpoint)
        else:
            lake.merge("bronze.cdc", [batch], schema=schema, keys=["id"], delete_column="gone", checkpoint=checkpoint)
        for key, flag in zip(ids, gone, strict=True):
            if flag:
                expected.pop(key, None)
            else:
                expected[key] = step
    final = sorted(expected.items())

    def read(name: str = "bronze.cdc") -> list[tuple[int, int]]:
        return sorted((r["id"], r["v"]) for r in lake.read(name).select(["id", "v"]).to_pylist())

    assert read() == final
    changes = read("bronze.cdc_changes")
    assert len(changes) == sum(len({s, s // 2, s // 3}) for s in range(steps))
    seen: list[list[tuple[int, int]]] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(read())
            assert read("bronze.cdc_changes") == changes

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        log = lake.maintain("bronze.cdc_changes", retain_seconds=7 * 86400, target_file_size=128 * 2**20)
        state = lake.maintain("bronze.cdc", retain_seconds=7 * 86400, target_file_size=128 * 2**20)
    finally:
        stop.set()
        thread.join()
    assert log.before.files == steps and log.after.files == 1 and state.after.files == 1
    assert read("bronze.cdc_changes") == changes
    assert seen and all(s == final for s in seen)
    assert read() == final and lake.checkpoint("bronze.cdc") == Checkpoint("r", "cdc", steps)
    lake.close()
