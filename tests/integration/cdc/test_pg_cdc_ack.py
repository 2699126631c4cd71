"""PostgreSQL CDC: the slot is acknowledged only up to what the lake has committed, never beyond it, and a
non-follow run ends once it has read the log up to where it stood when the run started."""

from __future__ import annotations

import threading
import time
from pathlib import Path

from lakeforge import Project
from lakeforge.sources.postgres.pgoutput import lsn_value
from tests.integration.cdc.conftest import PgDb, cdc_project
from tests.integration.cdc.test_pg_cdc import _state


def _slot_lsn(db: PgDb) -> int:
    rows = db.execute("SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = 'lakeforge_src'")
    return lsn_value(rows[0][0])


def _slot_reaches(db: PgDb, want: int, seconds: float = 15.0) -> int:
    """The slot's confirmed position once it equals ``want`` (or the last seen after ``seconds``): the
    walsender applies the last status message a run sends as it closes on its own time, which on a loaded
    machine can be after the run has returned."""
    deadline = time.monotonic() + seconds
    while (seen := _slot_lsn(db)) != want and time.monotonic() < deadline:
        time.sleep(0.1)
    return seen


def _lake_lsn(project: Project, name: str) -> int:
    positions = []
    for table in (name, name + "_changes"):
        cp = project.lake.checkpoint(table)
        assert cp is not None and cp.mode == "cdc"
        positions.append(int(cp.position["value"]))
    return min(positions)


def test_slot_acknowledged_to_lake_position(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("CREATE TABLE other (id serial PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'v' || g FROM generate_series(1, 10) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    snapshot_at = _lake_lsn(project, "bronze.src_t")
    assert _slot_lsn(cdc_pg) <= snapshot_at  # created before the snapshot, nothing acknowledged yet

    # unrelated writes only: the run has nothing to commit and must not move the slot past the lake
    for _ in range(20):
        cdc_pg.execute("INSERT INTO other (v) SELECT 'x' FROM generate_series(1, 500)")
    assert project.run().ok
    assert _slot_lsn(cdc_pg) <= _lake_lsn(project, "bronze.src_t") == snapshot_at

    # changes of t between unrelated writes: acknowledged exactly at the last committed position
    for i in range(11, 16):
        cdc_pg.execute("INSERT INTO t VALUES (%s, 'new')", (i,))
        cdc_pg.execute("INSERT INTO other (v) SELECT 'y' FROM generate_series(1, 500)")
    assert project.run().ok
    lake_at = _lake_lsn(project, "bronze.src_t")
    assert lake_at > snapshot_at
    assert _slot_reaches(cdc_pg, lake_at) == lake_at

    # the next run finds its position (no "slot lost"), applies new changes, equals the source
    cdc_pg.execute("UPDATE t SET v = 'changed' WHERE id <= 3")
    cdc_pg.execute("INSERT INTO other (v) SELECT 'z' FROM generate_series(1, 500)")
    assert project.run().ok
    assert _state(project, "bronze.src_t") == [tuple(r) for r in cdc_pg.execute("SELECT id, v FROM t ORDER BY id")]
    assert _slot_reaches(cdc_pg, _lake_lsn(project, "bronze.src_t")) == _lake_lsn(project, "bronze.src_t")


def test_run_ends_on_a_busy_source(cdc_pg: PgDb, tmp_path: Path) -> None:
    """A writer never pauses; the run stops at the WAL position seen when streaming started."""
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    stop = threading.Event()

    def write() -> None:
        db = PgDb(cdc_pg.port, cdc_pg.name)
        i = 1000
        while not stop.is_set():
            db.execute("INSERT INTO t VALUES (%s, 'busy')", (i,))
            i += 1
            time.sleep(0.01)
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    results = []
    try:
        time.sleep(1)
        run = threading.Thread(target=lambda: results.append(project.run()))
        run.start()
        run.join(60)
        ended = not run.is_alive()
    finally:
        stop.set()
        writer.join()
    run.join()
    assert ended, "a run without follow did not end while the source kept writing"
    assert results[0].ok
    lake = _state(project, "bronze.src_t")
    assert len(lake) > 10
    # what the lake has is exactly the source's rows up to the committed position (a prefix of the inserts)
    source = [tuple(r) for r in cdc_pg.execute("SELECT id, v FROM t ORDER BY id")]
    assert lake == source[: len(lake)]
    assert project.run().ok
    assert _state(project, "bronze.src_t") == source


def test_follow_never_acknowledges_past_the_lake(cdc_pg: PgDb, tmp_path: Path) -> None:
    """A follow run sees changes of t, commits them, then only unrelated writes for longer than the status
    interval: the slot stays at the lake's position and the next run resumes (no "slot lost")."""
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("CREATE TABLE other (id serial PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t SELECT g, 'v' FROM generate_series(1, 10) g")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}))
    assert project.run().ok
    stop = threading.Event()
    results = []
    run = threading.Thread(target=lambda: results.append(project.run(follow=True, stop=stop)))
    run.start()
    try:
        time.sleep(2)
        cdc_pg.execute("INSERT INTO t VALUES (11, 'follow')")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(_state(project, "bronze.src_t")) < 11:
            time.sleep(0.5)
        for _ in range(30):  # past psycopg2's 5 s status interval and a few keepalives
            cdc_pg.execute("INSERT INTO other (v) SELECT 'x' FROM generate_series(1, 200)")
            time.sleep(0.4)
    finally:
        stop.set()
        run.join(60)
    assert results and results[0].ok
    assert _slot_reaches(cdc_pg, _lake_lsn(project, "bronze.src_t")) == _lake_lsn(project, "bronze.src_t")
    cdc_pg.execute("DELETE FROM t WHERE id = 1")
    result = project.run()
    assert result.ok, result
    assert _state(project, "bronze.src_t") == [tuple(r) for r in cdc_pg.execute("SELECT id, v FROM t ORDER BY id")]


def test_position_moves_past_other_tables_writes(cdc_pg: PgDb, tmp_path: Path) -> None:
    """Only other tables change: once the WAL read since the last position passes max_slot_lag_bytes / 16, the
    lake commits the new position (no rows) and the slot follows it, so the server can release that WAL."""
    import yaml

    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("CREATE TABLE other (id serial PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t VALUES (1, 'a')")
    path = cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}})
    config = yaml.safe_load((path / "lakeforge.yml").read_text())
    config["sources"]["src"]["max_slot_lag_bytes"] = 16 * 1024 * 1024  # move every 1 MiB
    (path / "lakeforge.yml").write_text(yaml.safe_dump(config))
    project = Project(path)
    assert project.run().ok
    snapshot_at = _lake_lsn(project, "bronze.src_t")
    for _ in range(10):
        cdc_pg.execute("INSERT INTO other (v) SELECT repeat('x', 200) FROM generate_series(1, 2000)")
    assert project.run().ok
    moved_to = _lake_lsn(project, "bronze.src_t")
    assert moved_to - snapshot_at >= 1024 * 1024
    assert _slot_reaches(cdc_pg, moved_to) == moved_to
    assert project.sql("select count(*) n from bronze.src_t_changes").to_pylist() == [{"n": 0}]
    cdc_pg.execute("UPDATE t SET v = 'b'")
    assert project.run().ok
    assert _state(project, "bronze.src_t") == [(1, "b")]
    assert _slot_reaches(cdc_pg, _lake_lsn(project, "bronze.src_t")) == _lake_lsn(project, "bronze.src_t")


def test_batch_that_changes_nothing_still_commits_its_position(cdc_pg: PgDb, tmp_path: Path) -> None:
    """A row inserted and deleted within one micro-batch leaves the current state as it was (the MERGE makes no
    commit): the position is committed anyway, and the slot never gets ahead of it."""
    cdc_pg.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    cdc_pg.execute("INSERT INTO t VALUES (1, 'a')")
    project = Project(cdc_project(tmp_path / "p", cdc_pg, {"t": {"mode": "cdc"}}, cdc_commit_seconds=600))
    assert project.run().ok
    snapshot_at = _lake_lsn(project, "bronze.src_t")
    cdc_pg.execute("INSERT INTO t VALUES (50, 'brief')")
    cdc_pg.execute("DELETE FROM t WHERE id = 50")
    assert project.run().ok
    state_at = int(project.lake.checkpoint("bronze.src_t").position["value"])  # type: ignore[union-attr]
    assert state_at > snapshot_at
    assert _slot_reaches(cdc_pg, state_at) == _lake_lsn(project, "bronze.src_t") == state_at
    cdc_pg.execute("UPDATE t SET v = 'b'")
    result = project.run()
    assert result.ok, result
    assert _state(project, "bronze.src_t") == [(1, "b")]
