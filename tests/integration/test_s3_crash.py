"""Crashes and concurrent writers on object storage (a real SeaweedFS on loopback), Delta and Iceberg.

- SIGKILL of a real ``lakeforge run`` mid-write (full and incremental table), during an Iceberg catalog commit
  (data files on S3, no snapshot), between a commit and the run history, and of ``lakeforge maintain`` while
  it compacts; each time the next run leaves the lake equal to the source, row for row. One representative
  case per point (PostgreSQL only; the local suite, ``test_crash.py``, covers every point and MariaDB).
- Concurrent writers on S3: two writers appending to one table at once, each retrying a transient commit
  conflict, lose no row and duplicate none; a writer holding a stale version commits after another writer
  (Delta: the cached run-history handle; Iceberg: a stale snapshot) and both writes are kept.
"""

from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from lakeforge.config.models import LakeConfig
from lakeforge.errors import LakeError
from lakeforge.lake import open_lake
from tests.conftest import PgDatabase, write_project
from tests.integration.test_crash import FULL, INC, T0, lake_rows, lakeforge, mutate, rows_sql, source_rows


@pytest.fixture
def s3(seaweed: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("S3_KEY", seaweed.key)
    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    return seaweed


def s3_lake(fmt: str, s3: Any, folder: Path, *, in_file: bool = False) -> dict[str, Any]:
    """``lake:`` on SeaweedFS; ``in_file``: credentials as ``${S3_KEY}`` references (lakeforge.yml expands them),
    else the values (a LakeConfig built in Python)."""
    key, secret = ("${S3_KEY}", "${S3_SECRET}") if in_file else (s3.key, s3.secret)
    config: dict[str, Any] = {
        "path": f"s3://{s3.bucket}/crash-{secrets.token_hex(4)}",
        "format": fmt,
        "storage": {"endpoint": s3.s3, "region": "us-east-1", "access_key_id": key, "secret_access_key": secret},
    }
    if fmt == "iceberg":
        config["catalog"] = {"type": "sql", "uri": f"sqlite:///{folder}/catalog.db"}
    return config


def yaml_map(value: dict[str, Any]) -> str:
    import json

    return json.dumps(value)  # JSON is YAML


def killed(p: Project, *args: str, point: str) -> None:
    proc = lakeforge(p.path, *args, kill_at=point)
    assert proc.returncode == -9, (point, proc.returncode, proc.stderr[-2000:])


def version(p: Project, name: str) -> int | None:
    return p.lake.version(name) if p.lake.exists(name) else None


def recover(db: PgDatabase, p: Project) -> dict[str, str]:
    result = p.run()
    assert result.ok, result
    for table, name in (("a_full", FULL), ("b_inc", INC)):
        assert lake_rows(p, name) == source_rows(db, table), f"{name} differs from its source"
    return {r.table: r.status for r in result.tables}


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_sigkill_on_s3_then_rerun_matches_source(fmt: str, s3: Any, pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.kind = "postgres"  # type: ignore[attr-defined]
    for table in ("a_full", "b_inc"):
        pg_db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, payload text, amount numeric(12,2), "
                      "updated_at timestamp NOT NULL)")
        pg_db.execute(f"INSERT INTO {table} {rows_sql(pg_db, 1, 20000)}", (T0,))
    lake = {**s3_lake(fmt, s3, tmp_path, in_file=True), "target_file_size": 65536}
    p = Project(write_project(tmp_path / "p", f"""
    lake: {yaml_map(lake)}
    run: {{batch_size: 1000, retry_backoff: 0}}
    sources:
      src:
        type: postgres
        url: {pg_db.url}
        include: []
        tables:
          a_full: {{mode: full}}
          b_inc: {{mode: incremental, cursor: [updated_at, id]}}
    """))
    assert p.lake.root.startswith("s3://")

    killed(p, "run", point=f"write:{INC}")  # first load: a_full commits, b_inc dies mid-write
    assert version(p, FULL) is not None and version(p, INC) is None
    recover(pg_db, p)

    points = [("write", FULL), ("write", INC), ("committed", INC)]
    if fmt == "iceberg":
        points[1:1] = [("commit", FULL), ("commit", INC)]
    for step, (point, name) in enumerate(points, start=1):
        mutate(pg_db, step)
        before = version(p, name)
        killed(p, "run", point=f"{point}:{name}")
        assert (version(p, name) > before) if point == "committed" else (version(p, name) == before), point
        statuses = recover(pg_db, p)
        if point == "committed":
            assert statuses[INC] == "unchanged"  # the killed run's commit holds the cursor

    # maintenance killed while it compacts (Iceberg: rewrite in flight; Delta: compacted, vacuum not run)
    killed(p, "maintain", point=f"maintain:{FULL}")
    assert lake_rows(p, FULL) == source_rows(pg_db, "a_full")
    (done,) = p.maintain([FULL])
    assert done.after.files <= done.before.files
    recover(pg_db, p)
    p.lake.close()


def batch(ids: range) -> pa.RecordBatch:
    return pa.record_batch([pa.array(list(ids), pa.int64()), pa.array([f"v{i}" for i in ids], pa.string())],
                           names=["id", "v"])


SCHEMA = batch(range(0)).schema


@pytest.mark.parametrize("fmt", ["delta", "iceberg"])
def test_concurrent_writers_on_s3_lose_nothing(fmt: str, s3: Any, tmp_path: Path) -> None:
    config = LakeConfig.model_validate(s3_lake(fmt, s3, tmp_path))
    first = open_lake(config, tmp_path)
    first.write("bronze.c", [batch(range(0, 10))], schema=SCHEMA, mode="overwrite")
    retried: list[int] = []
    failures: list[BaseException] = []

    def writer(offset: int) -> None:
        lake = open_lake(config, tmp_path)
        try:
            for i in range(6):
                ids = range(1000 * offset + 100 * i, 1000 * offset + 100 * i + 100)
                for _attempt in range(10):
                    try:
                        lake.write("bronze.c", [batch(ids)], schema=SCHEMA, mode="append")
                        break
                    except LakeError as exc:  # what load/table.py does: a transient conflict starts over
                        if not exc.transient:
                            raise
                        retried.append(offset)
                else:
                    raise AssertionError("a commit conflict was retried 10 times")
        except BaseException as exc:
            failures.append(exc)
        finally:
            lake.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures
    ids = first.read("bronze.c").column("id").to_pylist()
    expected = list(range(10)) + [1000 * o + k for o in (1, 2) for k in range(600)]
    assert sorted(ids) == sorted(expected)  # every row once: nothing lost, nothing doubled
    first.close()


def test_a_stale_delta_writer_on_s3_keeps_both_commits(s3: Any, tmp_path: Path) -> None:
    """Two processes' run histories (a run and ``maintain``, say): each lake keeps its history table handle open
    between events, so the second event of one is committed from a stale version; delta-rs resolves the append
    against the newer version, and every event is kept."""
    import datetime as dt

    from lakeforge.state.history import RUNS, Event, RunHistory

    config = LakeConfig.model_validate(s3_lake("delta", s3, tmp_path))
    a, b = open_lake(config, tmp_path), open_lake(config, tmp_path)
    now = dt.datetime.now(dt.UTC)
    RunHistory(a).record(Event("run-a", "*", "running", now))
    RunHistory(b).record(Event("run-b", "*", "running", now))
    history_a = RunHistory(a)
    history_a.record(Event("run-a", "*", "success", now))  # from a's handle, one version behind
    events = sorted((e["run_id"], e["status"]) for e in RunHistory(a).events())
    assert events == [("run-a", "running"), ("run-a", "success"), ("run-b", "running")]
    assert a.version(RUNS) == 2


def test_a_stale_iceberg_writer_on_s3_keeps_both_commits(s3: Any, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from lakeforge.lake.iceberg import IcebergLake

    config = LakeConfig.model_validate(s3_lake("iceberg", s3, tmp_path))
    lake = open_lake(config, tmp_path)
    assert isinstance(lake, IcebergLake)
    lake.write("bronze.t", [batch(range(3))], schema=SCHEMA, mode="overwrite")
    stale = lake.table("bronze.t")
    other = open_lake(config, tmp_path)
    other.write("bronze.t", [batch(range(10, 12))], schema=SCHEMA, mode="append")  # the other writer
    other.close()
    update = pa.record_batch([pa.array([1], pa.int64()), pa.array(["changed"], pa.string())], names=["id", "v"])
    with monkeypatch.context() as patch:
        patch.setattr(lake, "table", lambda name: stale)
        counts = lake.merge("bronze.t", [update], schema=SCHEMA, keys=["id"])
    assert counts["num_target_rows_updated"] == 1
    rows = sorted((r["id"], r["v"]) for r in lake.read("bronze.t").to_pylist())
    assert rows == [(0, "v0"), (1, "changed"), (2, "v2"), (10, "v10"), (11, "v11")]
    lake.close()
