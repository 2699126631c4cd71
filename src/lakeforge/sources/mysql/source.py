"""MySQL/MariaDB: catalog and small queries with PyMySQL, row streams with connectorx."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import MySQLSource as MySQLConfig
from lakeforge.config.models import TableConfig
from lakeforge.errors import SourceError, SourceUnreachable, TableNotFound
from lakeforge.lake.naming import lake_column_names
from lakeforge.sources.base import ColumnPlan, CursorValue, TablePlan, TableRef
from lakeforge.sources.mysql.types import map_type
from lakeforge.sources.sql import SqlSource

if TYPE_CHECKING:
    import pyarrow as pa
    import pymysql

_COLUMNS_SQL = """
SELECT COLUMN_NAME, DATA_TYPE, COLUMN_TYPE FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s ORDER BY ORDINAL_POSITION
"""
_PK_SQL = """
SELECT COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION
"""
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_TERMINAL_CODES = {1044, 1045, 1049, 1142, 1143, 1146, 1698}


class MySQLSource(SqlSource):
    type_name: ClassVar[str] = "mysql"
    CONFIG: ClassVar[type[MySQLConfig]] = MySQLConfig
    SUPPORTS_CDC: ClassVar[bool] = True
    DEFAULT_SCHEMA: ClassVar[str] = ""
    config: MySQLConfig
    pace_from_bytes: int = 256 * 1024 * 1024
    """Estimated table size (rows x estimated Arrow row bytes) from which reads are paced (tests set 0)."""

    def __init__(self, name: str, config: MySQLConfig) -> None:
        super().__init__(name, config)
        self._conn: pymysql.connections.Connection[Any] | None = None

    @property
    def database(self) -> str:
        return self.config.database or ""

    @property
    def dsn(self) -> str:
        # prefer_socket=false: read from the configured host:port, not a local socket the driver discovers
        return self.config.dsn("mysql") + "?prefer_socket=false"

    def connect(self) -> pymysql.connections.Connection[Any]:
        """A new PyMySQL connection (autocommit, UTC session): the catalog's, or a reader's own."""
        from lakeforge.sources.mysql import driver

        with self.errors("cannot connect"):
            return driver.connect(
                host=self.config.host,
                port=self.config.port or 3306,
                user=self.config.user or "root",
                password=self.config.password.get_secret_value() if self.config.password else "",
                database=self.database,
                connect_timeout=self.config.connect_timeout,
                autocommit=True,
                charset="utf8mb4",
                init_command="SET time_zone = '+00:00'",
            )

    def _connect(self) -> pymysql.connections.Connection[Any]:
        if self._conn is None or not self._conn.open:
            self._conn = self.connect()
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except SourceError:
            raise
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as exc:  # connectorx panics derive from BaseException
            import pymysql

            code = exc.args[0] if isinstance(exc, pymysql.MySQLError) and exc.args else None
            text = str(exc.args[1]) if isinstance(code, int) and len(exc.args) > 1 else str(exc)
            text = self.scrub(text.strip().splitlines()[0] if text.strip() else type(exc).__name__)
            terminal = code in _TERMINAL_CODES
            at = f"{self.config.host}:{self.config.port or 3306}/{self.database}"
            if isinstance(exc, pymysql.OperationalError) and ("connect" in doing or code in (2003, 2005, 1045)):
                raise SourceUnreachable(self.name, f"{doing} ({at}): {text}", transient=not terminal) from None
            transient = code in (2006, 2013) or any(
                t in text.lower()
                for t in (
                    "connection reset",
                    "broken pipe",
                    "lost connection",
                    "gone away",
                    "io error",
                    "bytes remaining on stream",
                    "unexpected eof",
                )
            )
            raise SourceError(self.name, f"{doing}: {text}{_hint(text)}", transient=transient) from None

    def query(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        conn = self._connect()
        with self.errors("query failed"), conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())

    def check(self) -> dict[str, str]:
        rows = self.query("SELECT VERSION(), @@log_bin, @@binlog_format")
        return {"version": str(rows[0][0]), "log_bin": str(rows[0][1]), "binlog_format": str(rows[0][2])}

    def list_tables(self) -> list[TableRef]:
        rows = self.query(
            "SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = %s AND TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED') "
            "ORDER BY TABLE_NAME",
            (self.database,),
        )
        return [TableRef(s, t, "view" if k == "VIEW" else "table") for s, t, k in rows]

    def describe(self, ref: TableRef, options: TableConfig) -> TablePlan:
        rows = self.query(_COLUMNS_SQL, (ref.schema, ref.name))
        if not rows:
            raise TableNotFound(self.name, f"table {ref.qualified} does not exist or has no readable columns")
        names = lake_column_names([r[0] for r in rows], table=ref.qualified)
        columns = []
        for (name, data_type, column_type), lake_name in zip(rows, names, strict=True):
            planned = map_type(data_type, column_type)
            select = planned.select.format(col=self.quote(name))
            columns.append(ColumnPlan(name, lake_name, column_type, select, planned.arrow, planned.kind))
        pk = [r[0] for r in self.query(_PK_SQL, (ref.schema, ref.name))]
        est = self.query(
            "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
            (ref.schema, ref.name),
        )
        return TablePlan(self.name, ref, columns, pk, int(est[0][0] or 0) if est else 0, options)

    def read(
        self, plan: TablePlan, *, where: str | None = None, batch_size: int, partitions: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """A large table's queries are paced (``sources/mysql/pace.py``): the server pauses every ``batch_size``
        rows until the consumer has taken the batches before, so connectorx's read-ahead stays a few batches.
        Tables estimated below :attr:`pace_from_bytes` are read unpaced (their read-ahead is bounded by their
        size, and the gate's per-row counter is not worth it); the source's ``pace`` setting overrides."""
        from lakeforge.sources.base import row_bytes
        from lakeforge.sources.convert import conform
        from lakeforge.sources.mysql.pace import paced_condition
        from lakeforge.sources.parallel import read_partitioned

        schema = plan.arrow_schema()
        conditions = self._partition_conditions(plan, where, partitions)
        paced = self.config.pace == "always" or (
            self.config.pace == "auto" and plan.estimated_rows * row_bytes(schema) >= self.pace_from_bytes
        )
        queries = [self.select_sql(plan, paced_condition(c, batch_size) if paced else c) for c in conditions]
        yield from read_partitioned(self, queries, batch_size, lambda batch: conform(batch, schema))

    def stream(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Stream a SELECT; one built by :meth:`read` (its gate names ``pace.PREFIX_VAR``) is paced."""
        import connectorx as cx

        from lakeforge.sources.mysql.pace import PREFIX_VAR, Pace

        pace = Pace(self, batch_size) if PREFIX_VAR in sql else None
        extra: dict[str, Any] = {"pre_execution_query": pace.setup()} if pace is not None else {}
        try:
            with self.errors("read failed"):
                reader = cx.read_sql(self.dsn, sql, return_type="arrow_stream", batch_size=batch_size, **extra)
            rows = 0
            while True:
                with self.errors("read failed"):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                rows += batch.num_rows
                if pace is not None:
                    pace.allow(rows)  # before the next batch is asked for: connectorx waits holding the GIL
                yield batch
            if pace is not None:
                pace.finished = True
        finally:
            if pace is not None:
                pace.close()

    def table_sql(self, ref: TableRef) -> str:
        return f"{self.quote(ref.schema)}.{self.quote(ref.name)}"

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    def literal(self, value: CursorValue, column: ColumnPlan) -> str:
        if isinstance(value, bool):
            return "1" if value else "0"
        if isinstance(value, int | decimal.Decimal | float):
            return repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, dt.datetime):
            if column.kind == "datetime_tz":
                aware = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
                micros = (aware - _EPOCH) // dt.timedelta(microseconds=1)
                return f"FROM_UNIXTIME({micros // 1_000_000}.{micros % 1_000_000:06d})"
            return f"CAST('{value.replace(tzinfo=None).isoformat(sep=' ')}' AS DATETIME(6))"
        if isinstance(value, dt.date):
            return f"CAST('{value.isoformat()}' AS DATE)"
        return "'" + str(value).replace("\\", "\\\\").replace("'", "''") + "'"

    def minus(self, literal: str, amount: float, column: ColumnPlan) -> str:
        if column.kind in ("datetime", "datetime_tz"):
            return f"({literal} - INTERVAL {int(amount * 1_000_000)} MICROSECOND)"
        if column.kind == "date":
            return f"({literal} - INTERVAL {int(amount // 86400)} DAY)"
        return f"({literal} - {amount})"


def _hint(text: str) -> str:
    """What to do about a server limit a message names."""
    if "max_allowed_packet" in text:
        return (
            " (a row is larger than the server's max_allowed_packet: raise it on the MariaDB/MySQL server, e.g. "
            "SET GLOBAL max_allowed_packet = 1073741824 and max_allowed_packet=1G under [mysqld] in its config)"
        )
    return ""
