"""The binlog reading thread behind :class:`~lakeforge.sources.mysql.cdc.MySQLCdc`, and GTID arithmetic.

One blocking ``BinLogStreamReader`` (``mysql-replication``) reads in a daemon thread and hands whole
transactions to the loader through a bounded queue; see :class:`Pump`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import queue
import re
import threading
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.cdc import Change, Position, Txn

if TYPE_CHECKING:
    from lakeforge.sources.mysql.cdc import MySQLCdc

HEARTBEAT_SECONDS = 1.0
_QUEUE_TXNS = 1_000
_FL_STANDALONE = 1
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:`?([^`.\s]+)`?\.)?`?([^`\s;]+)`?", re.I)


def gtid_position(text: str) -> Position:
    """``0-1-42`` (one domain) -> Position(42); several domains are summed (documented limit)."""
    text = (text or "").strip()
    value = sum(int(part.rsplit("-", 1)[1]) for part in text.split(",") if part.strip())
    return Position(value, text)


class Pump:
    """Reads the binlog with one blocking ``BinLogStreamReader`` in a daemon thread and puts whole transactions
    (or the exception that ended the read) into a bounded queue.

    The package has no way to stop a blocking read from another thread, so :meth:`stop` sets a flag (checked
    at every event, and heartbeats make sure events come), shuts the socket down to wake the read, and makes
    the package's own reconnect fail. A reconnect after a dropped connection (the package retries by itself)
    resumes after the last whole transaction, never replaying one.
    """

    def __init__(self, reader: MySQLCdc, start: str) -> None:
        try:
            from pymysqlreplication import BinLogStreamReader
        except ImportError:
            from lakeforge.errors import MissingExtraError

            raise MissingExtraError("mysql-replication", "cdc") from None
        from pymysqlreplication.event import GtidEvent, HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, XidEvent
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent

        cfg = reader.source.config
        self.reader = reader
        self.queue: queue.Queue[Txn | BaseException] = queue.Queue(maxsize=_QUEUE_TXNS)
        self.stopping = threading.Event()
        self.done = start
        """GTID position after the last whole transaction read: where a reconnect resumes."""
        self._connects = 0
        self._connect_timeout = cfg.connect_timeout
        settings = {
            "host": cfg.host,
            "port": cfg.port or 3306,
            "user": cfg.user or "root",
            "passwd": cfg.password.get_secret_value() if cfg.password else "",
        }
        self.stream = BinLogStreamReader(
            connection_settings=settings,
            server_id=reader.server_id,
            blocking=True,
            is_mariadb=reader.is_mariadb,
            auto_position=start,
            resume_stream=True,
            slave_heartbeat=HEARTBEAT_SECONDS,
            only_schemas=sorted({ref.schema for ref in reader.plans}),
            pymysql_wrapper=self._connect,
            only_events=[
                MariadbGtidEvent,
                GtidEvent,
                QueryEvent,
                XidEvent,
                WriteRowsEvent,
                UpdateRowsEvent,
                DeleteRowsEvent,
                HeartbeatLogEvent,
            ],
            enable_logging=False,
        )
        name = f"lakeforge-binlog-{reader.source.name}-{id(self):x}"
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        logger = logging.getLogger("pymysqlreplication")
        if _quiet not in logger.filters:
            logger.addFilter(_quiet)
        self.thread.start()

    def _connect(self, **kwargs: Any) -> Any:
        """Every connection the package opens; refuses once stopping, and points a stream reconnect at
        ``done``."""
        import pymysql

        if self.stopping.is_set():
            raise _Stopped
        if "db" not in kwargs:  # the stream connection (the control one reads information_schema)
            self._connects += 1
            if self._connects > 1:
                self.stream.auto_position = self.done
        return pymysql.connect(connect_timeout=self._connect_timeout, **kwargs)

    def _run(self) -> None:
        try:
            self._read()
        except BaseException as exc:  # handed to the consumer, which raises it as a SourceError
            if not self.stopping.is_set():
                self._put(exc)

    def _read(self) -> None:
        from pymysqlreplication.event import GtidEvent, HeartbeatLogEvent, MariadbGtidEvent, QueryEvent, XidEvent

        gtid = self.done
        txn: Txn | None = None
        began = False
        for event in self.stream:
            if self.stopping.is_set():
                return
            if isinstance(event, HeartbeatLogEvent):
                continue
            if isinstance(event, MariadbGtidEvent | GtidEvent):
                if isinstance(event, MariadbGtidEvent):
                    check_order(self.reader.source.name, gtid, event.gtid)
                gtid = _advance(gtid, event.gtid)
                txn = Txn(gtid_position(gtid), dt.datetime.fromtimestamp(event.timestamp, dt.UTC))
                # MariaDB's GTID event is the BEGIN, unless flagged standalone (a DDL statement on its own)
                began = isinstance(event, MariadbGtidEvent) and not event.flags & _FL_STANDALONE
                continue
            if txn is None:
                continue  # the tail of a transaction that started before the stream did
            if isinstance(event, QueryEvent):
                query = _decode(event.query).strip()
                word = query.split(None, 1)[0].upper() if query else ""
                if word == "BEGIN":
                    began = True
                    continue
                if began and word not in ("COMMIT", "ROLLBACK"):
                    continue  # SAVEPOINT and the like inside a transaction
                if not began:  # a statement on its own (DDL): the whole transaction
                    self._truncate(event, query, txn)
            elif not isinstance(event, XidEvent):
                self.reader.add_rows(event, txn)
                continue
            self.done = gtid
            self._put(txn)
            txn = None

    def _truncate(self, event: Any, query: str, txn: Txn) -> None:
        match = _TRUNCATE.match(query)
        if match:
            ref = self.reader.table_ref(match.group(1) or _decode(event.schema), match.group(2))
            if ref is not None:
                txn.changes.append(Change(ref, "truncate"))

    def _put(self, item: Txn | BaseException) -> None:
        while not self.stopping.is_set():
            try:
                self.queue.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    def stop(self) -> None:
        import socket

        self.stopping.set()
        _QuietStop.stopping.add(self.thread.name)
        conn = getattr(self.stream, "_stream_connection", None)
        sock = getattr(conn, "_sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self.thread.is_alive() and self.thread is not threading.current_thread():
            self.thread.join(timeout=HEARTBEAT_SECONDS * 5)
        with contextlib.suppress(Exception):
            self.stream.close()
        if not self.thread.is_alive():
            _QuietStop.stopping.discard(self.thread.name)


class _QuietStop(logging.Filter):
    """Drops the package's "Re-request the connection" warning when it comes from a pump being stopped (the
    socket was shut on purpose)."""

    stopping: ClassVar[set[str]] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName not in self.stopping


_quiet = _QuietStop()


class _Stopped(Exception):
    """Raised into the package's reconnect once the pump is stopping."""


def _decode(value: Any) -> str:
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value or "")


def domains(text: str) -> dict[int, int]:
    """``0-1-42,1-2-7`` -> {0: 42, 1: 7} (sequence number per GTID domain)."""
    result = {}
    for part in (text or "").split(","):
        if part.strip():
            domain, _, seq = part.strip().split("-")
            result[int(domain)] = int(seq)
    return result


def check_order(source: str, current: str, gtid: str) -> None:
    """Stop when ``gtid`` does not come after ``current`` in its domain.

    lakeforge's positions are sequence numbers per domain: the checkpoint a commit carries, the catch-up
    target, the position the binlog is resumed from. ``gtid_strict_mode`` makes the server refuse a GTID
    whose sequence number is not above its domain's last one; with it off (MariaDB's default) such a GTID
    can reach the binlog (a second server writing into the same domain, ``SET gtid_seq_no`` set back), and
    its changes would be ordered wrongly against committed checkpoints: skipped or applied twice after a
    resume. Rather than guess, the stream stops there with the two GTIDs named.
    """
    domain, _, seq = gtid.strip().split("-")
    last = domains(current).get(int(domain))
    if last is not None and int(seq) <= last:
        before = next(p for p in current.split(",") if p.strip().split("-", 1)[0] == domain)
        raise SourceError(
            source,
            f"binlog GTID {gtid} follows {before.strip()} in domain {domain}: its sequence number does not "
            "grow (gtid_strict_mode is off and two servers wrote into one domain, or gtid_seq_no was set "
            "back), so change positions cannot be ordered and changes could be skipped or applied twice; "
            "fix: give each writing server its own gtid_domain_id, or SET GLOBAL gtid_strict_mode = 1 (and "
            "gtid_strict_mode=1 in the server config), then reload: lakeforge cdc resnapshot <source>",
        )


def reached_all(at: dict[int, int], target: dict[int, int]) -> bool:
    return all(at.get(domain, -1) >= seq for domain, seq in target.items())


def _advance(current: str, gtid: str) -> str:
    """The GTID position after ``gtid``: replaces its domain's entry in ``current``."""
    domain = gtid.split("-", 1)[0]
    parts = [p for p in current.split(",") if p.strip() and p.split("-", 1)[0] != domain]
    return ",".join([*parts, gtid])
