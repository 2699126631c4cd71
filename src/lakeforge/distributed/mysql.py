"""MariaDB/MySQL: mydumper's way to one consistent view across connections.

The driver takes ``FLUSH TABLES WITH READ LOCK`` (briefly: writes wait, reads go on), records the binlog
position, and keeps the lock until every range task has opened ``START TRANSACTION WITH CONSISTENT SNAPSHOT``
(each task then holds a user lock ``lf_<token>_<i>`` the driver can see), then ``UNLOCK TABLES``. All the
snapshots were opened while nothing could commit, so they see the same state.

Each task's query carries a guard evaluated once inside its transaction: when the server reports the
transaction's snapshot binlog position (MariaDB's ``binlog_snapshot_position``), it must equal the driver's,
else the query fails ("Subquery returns more than 1 row", reported as a moved snapshot). A task retried
after the lock was released thus either sees the very same state or fails the load (which starts over with a
new snapshot); it never reads a range of a later state. connectorx ignores errors of its
``pre_execution_query`` statements, so the guard is part of the query itself.

Without the RELOAD privilege (``FLUSH TABLES WITH READ LOCK`` refused) each task reads its own snapshot: every
range is consistent in itself, the table as a whole is not; the run says so in the table's note.

A CDC initial snapshot (:meth:`MySQLSnapshot.adopt`) takes the same snapshot and becomes the table's log start:
the GTID of the snapshot's binlog position (``BINLOG_GTID_POS``), read under the lock. Without the lock there
is no one state to start the log from, so the snapshot is read in one process instead (:class:`NotShared`).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.distributed.snapshot import NotShared, Snapshot, Ticket
from lakeforge.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa
    import pymysql

    from lakeforge.sources.sql import SqlSource

_NO_PRIVILEGE = (1227, 1045, 1044)
_STATUS = "SELECT VARIABLE_VALUE FROM information_schema.SESSION_STATUS WHERE VARIABLE_NAME = '{}'"
MOVED = "Subquery returns more than 1 row"


class SnapshotMoved(SourceError):
    """A range task's snapshot is not the driver's (retried after the read lock was released, and the
    database changed meanwhile): retrying the task cannot help; the load starts over."""


class MySQLSnapshot(Snapshot):
    def __init__(self, source: SqlSource, token: str, *, timeout: float) -> None:
        super().__init__(source, token, timeout=timeout)
        self._conn: pymysql.connections.Connection[Any] | None = None
        self.locked = False
        self._snapshot_position = ""
        self.for_log = False
        """A CDC initial snapshot: its GTID starts the table's log, so it must be one state (or not shared)."""

    @classmethod
    def adopt(cls, source: SqlSource, token: str, shared: dict[str, str], *, timeout: float) -> Snapshot | None:
        """MariaDB's CDC reader cannot share its own snapshot; the range tasks take one together under the
        global read lock, at a GTID that becomes the table's position in the log."""
        if shared.get("binlog") != "gtid":
            return None
        made = cls(source, token, timeout=timeout)
        made.for_log = True
        return made

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        assert self._conn is not None, "open() first"
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def open(self) -> None:
        import pymysql

        src: Any = self.source
        config = src.config
        with src.errors("cannot connect"):
            self._conn = pymysql.connect(
                host=config.host,
                port=config.port or 3306,
                user=config.user or "root",
                password=config.password.get_secret_value() if config.password else "",
                database=src.database,
                connect_timeout=config.connect_timeout,
                autocommit=True,
                charset="utf8mb4",
            )
        with src.errors("cannot take the global read lock"):
            self._run(f"SET SESSION lock_wait_timeout = {max(1, int(self.timeout))}")
            try:
                self._run("FLUSH TABLES WITH READ LOCK")
                self.locked = True
            except pymysql.MySQLError as exc:
                if not (exc.args and exc.args[0] in _NO_PRIVILEGE):
                    raise
                if self.for_log:
                    self.warn(
                        f"source '{self.source.name}': FLUSH TABLES WITH READ LOCK refused ({exc.args[1]}); the CDC "
                        "initial snapshot is read in one process (range tasks need one consistent snapshot to start "
                        "the binlog from: grant RELOAD to the user)"
                    )
                    raise NotShared(self.source.name, "no global read lock for a shared CDC snapshot") from None
                self.warn(
                    f"source '{self.source.name}': FLUSH TABLES WITH READ LOCK refused ({exc.args[1]}); the range "
                    "tasks each read their own snapshot, so the table is consistent per range but not as a whole "
                    "(grant RELOAD to the user for one consistent snapshot)"
                )
        with src.errors("cannot open the snapshot"):
            self._run("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._run("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            file = self._status("BINLOG_SNAPSHOT_FILE")
            offset = self._status("BINLOG_SNAPSHOT_POSITION")
            gtid = self._gtid(file, offset)
        if self.for_log and not (file and gtid):
            self.warn(
                f"source '{self.source.name}': the snapshot's binlog position is unknown; the CDC initial snapshot "
                "is read in one process"
            )
            raise NotShared(self.source.name, "no binlog position for a shared CDC snapshot")
        if file:
            self._snapshot_position = f"{file}:{offset}"
            self.position = {"binlog_file": file, "binlog_pos": int(offset or 0), "gtid": str(gtid or "")}

    def _gtid(self, file: str, offset: str) -> str:
        """The GTID position of the snapshot: exactly at its binlog position (MariaDB), else the server's
        current one (exact while the read lock holds)."""
        if file:
            with contextlib.suppress(Exception):
                return str(self._run(f"SELECT BINLOG_GTID_POS('{file}', {int(offset or 0)})")[0][0] or "")
        for sql in ("SELECT @@gtid_binlog_pos", "SELECT @@gtid_executed"):  # MariaDB, MySQL
            with contextlib.suppress(Exception):
                return str(self._run(sql)[0][0] or "")
        return ""

    def _status(self, name: str) -> str:
        try:
            rows = self._run(_STATUS.format(name))
        except Exception:  # MySQL 8 has no binlog_snapshot_* status
            return ""
        return str(rows[0][0]) if rows and rows[0][0] not in (None, "", "0") else ""

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        with self.source.errors("query failed"):  # type: ignore[attr-defined]
            return self._run(sql)

    def ticket(self, index: int) -> Ticket:
        position = self._snapshot_position if self.locked else ""
        return Ticket("mysql", self.token, index, {"marker": self._marker(index), "position": position})

    def where(self) -> str | None:
        return guard(self._snapshot_position if self.locked else "")

    def verified(self) -> bool:
        """Tasks check their snapshot's binlog position against the driver's (so a retry is safe)."""
        return bool(self.locked and self._snapshot_position)

    def _marker(self, index: int) -> str:
        return f"lf_{self.token}_{index}"[:64]

    def started(self, finished: Callable[[], set[int]], count: int) -> None:
        if not self.locked:
            return
        pending = set(range(count))
        deadline = time.monotonic() + self.timeout
        try:
            while pending:
                pending -= finished()
                if pending:
                    checks = ", ".join(f"IS_USED_LOCK('{self._marker(i)}') IS NOT NULL" for i in sorted(pending))
                    opened = self._run(f"SELECT {checks}")[0]
                    pending -= {i for i, ok in zip(sorted(pending), opened, strict=True) if ok}
                if not pending:
                    break
                if time.monotonic() > deadline:
                    raise SourceError(
                        self.source.name,
                        f"{count - len(pending)} of {count} range tasks opened their snapshot within "
                        f"{self.timeout:g}s while writes waited on the global read lock; the cluster runs fewer "
                        "tasks at once than run.partitions (lower run.partitions or engine.task_cpus)",
                        transient=True,
                    )
                time.sleep(0.05)
        finally:
            self._unlock()

    def _unlock(self) -> None:
        if self.locked and self._conn is not None:
            with contextlib.suppress(Exception):
                self._run("UNLOCK TABLES")
        self.locked = False

    def close(self) -> None:
        if self._conn is not None:
            self._unlock()
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    # -- worker side ----------------------------------------------------------------------------------
    @staticmethod
    def stream(source: SqlSource, ticket: Ticket, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        import connectorx as cx

        src: Any = source
        setup = [
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
            "START TRANSACTION WITH CONSISTENT SNAPSHOT",
            f"DO GET_LOCK('{ticket.values['marker']}', 0)",
        ]
        try:
            with src.errors("read failed"):
                reader = cx.read_sql(
                    src.dsn, sql, return_type="arrow_stream", batch_size=batch_size, pre_execution_query=setup
                )
            while True:
                with src.errors("read failed"):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                yield batch
        except SourceError as exc:
            if MOVED in str(exc):
                raise SnapshotMoved(
                    source.name,
                    f"range {ticket.index}: its snapshot is not the driver's (binlog position moved since "
                    f"{ticket.values.get('position')}: a task retried after the read lock was released); the "
                    "load starts over with a new snapshot",
                    transient=True,
                ) from None
            raise


def guard(position: str) -> str:
    """A condition evaluated once (an uncorrelated subquery) that fails the query unless it runs inside a
    transaction whose snapshot is at binlog ``position`` (``file:offset``; empty: only the transaction)."""
    wrong = "@@in_transaction <> 1"
    if position:
        file, _, offset = position.rpartition(":")
        wrong += (
            f" OR ({_STATUS.format('BINLOG_SNAPSHOT_FILE')}) <> '{file}'"
            f" OR ({_STATUS.format('BINLOG_SNAPSHOT_POSITION')}) <> '{offset}'"
        )
    return f"(SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE {wrong}) = 1"
