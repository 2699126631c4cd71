"""The streaming replication protocol (``START_REPLICATION ... LOGICAL``) over libpq's COPY BOTH mode, through
psycopg 3's low-level ``psycopg.pq`` layer.

Why not psycopg2's ``LogicalReplicationConnection``: on a server keepalive it moves the flush position it
reports to the keepalive's WAL end by itself, once everything received was acknowledged (``pqpath.c``), so
the slot's ``confirmed_flush_lsn`` runs ahead of what the lake has committed and the next run would take the
slot for lost. Here the flush position sent is only ever the one the loader acknowledged.
"""

from __future__ import annotations

import datetime as dt
import select
import struct
import time
from dataclasses import dataclass
from typing import Any

_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_FEEDBACK_SECONDS = 5.0
"""Send a status update at least this often (the server drops a silent client after wal_sender_timeout)."""


class ReplicationError(Exception):
    """The server or the connection failed; the message is the server's."""


@dataclass
class Keepalive:
    wal_end: int
    """Where the server's decoding is: every transaction committed before it has been sent."""


class ReplicationStream:
    def __init__(self, conninfo: str) -> None:
        from psycopg import pq

        self._pq = pq
        self.conn = pq.PGconn.connect(conninfo.encode())
        if self.conn.status != pq.ConnStatus.OK:
            message = self._error()
            self.conn.finish()
            raise ReplicationError(message)
        self.flushed = 0
        """The flush position reported to the server: what the lake has committed."""
        self._fed_at = 0.0

    def _error(self) -> str:
        return bytes(self.conn.error_message).decode("utf-8", "replace").strip() or "connection failed"

    def command(self, sql: str) -> list[tuple[str | None, ...]]:
        """Run a replication command (``CREATE_REPLICATION_SLOT``, ...) and return its rows as text."""
        result = self.conn.exec_(sql.encode())
        if result.status not in (self._pq.ExecStatus.TUPLES_OK, self._pq.ExecStatus.COMMAND_OK):
            raise ReplicationError(bytes(result.error_message or b"").decode("utf-8", "replace").strip())
        rows = []
        for i in range(result.ntuples):
            values = [result.get_value(i, j) for j in range(result.nfields)]
            rows.append(tuple(None if v is None else bytes(v).decode() for v in values))
        return rows

    def start(self, slot: str, start_lsn: str, options: dict[str, str]) -> None:
        opts = ", ".join(f'"{k}" ' + "'" + v.replace("'", "''") + "'" for k, v in options.items())
        sql = f'START_REPLICATION SLOT "{slot}" LOGICAL {start_lsn} ({opts})'
        self.conn.send_query(sql.encode())
        result = self.conn.get_result()
        if result is None or result.status != self._pq.ExecStatus.COPY_BOTH:
            detail = bytes(result.error_message or b"") if result is not None else b""
            raise ReplicationError(detail.decode("utf-8", "replace").strip() or self._error())

    def read(self, timeout: float) -> bytes | Keepalive | None:
        """The next message: an XLogData's payload (the logical decoding message), a keepalive, or None after
        ``timeout`` seconds without one. Answers the server's keepalives that ask for a reply, and sends a
        status update every few seconds."""
        deadline = 0.0
        while True:
            size, data = self.conn.get_copy_data(1)
            if size > 0:
                if data[0] == 0x77:  # 'w', the usual case: one copy of the payload, no other work
                    return bytes(data[25:])
                return self._message(bytes(data))
            if size < 0:
                raise ReplicationError(self._ended())
            now = time.monotonic()
            deadline = deadline or now + timeout
            if now - self._fed_at >= _FEEDBACK_SECONDS:
                self.feedback()
            if now >= deadline:
                return None
            readable, _, _ = select.select([self.conn.socket], [], [], min(deadline - now, _FEEDBACK_SECONDS))
            if readable:
                self.conn.consume_input()

    def _ended(self) -> str:
        result = self.conn.get_result()
        detail = bytes(result.error_message or b"").decode("utf-8", "replace").strip() if result else ""
        return detail or self._error() or "the server ended the replication stream"

    def _message(self, data: bytes) -> bytes | Keepalive:
        if data[:1] == b"w":
            return data[25:]
        if data[:1] == b"k":
            end, _, reply = struct.unpack_from("!QqB", data, 1)
            if reply:
                self.feedback()
            return Keepalive(end)
        raise ReplicationError(f"unexpected replication message {data[:1]!r}")

    def feedback(self, flushed: int | None = None, *, reply: bool = False) -> None:
        """Report ``flushed`` (never lower than before) as written, flushed and applied; with ``reply`` the
        server answers with a keepalive carrying its position."""
        if flushed is not None:
            self.flushed = max(self.flushed, flushed)
        now = int((dt.datetime.now(dt.UTC) - _PG_EPOCH) / dt.timedelta(microseconds=1))
        message = b"r" + struct.pack("!QQQqB", self.flushed, self.flushed, self.flushed, now, 1 if reply else 0)
        if self.conn.put_copy_data(message) != 1 or self.conn.flush() != 0:
            raise ReplicationError(self._error())
        self._fed_at = time.monotonic()

    def close(self, settle: float = 10.0) -> None:
        """Send the last status and wait (up to ``settle`` seconds) for the server to answer it, so the slot
        shows the acknowledged position once this returns."""
        try:
            self.feedback(reply=True)
            deadline = time.monotonic() + settle
            while time.monotonic() < deadline:
                if isinstance(self.read(deadline - time.monotonic()), Keepalive):
                    break
        except ReplicationError:
            pass
        finally:
            self.conn.finish()


def conninfo(dsn: str, **params: Any) -> str:
    """``dsn`` (a URL or key=value string) as a replication connection string."""
    from psycopg.conninfo import make_conninfo

    return make_conninfo(dsn, replication="database", **params)
