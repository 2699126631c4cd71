"""MySQL/MariaDB change data capture from the ROW binlog, read with the ``mysql-replication`` package.

- Column names come from the binlog itself (``binlog_row_metadata=FULL``), so events written before an
  ALTER TABLE decode with the columns they were written with, never shifted.
- Positions are GTIDs: a snapshot is taken in a ``START TRANSACTION WITH CONSISTENT SNAPSHOT`` whose binlog
  coordinates (``binlog_snapshot_file/position``, MariaDB) become a GTID with ``BINLOG_GTID_POS``; streaming
  resumes with that GTID (``auto_position``), because with ``is_mariadb=True`` the package ignores a
  file/offset resume. Within a GTID domain sequence numbers order the log: the position value is the
  sequence number. ``gtid_strict_mode`` guarantees that order; without it (MariaDB's default) the order
  usually holds too, and a GTID that breaks it stops the stream with an error (``binlog.check_order``).
- One blocking ``BinLogStreamReader`` per run reads in a background thread (:class:`Pump`) and hands whole
  transactions to the loader through a bounded queue; a run without ``follow`` ends once it has passed the
  ``@@gtid_binlog_pos`` seen at its start. A transaction touching none of the cdc tables still moves their
  positions (passed on at most once per idle period), so a quiet table is not "lost" when old binlogs are
  purged.
- The package reconnects by itself after a dropped connection; the reader then resumes after the last whole
  transaction it read, so nothing is replayed into the batch being built.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import functools
import json
import queue
import re
import time
import zlib
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.cdc import CdcReader, Change, Op, Position, Problem, RowBatch, Snapshot, Txn
from lakeforge.sources.mysql.binlog import Pump, domains, gtid_position, reached_all
from lakeforge.sources.mysql.rows import event_rows

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef
    from lakeforge.sources.mysql.source import MySQLSource

_EPOCH = dt.datetime(1970, 1, 1)
_PATIENCE = 30.0
"""Seconds of silence before catching up (connecting, the server seeking the start GTID) that still count as
idle: only then does a run end without having reached the binlog end seen at start."""


class MySQLCdc(CdcReader):
    LOG_NAME: ClassVar[str] = "binlog"
    source: MySQLSource

    def __init__(self, source: MySQLSource, plans: list[TablePlan]) -> None:
        super().__init__(source, plans)
        self.server_id = source.config.server_id or 100_000 + zlib.crc32(source.name.encode()) % 1_000_000
        self._pump: Pump | None = None
        self._seen: dict[TableRef, dict[str, Any]] = {}
        """Binlog column descriptions by table and name: the types of columns the catalog no longer has."""

    def _vars(self) -> dict[str, str]:
        rows = self.source.query(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ('log_bin', 'binlog_format', 'binlog_row_image', "
            "'binlog_row_metadata', 'gtid_strict_mode', 'server_id', 'version')"
        )
        return {str(k): str(v) for k, v in rows}

    @functools.cached_property
    def is_mariadb(self) -> bool:
        """Asked once per reader (several steps branch on it; the server does not change)."""
        return "mariadb" in self._vars().get("version", "").lower()

    def check(self) -> list[Problem]:
        v = self._vars()
        problems = []
        restart = "in my.cnf [mysqld] and restart the server"
        if "mariadb" not in v.get("version", "").lower():
            # positions are MariaDB GTIDs (domain-server-sequence); MySQL's uuid:interval GTID sets are not
            # handled, and no MySQL server was available to test against: refuse rather than guess
            problems.append(
                Problem(
                    f"server {v.get('version')} is MySQL: lakeforge's binlog CDC supports MariaDB 10.5+ only so far",
                    "use mode: incremental for these tables, or MariaDB",
                )
            )
        if v.get("log_bin", "OFF").upper() not in ("ON", "1"):
            problems.append(Problem("the binary log is off", f"set log_bin=binlog and server_id=1 {restart}"))
        if v.get("binlog_format", "").upper() != "ROW":
            problems.append(
                Problem(
                    f"binlog_format is {v.get('binlog_format')}, CDC needs ROW",
                    "SET GLOBAL binlog_format = 'ROW'; and binlog_format=ROW " + restart,
                )
            )
        if v.get("binlog_row_image", "").upper() != "FULL":
            problems.append(
                Problem(
                    f"binlog_row_image is {v.get('binlog_row_image')}, CDC needs FULL",
                    "SET GLOBAL binlog_row_image = 'FULL'; and binlog_row_image=FULL " + restart,
                )
            )
        if "binlog_row_metadata" in v and v["binlog_row_metadata"].upper() != "FULL":
            problems.append(
                Problem(
                    f"binlog_row_metadata is {v['binlog_row_metadata']}: column names would be "
                    "guessed and could shift after ALTER TABLE",
                    "SET GLOBAL binlog_row_metadata = 'FULL'; and binlog_row_metadata=FULL " + restart,
                )
            )
        if "binlog_row_metadata" not in v:
            problems.append(
                Problem(
                    "this server has no binlog_row_metadata (MySQL < 8.0.1 / MariaDB < 10.5)",
                    "upgrade to MySQL 8 or MariaDB 10.5+",
                )
            )
        # gtid_strict_mode off (MariaDB's default) is accepted: what it would prevent, a GTID whose sequence
        # number goes backwards within a domain, stops the stream where it appears (binlog.check_order)
        if str(self.server_id) == v.get("server_id"):
            problems.append(
                Problem(
                    f"server_id {self.server_id} is the server's own",
                    "set server_id for this source in lakeforge.yml to an unused id",
                )
            )
        grants = " ".join(str(r[0]) for r in self.source.query("SHOW GRANTS")).upper()
        if "ALL PRIVILEGES ON *.*" not in grants and "REPLICATION SLAVE" not in grants:
            user = self.source.config.user or "root"
            problems.append(
                Problem(
                    f"user '{user}' cannot read the binlog",
                    f"GRANT REPLICATION SLAVE, REPLICATION CLIENT ON *.* TO '{user}'@'%';",
                )
            )
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
        conn = pymysql.connect(
            host=cfg.host,
            port=cfg.port or 3306,
            user=cfg.user or "root",
            password=cfg.password.get_secret_value() if cfg.password else "",
            database=self.source.database,
            charset="utf8mb4",
            autocommit=True,
            init_command="SET time_zone = '+00:00'",
            cursorclass=pymysql.cursors.SSCursor,
        )
        try:
            with self.source.errors("cannot start a consistent snapshot"), conn.cursor() as cur:
                cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
                cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                cur.execute("SHOW STATUS LIKE 'binlog_snapshot_%'")
                status = {str(k): str(v) for k, v in cur.fetchall()}
                cur.execute(
                    "SELECT BINLOG_GTID_POS(%s, %s)",
                    (status["Binlog_snapshot_file"], int(status["Binlog_snapshot_position"])),
                )
                gtid = str(cur.fetchone()[0] or "")

            def read(plan: TablePlan, batch_size: int) -> Iterator[pa.RecordBatch]:
                return self._read(conn, plan, batch_size)

            # range tasks cannot join this transaction: they take their own under the read lock (shared "binlog")
            yield Snapshot(gtid_position(gtid), read, {"binlog": "gtid"} if self.is_mariadb else {})
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    def snapshot_position(self, at: dict[str, Any]) -> Position | None:
        """The GTID the range tasks' shared snapshot was taken at (``distributed.mysql``)."""
        return gtid_position(str(at["gtid"])) if at.get("gtid") else None

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
        """Transactions after ``start`` from a blocking binlog reader in a background thread.

        Yields None when idle for ``idle_seconds`` once caught up, and once right after reaching the binlog end
        as it was when streaming started (``@@gtid_binlog_pos``), so a run without ``follow`` ends even on a
        source that never goes quiet. Before catching up, silence must last ``_PATIENCE`` seconds.
        """
        start_text = start.text if start is not None else ""
        end = self.source.query("SELECT @@gtid_binlog_pos")[0][0] if self.is_mariadb else ""
        target = domains(str(end or ""))
        self._pump = Pump(self, start_text)
        self._pump.start()
        caught_up = reached_all(domains(start_text), target)
        held: Txn | None = None
        quiet = time.monotonic()
        try:
            while True:
                wait = idle_seconds if caught_up else max(idle_seconds, _PATIENCE)
                try:
                    item = self._pump.queue.get(timeout=wait)
                except queue.Empty:
                    if held is not None:
                        yield held
                        held = None
                    quiet = time.monotonic()
                    yield None
                    continue
                if isinstance(item, BaseException):
                    with self.source.errors("binlog stream failed"):
                        raise item
                reached = not caught_up and reached_all(domains(item.position.text), target)
                caught_up = caught_up or reached
                if item.changes or reached or time.monotonic() - quiet >= idle_seconds:
                    # a transaction of other tables only moves the position: pass one on now and then
                    held = None
                    quiet = time.monotonic()
                    yield item
                else:
                    held = item
                if reached:
                    yield None
        finally:
            self._stop_pump()

    def _stop_pump(self) -> None:
        if self._pump is not None:
            self._pump.stop()
            self._pump = None

    def table_ref(self, schema: str, table: str) -> Any:
        from lakeforge.sources.base import TableRef

        ref = TableRef(schema, table)
        return ref if ref in self.plans else None

    def add_rows(self, event: Any, txn: Txn) -> None:
        from pymysqlreplication.row_event import DeleteRowsEvent, UpdateRowsEvent

        ref = self.table_ref(event.schema, event.table)
        if ref is None:
            return
        self._seen.setdefault(ref, {}).update({c.name: c for c in event.columns})
        images = event_rows(event, tuples=True)
        if images is not None:
            self._add_images(txn, ref, event, images)
            return
        for row in event.rows:
            if isinstance(event, UpdateRowsEvent):
                txn.changes.append(Change(ref, "update", row["after_values"], old_key=row["before_values"]))
            elif isinstance(event, DeleteRowsEvent):
                txn.changes.append(Change(ref, "delete", row["values"]))
            else:
                txn.changes.append(Change(ref, "insert", row["values"]))

    def _add_images(self, txn: Txn, ref: TableRef, event: Any, images: list[Any]) -> None:
        """The row images :func:`~lakeforge.sources.mysql.rows.event_rows` decoded (tuples in the event's
        column order; an UPDATE's before and after images alternate) join the transaction's batch of the
        table: the last one, when the previous event was of the same table and columns."""
        names = [c.name for c in event.columns]
        last = txn.changes[-1] if txn.changes else None
        if type(last) is RowBatch and last.table == ref and last.columns == names:
            batch = last
        else:
            batch = RowBatch(ref, names)
            txn.changes.append(batch)
        kind = event.event_type
        if kind in _UPDATE_EVENTS:
            befores, afters = images[::2], images[1::2]
            try:
                keys = self.plans[ref].merge_key()
            except SourceError:  # a merge_key naming no column: the loader says so
                keys = []
            _key_changes(batch, keys, befores, afters)
            batch.ops += ["update"] * len(afters)
            batch.rows += afters
        else:
            op: Op = "delete" if kind in _DELETE_EVENTS else "insert"
            batch.ops += [op] * len(images)
            batch.rows += images

    def ack(self, position: Position) -> None:
        """Nothing to tell the server: a binlog reader holds no slot; positions live in the lake."""

    def close(self) -> None:
        self._stop_pump()

    def replan(self, ref: TableRef, columns: list[str]) -> TablePlan:
        """The plan after the binlog's columns of ``ref`` changed: the row's columns plus every column planned
        before (an ALTER within one batch must not drop earlier rows' values); a column the catalog no longer
        has (dropped since) gets its type from the binlog's own column description."""
        from lakeforge.lake.naming import lake_column_names
        from lakeforge.sources.base import ColumnPlan, TablePlan
        from lakeforge.sources.mysql.types import map_type

        old = self.plans[ref]
        current = self.source.describe(ref, old.options)
        by_name = {c.name: c for c in [*old.columns, *current.columns]}
        names = [*columns, *(c.name for c in old.columns if c.name not in columns)]
        planned = []
        for name, lake in zip(names, lake_column_names(names, table=ref.qualified), strict=True):
            known = by_name.get(name)
            if known is None:
                data_type, column_type = _binlog_type(self._seen.get(ref, {}).get(name))
                mapped = map_type(data_type, column_type)
                known = ColumnPlan(
                    name,
                    lake,
                    column_type,
                    mapped.select.format(col=self.source.quote(name)),
                    mapped.arrow,
                    mapped.kind,
                )
            planned.append(known)
        plan = TablePlan(old.source, ref, planned, current.primary_key or old.primary_key, 0, old.options)
        self.plans[ref] = plan
        return plan

    def status(self) -> dict[str, Any]:
        v = self._vars()
        current = self.source.query("SELECT @@gtid_binlog_pos")[0][0] if self.is_mariadb else ""
        logs = self.source.query("SHOW BINARY LOGS")
        return {
            "server_id": self.server_id,
            "gtid_binlog_pos": str(current or ""),
            "binlog_files": len(logs),
            "binlog_bytes": sum(int(r[1]) for r in logs),
            "oldest_binlog": logs[0][0] if logs else None,
            "binlog_format": v.get("binlog_format"),
        }

    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        import pyarrow as pa

        target = column.arrow_type
        whole = _whole_column(values, target)
        if whole is not None:
            return whole
        fix = _fixer(target, column.source_type)
        return pa.array([None if v is None else fix(v) for v in values], type=target)


def _whole_column(values: list[Any], target: pa.DataType) -> pa.Array | None:
    """``values`` as ``target`` in one Arrow conversion, where that gives exactly what :func:`_fixer` would
    value by value (the binlog decoders give ints, floats, str, Decimal, date and naive datetime); None
    to go value by value (e.g. a str of bits into an integer, a timedelta into a string, a bool column)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if pa.types.is_timestamp(target) and target.tz:  # naive UTC values; the zero timestamp is NULL
            naive = pa.array(values, pa.timestamp(target.unit))
            zero = pc.equal(naive, pa.scalar(_EPOCH, pa.timestamp(target.unit)))
            return pc.if_else(zero, None, naive).cast(target)
        if (
            pa.types.is_integer(target)
            or pa.types.is_floating(target)
            or pa.types.is_string(target)
            or pa.types.is_decimal(target)
            or pa.types.is_date(target)
            or pa.types.is_timestamp(target)
        ):
            return pa.array(values, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError):
        return None
    return None


def _key_changes(batch: RowBatch, keys: list[str], befores: list[Any], afters: list[Any]) -> None:
    """Record in ``batch`` the before image of each UPDATE (about to join it) that changed its key: compared
    a key column at a time over the whole event, so an event that changes no key costs no per-row work."""
    names, start = batch.columns, len(batch.ops)
    if not keys or any(k not in names for k in keys):
        changed = range(len(afters))  # no key known here: every update takes the general path
    else:
        changed_set: set[int] = set()
        for key in keys:
            i = names.index(key)
            old, new = [b[i] for b in befores], [a[i] for a in afters]
            if old != new:
                changed_set.update(j for j, (o, n) in enumerate(zip(old, new, strict=True)) if o != n)
        changed = sorted(changed_set)  # type: ignore[assignment]
    for j in changed:
        batch.old_keys[start + j] = dict(zip(names, befores[j], strict=True))


_UPDATE_EVENTS, _DELETE_EVENTS = (24, 31), (25, 32)
"""Binlog event type codes (v1, v2) of UPDATE_ROWS and DELETE_ROWS (WRITE_ROWS: 23, 30)."""


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


_BINLOG_TYPES = {
    1: "tinyint",
    2: "smallint",
    3: "int",
    4: "float",
    5: "double",
    7: "timestamp",
    8: "bigint",
    9: "mediumint",
    10: "date",
    11: "time",
    12: "datetime",
    13: "year",
    17: "timestamp",
    18: "datetime",
    19: "time",
    245: "json",
    247: "enum",
    248: "set",
    255: "geometry",
}


def _binlog_type(column: Any) -> tuple[str, str]:
    """(DATA_TYPE, COLUMN_TYPE) as information_schema would spell them, from a binlog column description."""
    if column is None:
        return "unknown", "unknown"
    code = int(column.type)
    binary = getattr(column, "collation_name", None) == "binary"
    if code == 246:
        return "decimal", f"decimal({column.precision},{column.decimals})"
    if code == 16:
        return "bit", f"bit({column.bits})"
    if code in (15, 253, 254):
        return ("varbinary", "varbinary") if binary else ("varchar", "varchar")
    if code == 252:
        return ("blob", "blob") if binary else ("text", "text")
    name = _BINLOG_TYPES.get(code, "unknown")
    return name, f"{name} unsigned" if getattr(column, "unsigned", False) else name
