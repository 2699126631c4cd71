"""PostgreSQL: the driver's REPEATABLE READ transaction exports its snapshot (``pg_export_snapshot()``); each
range task imports it (``SET TRANSACTION SNAPSHOT``) before its first query, so all ranges read the database
as of one instant. The driver's transaction stays open until the last task (and any retry) has finished."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.distributed.snapshot import Snapshot, Ticket

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

    from lakeforge.sources.sql import SqlSource


class PostgresSnapshot(Snapshot):
    def __init__(self, source: SqlSource, token: str, *, timeout: float) -> None:
        super().__init__(source, token, timeout=timeout)
        self._conn: psycopg.Connection[Any] | None = None
        self._id = ""

    @classmethod
    def adopt(cls, source: SqlSource, token: str, shared: dict[str, str], *, timeout: float) -> Snapshot | None:
        """The snapshot a replication slot exported (CDC's initial load), shared by the range tasks: it stays
        valid while the CDC reader keeps its replication connection open."""
        if not shared.get("snapshot"):
            return None
        made = cls(source, token, timeout=timeout)
        made._id = shared["snapshot"]
        return made

    def open(self) -> None:
        import psycopg

        src: Any = self.source
        with src.errors("cannot connect"):
            self._conn = psycopg.connect(src.dsn, autocommit=True, connect_timeout=src.config.connect_timeout)
        if self._id:  # adopted: join it like a task does
            with src.errors("cannot join the shared snapshot"):
                self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                self._conn.execute(f"SET TRANSACTION SNAPSHOT '{self._id}'")
            return
        with src.errors("cannot export a snapshot"):
            self._conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
            row = self._conn.execute("SELECT pg_export_snapshot(), pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        self._id = str(row[0])
        self.position = {"snapshot": self._id, "lsn": str(row[1])}

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        assert self._conn is not None, "open() first"
        with self.source.errors("query failed"):  # type: ignore[attr-defined]
            cur = self._conn.execute(sql)
            return list(cur.fetchall()) if cur.description else []

    def ticket(self, index: int) -> Ticket:
        return Ticket("postgres", self.token, index, {"snapshot": self._id})

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.execute("COMMIT")
            self._conn.close()
            self._conn = None

    @staticmethod
    def stream(source: SqlSource, ticket: Ticket, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """The source's own ADBC reader, in a transaction that imports the driver's snapshot."""
        from lakeforge.sources.postgres.source import PostgresSource

        assert isinstance(source, PostgresSource)
        begin = (
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
            f"SET TRANSACTION SNAPSHOT '{ticket.values['snapshot']}'",
        )
        yield from source.stream(sql, batch_size, begin=begin)
