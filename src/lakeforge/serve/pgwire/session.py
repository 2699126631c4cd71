"""One client connection of the SQL endpoint: startup, authentication, then queries until the client leaves.

Each session has its own in-memory DuckDB with every lake table as a view ``layer.table`` (the same engine
``lakeforge sql`` uses) plus the ``lf_catalog`` schema clients' catalog queries are pointed at. Read-only:
only SELECT, EXPLAIN, SHOW and transaction/SET statements (accepted and ignored) run; anything else is
refused with SQLSTATE 25006. DuckDB's file access is switched off and its configuration locked, so a query
cannot read or write files (``read_csv``, ``COPY``) or load extensions.
"""

from __future__ import annotations

import contextlib
import re
import secrets
import socket
import struct
import time
from typing import TYPE_CHECKING, Any

from lakeforge.serve.pgwire import catalog
from lakeforge.serve.pgwire import types as t
from lakeforge.serve.pgwire.protocol import (
    CANCEL_REQUEST,
    GSSENC_REQUEST,
    PROTOCOL_3,
    SSL_REQUEST,
    ClientGone,
    Reader,
    Wire,
)
from lakeforge.serve.pgwire.results import (
    Portal,
    QueryFailed,
    Result,
    describe_rows,
    failed,
    message,
    param,
    send_rows,
)
from lakeforge.serve.pgwire.scram import MECHANISM, ScramError, ScramServer

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakeforge.serve.pgwire.server import EndpointServer

READ_ONLY = "25006"
_TXN = re.compile(r"^\s*(begin|start\s+transaction|commit|end|rollback|abort)\b", re.I)
_IGNORED = re.compile(r"^\s*(set|reset|discard|deallocate|listen|unlisten)\b", re.I)
_SHOW = re.compile(r"^\s*show\s+([\w.]+)\s*;?\s*$", re.I)
_ALLOWED = {"SELECT", "EXPLAIN"}


class Session:
    def __init__(self, sock: socket.socket, server: EndpointServer) -> None:
        self.wire = Wire(sock)
        self.server = server
        self.params: dict[str, str] = {}
        self.con: duckdb.DuckDBPyConnection | None = None
        self.versions: dict[str, int] = {}
        self.checked = 0.0
        self.in_txn = self.failed = self.skip_to_sync = False
        self.statements: dict[str, tuple[str, list[int]]] = {}
        self.portals: dict[str, Portal] = {}
        self.key = (0, 0)
        """(process id, secret key) sent to the client: what its CancelRequest must name."""

    # -- lifecycle ----------------------------------------------------------------------------------------
    def run(self) -> None:
        try:
            if self._startup() and self._authenticate():
                self._ready_session()
                self._loop()
        except (ClientGone, ConnectionError, OSError):
            pass
        finally:
            self.server.unregister(self.key)
            if self.con is not None:
                self.con.close()
            with contextlib.suppress(OSError):
                self.wire.flush()
            self.wire.sock.close()

    def _startup(self) -> bool:
        while True:
            code, body = self.wire.read_startup()
            if code == SSL_REQUEST:
                tls = self.server.tls
                self.wire.sock.sendall(b"S" if tls else b"N")
                if tls:
                    self.wire.sock = tls.wrap_socket(self.wire.sock, server_side=True)
                continue
            if code == GSSENC_REQUEST:
                self.wire.sock.sendall(b"N")
                continue
            if code == CANCEL_REQUEST:
                if len(body) >= 8:
                    self.server.cancel(*struct.unpack("!ii", body[:8]))
                return False
            if code != PROTOCOL_3:
                self.wire.error("0A000", f"unsupported protocol {code >> 16}.{code & 0xFFFF}", "FATAL")
                return False
            parts = body.split(b"\x00")
            self.params = {parts[i].decode(): parts[i + 1].decode() for i in range(0, len(parts) - 1, 2) if parts[i]}
            return True

    def _authenticate(self) -> bool:
        users = self.server.users
        user = self.params.get("user", "")
        if not users:
            self.wire.auth(0)
            return True
        scram = ScramServer(users[user] if user in users else secrets.token_hex(16))
        try:
            self.wire.auth(10, MECHANISM.encode() + b"\x00\x00")
            self.wire.flush()
            kind, body = self.wire.read_message()
            r = Reader(body)
            if kind != b"p" or r.cstr() != MECHANISM:
                raise ScramError("expected a SASLInitialResponse for SCRAM-SHA-256")
            self.wire.auth(11, scram.first(r.bytes(r.int32()).decode()).encode())
            self.wire.flush()
            kind, body = self.wire.read_message()
            if kind != b"p":
                raise ScramError("expected a SASLResponse")
            final = scram.final(body.decode())
            if user not in users:
                raise ScramError("unknown user")
        except (ScramError, UnicodeDecodeError, ValueError):
            self.wire.error("28P01", f'password authentication failed for user "{user}"', "FATAL")
            return False
        self.wire.auth(12, final.encode())
        self.wire.auth(0)
        return True

    def _ready_session(self) -> None:
        self._open()
        for name, value in self.server.parameters(self.params).items():
            self.wire.parameter_status(name, value)
        self.key = self.server.register(self)
        self.wire.backend_key(*self.key)
        self.wire.ready(b"I")

    def interrupt(self) -> None:
        """Cancel the running query (a client's CancelRequest, from the listener's thread)."""
        if self.con is not None:
            self.con.interrupt()

    def _open(self) -> None:
        if self.con is not None:
            self.con.close()
        self.con, self.versions = self.server.open_engine()
        self.checked = time.monotonic()

    def _refresh(self) -> None:
        """Outside a transaction, at most every ``refresh_seconds``: reopen when a lake table changed."""
        if self.in_txn or time.monotonic() - self.checked < self.server.refresh_seconds:
            return
        self.checked = time.monotonic()
        if self.server.lake_versions() != self.versions:
            self._open()

    # -- message loop -------------------------------------------------------------------------------------
    def _loop(self) -> None:
        handlers = {
            b"Q": self._query,
            b"P": self._parse,
            b"B": self._bind,
            b"D": self._describe,
            b"E": self._execute,
            b"C": self._close,
        }
        while True:
            kind, body = self.wire.read_message()
            if kind == b"X":
                return
            if kind == b"S":
                self.skip_to_sync = False
                self.wire.ready(self._status())
                continue
            if kind == b"H":
                self.wire.flush()
                continue
            if self.skip_to_sync and kind != b"Q":
                continue
            handler = handlers.get(kind)
            if handler is None:
                self._fail(
                    QueryFailed(
                        "08P01",
                        f"unsupported message {kind!r} (COPY and function calls are not "
                        "available on a read-only endpoint)",
                    )
                )
                continue
            try:
                handler(body)
            except QueryFailed as exc:
                self._fail(exc)
                if kind == b"Q":
                    self.wire.ready(self._status())
            except (ClientGone, OSError):
                raise
            except Exception as exc:  # the protocol boundary: a bug answers this query, the session goes on
                self._fail(QueryFailed("XX000", f"internal error: {type(exc).__name__}: {exc}"))
                if kind == b"Q":
                    self.wire.ready(self._status())

    def _status(self) -> bytes:
        return b"E" if self.failed else (b"T" if self.in_txn else b"I")

    def _fail(self, exc: QueryFailed) -> None:
        self.wire.error(exc.code, str(exc))
        self.failed = self.in_txn
        self.skip_to_sync = True

    # -- simple query -------------------------------------------------------------------------------------
    def _query(self, body: bytes) -> None:
        sql = Reader(body).cstr()
        self.skip_to_sync = False
        statements = self._split(sql)
        if not statements:
            self.wire.send(b"I")
        for statement in statements:
            result = self._run(statement, [])
            if result.schema is not None:
                describe_rows(self.wire, result.schema, [])
                send_rows(self.wire, result, [], 0)
            else:
                self.wire.complete(result.tag)
        self.wire.ready(self._status())

    def _split(self, sql: str) -> list[str]:
        if not sql.strip().strip(";").strip():
            return []
        import duckdb

        assert self.con is not None
        try:
            return [s.query for s in self.con.extract_statements(catalog.rewrite(sql))]
        except duckdb.Error as exc:
            if _TXN.match(sql) or _IGNORED.match(sql) or _SHOW.match(sql):
                return [sql]  # PostgreSQL-only syntax DuckDB does not parse (DISCARD ALL, SHOW x, ...)
            raise QueryFailed("42601", message(exc)) from None

    def _run(self, sql: str, params: list[Any]) -> Result:
        """Run one statement: transaction control and SET are accepted, writes refused, reads executed."""
        if self.failed and not re.match(r"^\s*(rollback|abort)\b", sql, re.I):
            raise QueryFailed(
                "25P02", "current transaction is aborted, commands ignored until end of transaction block"
            )
        if match := _TXN.match(sql):
            word = match.group(1).lower().split()[0]
            self.in_txn = word in ("begin", "start")
            self.failed = False
            return Result(
                {"begin": "BEGIN", "start": "START TRANSACTION", "end": "COMMIT", "abort": "ROLLBACK"}.get(
                    word, word.upper()
                )
            )
        if match := _IGNORED.match(sql):
            return Result(match.group(1).upper() + (" ALL" if match.group(1).lower() == "discard" else ""))
        if match := _SHOW.match(sql):
            return self._show(match.group(1))
        self._refresh()
        return self._select(catalog.rewrite(sql), params)

    def _select(self, sql: str, params: list[Any]) -> Result:
        import duckdb

        assert self.con is not None
        try:
            kinds = [s.type.name for s in self.con.extract_statements(sql)]
        except duckdb.Error as exc:
            raise QueryFailed("42601", message(exc)) from None
        refused = [k for k in kinds if k not in _ALLOWED]
        if refused:
            raise QueryFailed(
                READ_ONLY,
                f"cannot execute {refused[0]} on the read-only lakeforge endpoint: the "
                "lake is written by lakeforge run, build and publish",
            )
        try:
            relation = self.con.sql(sql, params=params or None)
            reader: pa.RecordBatchReader = relation.to_arrow_reader(65_536)
        except duckdb.Error as exc:
            raise failed(exc) from None
        return Result("SELECT", reader.schema, iter(reader))

    def _show(self, name: str) -> Result:
        import pyarrow as pa

        value = self.server.parameters(self.params).get(name, self.server.settings.get(name.lower()))
        if value is None:
            raise QueryFailed("42704", f'unrecognized configuration parameter "{name}"')
        table = pa.table({name.lower(): [value]})
        return Result("SHOW", table.schema, iter(table.to_batches()))

    # -- extended query -----------------------------------------------------------------------------------
    def _parse(self, body: bytes) -> None:
        r = Reader(body)
        name, sql = r.cstr(), r.cstr()
        oids = [r.int32() for _ in range(r.int16())]
        self.statements[name] = (sql, oids)
        self.wire.send(b"1")

    def _bind(self, body: bytes) -> None:
        r = Reader(body)
        portal, name = r.cstr(), r.cstr()
        if name not in self.statements:
            raise QueryFailed("26000", f'prepared statement "{name}" does not exist')
        sql, oids = self.statements[name]
        fmt_codes = [r.int16() for _ in range(r.int16())]
        params: list[Any] = []
        count = r.int16()
        for i in range(count):
            size = r.int32()
            data = None if size < 0 else r.bytes(size)
            fmt = fmt_codes[i] if len(fmt_codes) > 1 else (fmt_codes[0] if fmt_codes else 0)
            params.append(param(oids[i] if i < len(oids) else 0, fmt, data))
        result_formats = [r.int16() for _ in range(r.int16())]
        self.portals[portal] = Portal(sql, params, result_formats)
        self.wire.send(b"2")

    def _describe(self, body: bytes) -> None:
        r = Reader(body)
        kind, name = r.bytes(1), r.cstr()
        if kind == b"S":
            if name not in self.statements:
                raise QueryFailed("26000", f'prepared statement "{name}" does not exist')
            sql, oids = self.statements[name]
            count = max([int(m) for m in re.findall(r"\$(\d+)", sql)] or [0])
            oids = (oids + [0] * count)[: max(count, len(oids))]
            self.wire.parameter_description([o or t.TEXT for o in oids])
            result = self._run(sql, [None] * len(oids))
            if result.schema is None:
                self.wire.send(b"n")
            else:
                describe_rows(self.wire, result.schema, [])
            return
        portal = self._portal(name)
        portal.result = portal.result or self._run(portal.sql, portal.params)
        if portal.result.schema is None:
            self.wire.send(b"n")
        else:
            describe_rows(self.wire, portal.result.schema, portal.formats)

    def _execute(self, body: bytes) -> None:
        r = Reader(body)
        portal = self._portal(r.cstr())
        limit = r.int32()
        portal.result = portal.result or self._run(portal.sql, portal.params)
        if portal.result.schema is None:
            self.wire.complete(portal.result.tag)
            return
        portal.rows_sent += send_rows(self.wire, portal.result, portal.formats, limit, portal.rows_sent)

    def _close(self, body: bytes) -> None:
        r = Reader(body)
        kind, name = r.bytes(1), r.cstr()
        if kind == b"S":
            self.statements.pop(name, None)
        else:
            self.portals.pop(name, None)
        self.wire.send(b"3")

    def _portal(self, name: str) -> Portal:
        if name not in self.portals:
            raise QueryFailed("34000", f'portal "{name}" does not exist')
        return self.portals[name]
