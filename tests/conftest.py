"""Shared fixtures: a fresh database per test on the local PostgreSQL and MariaDB servers.

Servers come from LAKEFORGE_TEST_PG / LAKEFORGE_TEST_MYSQL (defaults: the local trust/root servers).
Each test gets its own uniquely named database, dropped afterwards, so tests (and parallel sessions) never
see each other's tables.
"""

from __future__ import annotations

import os
import secrets
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

PG_ADMIN = os.environ.get("LAKEFORGE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
MY_HOST = os.environ.get("LAKEFORGE_TEST_MYSQL_HOST", "127.0.0.1")
MY_PORT = int(os.environ.get("LAKEFORGE_TEST_MYSQL_PORT", "3306"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/integration/" in str(item.fspath) or "/contract/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@dataclass
class PgDatabase:
    name: str
    url: str

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        with psycopg.connect(self.url, autocommit=True) as conn, conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []


@dataclass
class MyDatabase:
    name: str
    url: str

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import pymysql

        conn = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", database=self.name,
                               autocommit=True, charset="utf8mb4", init_command="SET time_zone = '+00:00'")
        try:
            with conn.cursor() as cur:
                rows: list[tuple[Any, ...]] = []
                for statement in _split(sql) if params is None else [sql]:
                    cur.execute(statement, params)
                    if cur.description:
                        rows = list(cur.fetchall())
                return rows
        finally:
            conn.close()


def _split(sql: str) -> list[str]:
    return [s for s in (p.strip() for p in sql.split(";\n")) if s]


@pytest.fixture
def pg_db() -> Iterator[PgDatabase]:
    import psycopg

    name = "lft_" + secrets.token_hex(4)
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN.rsplit("/", 1)[0]
    yield PgDatabase(name, f"{base}/{name}")
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def my_db() -> Iterator[MyDatabase]:
    import pymysql

    name = "lft_" + secrets.token_hex(4)
    conn = pymysql.connect(host=MY_HOST, port=MY_PORT, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    yield MyDatabase(name, f"mysql://root@{MY_HOST}:{MY_PORT}/{name}")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def write_project(path: Path, body: str) -> Path:
    """Write ``lakeforge.yml`` (dedented) into ``path`` and return the folder."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "lakeforge.yml").write_text(textwrap.dedent(body), encoding="utf-8")
    return path


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    return tmp_path / "project"


@pytest.fixture(params=["delta", "iceberg"])
def lake_format(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs the test once per table format: every Project it opens reads ``lake.format`` from
    ``LAKEFORGE__LAKE__FORMAT`` (Iceberg: a SQLite catalog in the lake folder)."""
    monkeypatch.setenv("LAKEFORGE__LAKE__FORMAT", request.param)
    return str(request.param)


@pytest.fixture(scope="session")
def seaweed() -> Iterator[Any]:
    """One SeaweedFS (S3 + Iceberg REST catalog) on loopback for the whole session, killed at the end."""
    from tests.seaweed import seaweedfs

    with seaweedfs() as server:
        yield server
