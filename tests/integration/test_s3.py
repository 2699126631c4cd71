"""Lakes on object storage: a real SeaweedFS (S3 + Iceberg REST catalog) on loopback, Delta and Iceberg (SQL
catalog and REST catalog) lakes under ``s3://``, full and incremental loads asserted row for row, tables
listed from the storage or the catalog, the run lock as a conditional-put object, and bad storage input
reported in one line without the secret."""

from __future__ import annotations

import datetime as dt
import decimal
import secrets
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from lakeforge.errors import LakeError, LakeforgeError, RunInProgress
from tests.conftest import PgDatabase, write_project

T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
LAKES = ["delta", "iceberg-sql", "iceberg-rest"]


def lake_yaml(kind: str, seaweed: Any, folder: Path, *, endpoint: str | None = None, secret: str | None = None,
              bucket: str | None = None) -> str:
    prefix = secrets.token_hex(4)
    storage = (f"storage: {{endpoint: '{endpoint or seaweed.s3}', region: us-east-1, access_key_id: '${{S3_KEY}}', "
               f"secret_access_key: '{secret or '${S3_SECRET}'}'}}")
    path = f"path: s3://{bucket or seaweed.bucket}/{prefix}"
    if kind == "delta":
        return f"lake: {{{path}, {storage}}}"
    if kind == "iceberg-sql":
        return f"lake: {{{path}, format: iceberg, {storage}, catalog: {{type: sql, uri: 'sqlite:///{folder}/c.db'}}}}"
    # the REST catalog is shared by every test of the session: each lake keeps to namespaces of its own
    return (f"lake: {{{path}, format: iceberg, {storage}, catalog: {{type: rest, uri: '{seaweed.iceberg}', "
            f"credential: '${{S3_KEY}}:${{S3_SECRET}}', namespace_prefix: t{prefix}_}}}}")


@pytest.fixture
def s3_env(seaweed: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("S3_KEY", seaweed.key)
    monkeypatch.setenv("S3_SECRET", seaweed.secret)
    return seaweed


def make_project(folder: Path, db: PgDatabase, lake: str) -> Project:
    return Project(write_project(folder, f"""
    {lake}
    run: {{retry_backoff: 0, retries: 0}}
    sources:
      src:
        type: postgres
        url: {db.url}
        include: []
        tables:
          full_t: {{mode: full}}
          inc_t: {{mode: incremental, cursor: [updated_at, id]}}
    """))


def source(db: PgDatabase, table: str) -> list[tuple[Any, ...]]:
    return sorted(db.execute(f"SELECT id, name, amount, updated_at FROM {table}"))


def lake_rows(p: Project, name: str) -> list[tuple[Any, ...]]:
    data = p.lake.read(name).select(["id", "name", "amount", "updated_at"]).to_pylist()
    return sorted(tuple(r.values()) for r in data)


@pytest.mark.parametrize("kind", LAKES)
def test_full_and_incremental_on_s3(kind: str, s3_env: Any, pg_db: PgDatabase, tmp_path: Path) -> None:
    for table in ("full_t", "inc_t"):
        pg_db.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, name text, amount numeric(12,2), "
                      "updated_at timestamptz NOT NULL)")
        pg_db.execute(f"INSERT INTO {table} SELECT g, 'n' || g, g * 0.01, %s FROM generate_series(1, 3000) g", (T0,))
    pg_db.execute("INSERT INTO inc_t VALUES (3001, NULL, NULL, %s)", (T0,))
    p = make_project(tmp_path / "p", pg_db, lake_yaml(kind, s3_env, tmp_path))
    assert p.lake.root.startswith("s3://") and not p.lake.is_local

    first = p.run()
    assert first.ok, first
    assert p.tables() and [t.name for t in p.tables()] == ["bronze.src_full_t", "bronze.src_inc_t"]
    if kind == "iceberg-rest":  # the catalog holds the tables under the lake's own namespace
        prefix = p.lake.catalog_config.namespace_prefix  # type: ignore[attr-defined]
        assert prefix and (f"{prefix}bronze",) in p.lake.catalog.list_namespaces()  # type: ignore[attr-defined]
    for table in ("full_t", "inc_t"):
        assert lake_rows(p, f"bronze.src_{table}") == source(pg_db, table)
    assert lake_rows(p, "bronze.src_inc_t")[-1] == (3001, None, None, T0)
    version = p.lake.version("bronze.src_inc_t")

    later = T0 + dt.timedelta(hours=1)
    for table in ("full_t", "inc_t"):
        pg_db.execute(f"UPDATE {table} SET name = 'changed', amount = amount + 1, updated_at = %s WHERE id %% 7 = 0",
                      (later,))
        pg_db.execute(f"INSERT INTO {table} VALUES (5000, 'new', 12345678.91, %s)", (later,))
    pg_db.execute("DELETE FROM full_t WHERE id % 11 = 0")
    second = p.run()
    assert second.ok, second
    assert {r.table: r.rows for r in second.tables}["bronze.src_inc_t"] == 3000 // 7 + 1  # only the window
    for table in ("full_t", "inc_t"):
        assert lake_rows(p, f"bronze.src_{table}") == source(pg_db, table)
    assert (5000, "new", decimal.Decimal("12345678.91"), later) in lake_rows(p, "bronze.src_inc_t")
    assert p.lake.version("bronze.src_inc_t") > version

    third = p.run()  # nothing new: no commit
    assert {r.table: r.status for r in third.tables}["bronze.src_inc_t"] == "unchanged"
    assert p.sql("SELECT count(*) AS n FROM bronze.src_full_t").to_pylist() == [{"n": len(source(pg_db, "full_t"))}]
    runs = p.runs(limit=5)
    assert [r["run"]["status"] for r in runs] == ["success"] * 3  # the run history lives on S3 too


def test_the_run_lock_is_an_object_with_an_expiry(s3_env: Any, pg_db: PgDatabase, tmp_path: Path) -> None:
    from lakeforge.state.lock import is_locked, lake_lock
    from lakeforge.state.object_lock import ObjectLock

    pg_db.execute("CREATE TABLE full_t (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz)")
    pg_db.execute("CREATE TABLE inc_t (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz)")
    p = make_project(tmp_path / "p", pg_db, lake_yaml("delta", s3_env, tmp_path))
    with lake_lock(p.lake, "run"):
        assert is_locked(p.lake, "run")
        with pytest.raises(RunInProgress, match=r"another lakeforge run holds s3://lake/.*/_lakeforge/run.lock"):
            p.run()
    assert not is_locked(p.lake, "run") and p.run().ok
    # a holder that died without releasing blocks others only until the lock's expiry (3 s: long enough for
    # the refused run below to start on a loaded machine)
    import time

    stale = ObjectLock(p.lake, "run", ttl=3)
    expires = time.monotonic() + 3
    stale.__enter__()
    stale._stop.set()  # the holder "dies": no more renewals, no release
    assert stale._thread is not None
    stale._thread.join()
    with pytest.raises(RunInProgress):
        p.run()
    time.sleep(max(0.0, expires - time.monotonic()) + 0.2)
    assert p.run().ok  # the expired lock was taken over


@pytest.mark.parametrize(("case", "cause"), [
    ("endpoint", "cannot reach the storage endpoint http://127.0.0.1:9"),
    ("secret", "storage refused the credentials"),
    ("bucket", "bucket 'no-such-bucket' does not exist"),
])
def test_bad_storage_input_is_one_line_without_the_secret(case: str, cause: str, s3_env: Any, pg_db: PgDatabase,
                                                           tmp_path: Path) -> None:
    pg_db.execute("CREATE TABLE full_t (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz)")
    pg_db.execute("CREATE TABLE inc_t (id int PRIMARY KEY, name text, amount numeric(12,2), updated_at timestamptz)")
    wrong = "wrong-secret-" + secrets.token_hex(4)
    lake = lake_yaml("delta", s3_env, tmp_path, endpoint="http://127.0.0.1:9" if case == "endpoint" else None,
                     secret=wrong if case == "secret" else None, bucket="no-such-bucket" if case == "bucket" else None)
    p = make_project(tmp_path / "p", pg_db, lake)
    with pytest.raises(LakeforgeError) as info:
        p.run()
    message = str(info.value)
    assert isinstance(info.value, LakeError) and cause in message, message
    assert message.startswith(f"lake {p.lake.root}: ") and "\n" not in message
    assert wrong not in message and s3_env.secret not in message
