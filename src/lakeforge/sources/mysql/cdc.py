"""MySQL/MariaDB change data capture from the ROW binlog, read with the ``mysql-replication`` package.

- Column names come from the binlog itself (``binlog_row_metadata=FULL``), so events written before an
  ALTER TABLE decode with the columns they were written with, never shifted.
- Positions are GTIDs: a snapshot is taken in a ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` whose binlog
  coordinates (``binlog_snapshot_file/position``, MariaDB) become a GTID with ``BINLOG_GTID_POS``; streaming
  resumes with that GTID (``auto_position``), because with ``is_mariadb=True`` the package ignores a
  file/offset resume. One GTID domain (``gtid_strict_mode``) orders the log: the position value is its
  sequence number.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import re
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.cdc import CdcReader, Change, Position, Problem, Snapshot, Txn

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan, TablePlan
    from lakeforge.sources.mysql.source import MySQLSource

_EPOCH = dt.datetime(1970, 1, 1)
_TRUNCATE = re.compile(r"^\s*TRUNCATE\s+(?:TABLE\s+)?(?:`?([^`.\s]+)`?\.)?`?([^`\s;]+)`?", re.I)


def gtid_position(text: str) -> Position:
    """``0-1-42`` (one domain) -> Position(42); several domains are summed (documented limit)."""
    text = (text or "").strip()
    value = sum(int(part.rsplit("-", 1)[1]) for part in text.split(",") if part.strip())
    return Position(value, text)


class MySQLCdc(CdcReader):
    LOG_NAME: ClassVar[str] = "binlog"
    source: MySQLSource

    def __init__(self, source: MySQLSource, plans: list[TablePlan]) -> None:
        super().__init__(source, plans)
        self.server_id = source.config.server_id or 100_000 + zlib.crc32(source.name.encode()) % 1_000_000
        self._stream: Any = None

    def _vars(self) -> dict[str, str]:
        rows = self.source.query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', "
            "'binlog_row_metadata', 'gtid_strict_mode', 'server_id', 'version')")
        return {str(k): str(v) for k, v in rows}

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self._vars().get("version", "").lower()

    def check(self) -> list[Problem]:
        v = self._vars()
        problems = []
        restart = "in my.cnf [mysqld] and restart the server"
        if v.get("log_bin", "OFF").upper() not in ("ON", "1"):
            problems.append(Problem("the binary log is off", f"set log_bin=binlog and server_id=1 {restart}"))
        if v.get("binlog_format", "").upper() != "ROW":
            problems.append(Problem(f"binlog_format is {v.get('binlog_format')}, CDC needs ROW",
                                    "SET GLOBAL binlog_format = 'ROW'; and binlog_format=ROW " + restart))
        if v.get("binlog_row_image", "").upper() != "FULL":
            problems.append(Problem(f"binlog_row_image is {v.get('binlog_row_image')}, CDC needs FULL",
                                    "SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image=FULL " + restart))
        if "binlog_row_metadata" in v and v["binlog_row_metadata"].upper() != "FULL":
            problems.append(Problem(f"binlog_row_metadata is {v['binlog_row_metadata']}: column names would be "
                                    "guessed and could shift after ALTER TABLE",
                                    "SET GLOBAL binlog_row_metadata = 'FULL'; and binlog_row_metadata=FULL "
                                    + restart))
        if "binlog_row_metadata" not in v:
            problems.append(Problem("this server has no binlog_row_metadata (MySQL < 8.0.1 / MariaDB < 10.5)",
                                    "upgrade to MySQL 8 or MariaDB 10.5+"))
        if "mariadb" in v.get("version", "").lower() and v.get("gtid_strict_mode", "OFF").upper() not in ("ON", "1"):
            problems.append(Problem("gtid_strict_mode is off: GTID positions may not order the binlog",
                                    "SET GLOBAL gtid_strict_mode = 1; and gtid_strict_mode=1 " + restart))
        if str(self.server_id) == v.get("server_id"):
            problems.append(Problem(f"server_id {self.server_id} is the server's own",
                                    "set server_id for this source in lakeforge.yml to an unused id"))
        grants = " ".join(str(r[0]) for r in self.source.query("SHOW GRANTS")).upper()
        if "ALL PRIVILEGES ON *.*" not in grants and "REPLICATION SLAVE" not in grants:
            user = self.source.config.user or "root"
            problems.append(Problem(f"user '{user}' cannot read the binlog",
                                    f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';"))
        return problems

    def prepare(self) -> Position | None:
        """The GTID position at the start of the oldest binlog still on the server."""
        logs = self.source.query("SHOW BINARY LOGS")
        if not logs:
            raise SourceError(self.source.name, "the server has no binary logs (log_bin is off)")
        first = self.source.query("SELECT BINLOG_GTID_POS(%s, 4)", (logs[0][0],)) if self.is_mariadb else [("",)]
        return gtid_position(str(first[0][0] or ""))

    @contextlib.contextmanager
    def snapshot(self, plans: list[TablePlan]) -> Iterator[Snapshot]:
        import pymysql

        cfg = self.source.config
        conn = pymysql.connect(host=cfg.host, port=cfg.port or 3306, user=cfg.user or "root",
                               password=cfg.password.get_secret_value() if cfg.password else "",
                               database=self.source.database, charset="utf8mb4", autocommit=True,
                               init_command="SET time_zone = '+00:00'", cursorclass=pymysql.cursors.SSCursor)
        try:
            with self.source.errors("cannot start a consistent snapshot"), conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {str(k): str(v) for k, v in cur.fetchall()}
                cur.execute("SELECT BINLOG_GTID_POS(%s, %s)",
                            (status["Binlog_snapshot_file"], int(status["Binlog_snapshot_position"])))
                gtid = str(cur.fetchone()[0] or "")

            def read(plan: TablePlan, batch_size: int) -> Iterator[pa.RecordBatch]:
                return self._read(conn, plan, batch_size)

            yield Snapshot(gtid_position(gtid), read)
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def _read(self, conn: Any, plan: TablePlan, batch_size: int) -> Iterator[pa.RecordBatch]:
        import pyarrow as pa

        from lakeforge.sources.convert import conform_array

        schema = plan.arrow_schema()
        with self.source.errors("snapshot read failed"), conn.cursor() as cur:
            cur.execute(self.source.select_sql(plan))
            while True:
                rows = cur.fetchmany(min(batch_size, 50_000))
                if not rows:
                    break
                arrays = []
                for i, col in enumerate(plan.columns):
                    values = [r[i] for r in rows]
                    try:
                        arrays.append(conform_array(pa.array(values), col.arrow_type))
                    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
                        arrays.append(self.to_arrow(values, col))
                yield pa.RecordBatch.from_arrays(arrays, schema=schema)

    def changes(self, start: Position | None, idle_seconds: float) -> Iterator[Txn | None]:
        try:
            from pymysqlreplication import BinLogStreamReader
            from pymysqlreplication.event import GtidEvent, MariadbGtidEvent, QueryEvent, XidEvent
            from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent, WriteRowsEvent
        except ImportError:
            from lakeforge.errors import MissingExtraError

            raise MissingExtraError("mysql-replication", "cdc") from None
        cfg = self.source.config
        settings = {"host": cfg.host, "port": cfg.port or 3306, "user": cfg.user or "root",
                    "passwd": cfg.password.get_secret_value() if cfg.password else ""}
        schemas = sorted({r.schema for r in self.plans})
        mariadb = self.is_mariadb
        self._stream = BinLogStreamReader(
            connection_settings=settings, server_id=self.server_id, blocking=False, is_mariadb=mariadb,
            auto_position=start.text if start is not None else "", resume_stream=True,
            only_events=[MariadbGtidEvent, GtidEvent, QueryEvent, XidEvent, WriteRowsEvent, UpdateRowsEvent,
                         DeleteRowsEvent], only_schemas=None, slave_heartbeat=1, enable_logging=False)
        gtid = start.text if start is not None else ""
        txn: Txn | None = None
        import time

        while True:
            got = False
            with self.source.errors("binlog stream failed"):
                for event in self._stream:
                    got = True
                    if isinstance(event, MariadbGtidEvent | GtidEvent):
                        gtid = _advance(gtid, event.gtid)
                        txn = Txn(gtid_position(gtid), dt.datetime.fromtimestamp(event.timestamp, dt.UTC))
                    elif txn is None:
                        continue
                    elif isinstance(event, XidEvent):
                        yield txn
                        txn = None
                    elif isinstance(event, QueryEvent):
                        query = event.query if isinstance(event.query, str) else event.query.decode()
                        if query.strip().upper() == "BEGIN":
                            continue
                        match = _TRUNCATE.match(query)
                        if match:
                            schema = match.group(1) or (event.schema.decode() if isinstance(event.schema, bytes)
                                                        else event.schema)
                            ref = self._ref(schema, match.group(2))
                            if ref is not None:
                                txn.changes.append(Change(ref, "truncate"))
                        yield txn
                        txn = None
                    else:
                        self._rows(event, txn, UpdateRowsEvent, DeleteRowsEvent)
            if not got:
                # non-blocking: the stream ended at the binlog's end; reconnect from where we are
                self._stream.close()
                yield None
                time.sleep(min(idle_seconds, 0.2))
                self._stream = BinLogStreamReader(
                    connection_settings=settings, server_id=self.server_id, blocking=False, is_mariadb=mariadb,
                    auto_position=gtid, resume_stream=True,
                    only_events=[MariadbGtidEvent, GtidEvent, QueryEvent, XidEvent, WriteRowsEvent,
                                 UpdateRowsEvent, DeleteRowsEvent], enable_logging=False)
            _ = schemas

    def _ref(self, schema: str, table: str) -> Any:
        from lakeforge.sources.base import TableRef

        ref = TableRef(schema, table)
        return ref if ref in self.plans else None

    def _rows(self, event: Any, txn: Txn, update_cls: type, delete_cls: type) -> None:
        ref = self._ref(event.schema, event.table)
        if ref is None:
            return
        for row in event.rows:
            if isinstance(event, update_cls):
                txn.changes.append(Change(ref, "update", row["after_values"], old_key=row["before_values"]))
            elif isinstance(event, delete_cls):
                txn.changes.append(Change(ref, "delete", row["values"]))
            else:
                txn.changes.append(Change(ref, "insert", row["values"]))

    def ack(self, position: Position) -> None:
        """Nothing to tell the server: a binlog reader holds no slot; positions live in the lake."""

    def close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
            self._stream = None

    def status(self) -> dict[str, Any]:
        v = self._vars()
        current = self.source.query("SELECT @@gtid_binlog_pos")[0][0] if self.is_mariadb else ""
        logs = self.source.query("SHOW BINARY LOGS")
        return {"server_id": self.server_id, "gtid_binlog_pos": str(current or ""),
                "binlog_files": len(logs), "binlog_bytes": sum(int(r[1]) for r in logs),
                "oldest_binlog": logs[0][0] if logs else None, "binlog_format": v.get("binlog_format")}

    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        import pyarrow as pa

        target = column.arrow_type
        fix = _fixer(target, column.source_type)
        return pa.array([None if v is None else fix(v) for v in values], type=target)


def _advance(current: str, gtid: str) -> str:
    """The GTID position after ``gtid``: replaces its domain's entry in ``current``."""
    domain = gtid.split("-", 1)[0]
    parts = [p for p in current.split(",") if p.strip() and p.split("-", 1)[0] != domain]
    return ",".join([*parts, gtid])


def _fixer(target: pa.DataType, source_type: str) -> Any:
    import pyarrow as pa

    if pa.types.is_timestamp(target) and target.tz:
        return lambda v: None if v == _EPOCH else (v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v)
    if pa.types.is_decimal(target):
        return lambda v: decimal.Decimal(v) if isinstance(v, int | str) else v
    if pa.types.is_boolean(target):
        return lambda v: bool(int(v, 2)) if isinstance(v, str) else bool(v)
    if pa.types.is_integer(target):
        return lambda v: int(v, 2) if isinstance(v, str) else int(v)
    if pa.types.is_string(target):
        return lambda v: _text(v, source_type)
    if pa.types.is_binary(target):
        return lambda v: v.encode() if isinstance(v, str) else v
    return lambda v: v


def _text(value: Any, source_type: str) -> str:
    if isinstance(value, dt.timedelta):
        total = int(value.total_seconds() * 1_000_000) if value.days >= 0 else -int(-value.total_seconds() * 1e6)
        sign, total = ("-", -total) if total < 0 else ("", total)
        hours, rest = divmod(total, 3_600_000_000)
        minutes, rest = divmod(rest, 60_000_000)
        seconds, micros = divmod(rest, 1_000_000)
        fsp = re.search(r"\((\d)\)", source_type)
        frac = f".{micros:06d}"[: int(fsp.group(1)) + 1] if fsp and int(fsp.group(1)) else ""
        return f"{sign}{hours:02d}:{minutes:02d}:{seconds:02d}{frac}"
    if isinstance(value, set | frozenset):
        return ",".join(sorted(value))
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(", ", ": "))
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)
