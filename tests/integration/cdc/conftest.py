"""Session-scoped throwaway servers for CDC (PostgreSQL wal_level=logical, MariaDB ROW binlog + GTID) and a
fresh database per test on them."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers import Server, mariadb_server, postgres_server


@pytest.fixture(scope="session")
def cdc_pg_server() -> Iterator[Server]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def cdc_my_server() -> Iterator[Server]:
    with mariadb_server() as server:
        yield server


class PgDb:
    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self.name = name
        self.url = f"postgresql://postgres@127.0.0.1:{port}/{name}"
        self._conn: Any = None

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.url, autocommit=True)
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()


class MyDb:
    def __init__(self, port: int, name: str) -> None:
        self.port = port
        self.name = name
        self.url = f"mysql://root@127.0.0.1:{port}/{name}"
        self._conn: Any = None

    def execute(self, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
        import pymysql

        if self._conn is None or not self._conn.open:
            self._conn = pymysql.connect(host="127.0.0.1", port=self.port, user="root", database=self.name,
                                         autocommit=True, charset="utf8mb4", init_command="SET time_zone='+00:00'")
        with self._conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def executemany(self, sql: str, rows: list[Any]) -> None:
        self.execute("SELECT 1")
        with self._conn.cursor() as cur:
            cur.executemany(sql, rows)

    def close(self) -> None:
        if self._conn is not None and self._conn.open:
            self._conn.close()


@contextlib.contextmanager
def pg_database(server: Server) -> Iterator[PgDb]:
    """A fresh database on ``server``, dropped afterwards with the replication slots made in it."""
    import psycopg

    name = "cdc_" + secrets.token_hex(4)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    db = PgDb(server.port, name)
    try:
        yield db
    finally:
        db.close()
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            for (slot,) in conn.execute("SELECT slot_name FROM pg_replication_slots WHERE database = %s", (name,)):
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def cdc_pg(cdc_pg_server: Server) -> Iterator[PgDb]:
    with pg_database(cdc_pg_server) as db:
        yield db


@pytest.fixture
def cdc_my(cdc_my_server: Server) -> Iterator[MyDb]:
    import pymysql

    name = "cdc_" + secrets.token_hex(4)
    conn = pymysql.connect(host="127.0.0.1", port=cdc_my_server.port, user="root", autocommit=True)
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4")
    db = MyDb(cdc_my_server.port, name)
    yield db
    db.close()
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
    conn.close()


def cdc_project(path: Path, db: PgDb | MyDb, tables: dict[str, Any], **run: Any) -> Path:
    import yaml

    kind = "postgres" if isinstance(db, PgDb) else "mysql"
    config = {
        "sources": {"src": {"type": kind, "url": db.url, "include": [], "tables": tables}},
        "lake": {"path": "./lake"},
        "run": {"cdc_commit_seconds": 1, **run},
    }
    path.mkdir(parents=True, exist_ok=True)
    (path / "lakeforge.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return path
