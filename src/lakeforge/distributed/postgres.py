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
        """ADBC in a transaction that imports the snapshot (the same settings as the source's own reader)."""
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa

        src: Any = source
        setup = (
            "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            f"SET TRANSACTION SNAPSHOT '{ticket.values['snapshot']}'",
            "SET intervalstyle TO iso_8601",
            "SET TIME ZONE 'UTC'",
        )
        handles: list[Any] = []
        try:
            with src.errors("cannot connect (ADBC)"):
                handles.append(adbc_driver_postgresql.connect(src.dsn))
                handles.append(adbc.AdbcConnection(handles[-1]))
                handles[-1].set_options(**{"adbc.connection.autocommit": "false"})
            with src.errors(f"range {ticket.index}: cannot join the driver's snapshot"):
                stmt = adbc.AdbcStatement(handles[-1])
                handles.append(stmt)
                for setting in setup:
                    stmt.set_sql_query(setting)
                    stmt.execute_update()
            with src.errors("read failed"):
                stmt.set_sql_query(sql)
                result, _ = stmt.execute_query()
                reader = pa.RecordBatchReader.from_stream(result)
                handles.append(reader)
            while True:
                with src.errors("read failed"):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                yield batch
        finally:
            for handle in reversed(handles):
                with contextlib.suppress(Exception):
                    handle.close()
