"""PostgreSQL: catalog queries and row streams with ADBC, other small queries (cursor bounds, CDC) with psycopg 3."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.config.models import PostgresSource as PostgresConfig
from lakeforge.config.models import TableConfig
from lakeforge.errors import SourceError, SourceUnreachable, TableNotFound
from lakeforge.lake.naming import lake_column_names
from lakeforge.sources.base import ColumnPlan, CursorValue, TablePlan, TableRef
from lakeforge.sources.postgres.catalog import AdbcCatalog
from lakeforge.sources.postgres.types import map_type, render
from lakeforge.sources.sql import SqlSource

if TYPE_CHECKING:
    import psycopg
    import pyarrow as pa

_COLUMNS_SQL = """
SELECT a.attname::text,
       format_type(coalesce(nullif(t.typbasetype, 0), a.atttypid),
                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       bt.typname::text, bt.typtype::text, et.typname::text, a.attndims::int4
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type bt ON bt.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE n.nspname = {} AND c.relname = {} AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""
_PK_SQL = """
SELECT a.attname::text
FROM pg_index i
JOIN pg_class c ON c.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey::int2[])
WHERE n.nspname = {} AND c.relname = {} AND i.indisprimary
ORDER BY array_position(i.indkey::int2[], a.attnum)
"""
_TABLES_SQL = """
SELECT n.nspname::text, c.relname::text, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition AND n.nspname = ANY({}::name[])
  AND has_table_privilege(c.oid, 'SELECT')
ORDER BY n.nspname, c.relname
"""
BATCH_BYTES = 4 * 2**20
"""ADBC's batch size hint (its default is 16 MiB). With the optimised driver the readers outrun the Delta writer
and keep every queued batch at its largest: wide_1m peaked at 1.0-1.07 GB with 16 MiB batches, ~0.7 GB with
4 MiB (docs/benchmarks.md, Issue #14 round 2)."""
_KINDS = {"r": "table", "p": "table", "v": "view", "m": "materialized_view"}
_TERMINAL = (
    "password authentication failed",
    "does not exist",
    "no password supplied",
    "permission denied",
    "no pg_hba.conf entry",
    "role ",
)


class PostgresSource(SqlSource):
    type_name: ClassVar[str] = "postgres"
    CONFIG: ClassVar[type[PostgresConfig]] = PostgresConfig
    SUPPORTS_CDC: ClassVar[bool] = True
    DEFAULT_SCHEMA: ClassVar[str] = "public"
    config: PostgresConfig

    def __init__(self, name: str, config: PostgresConfig) -> None:
        super().__init__(name, config)
        self._conn: psycopg.Connection[Any] | None = None
        self._catalog = AdbcCatalog(self.dsn)

    # -- connections --------------------------------------------------------------------------------
    @property
    def dsn(self) -> str:
        return self.config.dsn("postgresql")

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        if self._conn is None or self._conn.closed:
            with self.errors("cannot connect"):
                self._conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.config.connect_timeout)
        return self._conn

    def close(self) -> None:
        self._catalog.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @contextlib.contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn driver errors into SourceErrors naming this source, without its password."""
        try:
            yield
        except SourceError:
            raise
        except Exception as exc:
            psycopg = sys.modules.get("psycopg")  # not imported: the error is not psycopg's (catalog.py)
            text = self.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            terminal = any(t in text for t in _TERMINAL)
            at = f"{self.config.host}:{self.config.port or 5432}/{self.config.database}"
            if (psycopg is not None and isinstance(exc, psycopg.OperationalError)) or "connect" in doing:
                raise SourceUnreachable(self.name, f"{doing} ({at}): {text}", transient=not terminal) from None
            transient = any(t in text.lower() for t in ("connection", "terminat", "reset", "timeout"))
            raise SourceError(self.name, f"{doing}: {text}", transient=transient and not terminal) from None

    def query(self, sql: str, params: tuple[Any, ...] | None = None) -> list[tuple[Any, ...]]:
        conn = self._connect()
        with self.errors("query failed"), conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall()) if cur.description else []

    def catalog(self, sql: str, *params: str | list[str]) -> list[tuple[Any, ...]]:
        """A catalog query through ADBC (text and integers only; ``{}`` placeholders; catalog.py)."""
        with self.errors("cannot connect (ADBC)" if not self._catalog.connected else "query failed"):
            return self._catalog.rows(sql, *params)

    # -- catalog ------------------------------------------------------------------------------------
    def check(self) -> dict[str, str]:
        rows = self.query("SELECT current_setting('server_version'), current_setting('wal_level')")
        return {"version": f"PostgreSQL {rows[0][0]}", "wal_level": rows[0][1]}

    def list_tables(self) -> list[TableRef]:
        return [TableRef(s, t, _KINDS[k]) for s, t, k in self.catalog(_TABLES_SQL, list(self.config.schemas))]

    def describe(self, ref: TableRef, options: TableConfig) -> TablePlan:
        rows = self.catalog(_COLUMNS_SQL, ref.schema, ref.name)
        if not rows:
            raise TableNotFound(self.name, f"table {ref.qualified} does not exist or has no readable columns")
        names = lake_column_names([r[0] for r in rows], table=ref.qualified)
        columns = []
        for (name, formatted, typname, typtype, element, ndims), lake_name in zip(rows, names, strict=True):
            planned = map_type(typname, formatted, typtype, element, ndims)
            select = render(planned.select, self.quote(name), name)
            columns.append(ColumnPlan(name, lake_name, formatted, select, planned.arrow, planned.kind))
        pk = [r[0] for r in self.catalog(_PK_SQL, ref.schema, ref.name)]
        est = self.catalog(
            "SELECT greatest(c.reltuples, 0)::bigint FROM pg_class c JOIN pg_namespace n "
            "ON n.oid = c.relnamespace WHERE n.nspname = {} AND c.relname = {}",
            ref.schema,
            ref.name,
        )
        return TablePlan(self.name, ref, columns, pk, int(est[0][0]) if est else 0, options)

    # -- rows ---------------------------------------------------------------------------------------
    def read(
        self, plan: TablePlan, *, where: str | None = None, batch_size: int, partitions: int = 1
    ) -> Iterator[pa.RecordBatch]:
        """A whole base table of 8 MiB or more (or any, when ``run.partitions`` > 1 applies) is read by
        several connections in one exported snapshot, in block ranges (``sources/postgres/snapshot.py``).
        Views, small tables and filtered reads (an incremental window, which an index serves better than
        block ranges) are read by one query (or primary-key ranges). Numerics of up to 18 digits travel as
        scaled integers (``sources/postgres/decimals.py``); dates and timestamps are clamped to Delta's range
        on the client (``sources/postgres/ranges.py``)."""
        from lakeforge.sources.convert import conform
        from lakeforge.sources.parallel import read_partitioned
        from lakeforge.sources.postgres import decimals, ranges, snapshot

        schema = plan.arrow_schema()
        scaled = decimals.scaled_columns(plan)
        clamped = ranges.clamped_columns(plan, self.quote)
        fast = ranges.read_plan(decimals.read_plan(plan, scaled), clamped, self.quote)

        def transform(batch: pa.RecordBatch) -> pa.RecordBatch:
            return conform(ranges.clamp(decimals.unscale(batch, scaled), clamped, plan, self.name), schema)

        readers = partitions if partitions > 1 else snapshot.SNAPSHOT_READERS
        whole_table = plan.ref.kind == "table" and where is None
        pages = self._pages(plan.ref) if whole_table and readers > 1 else 0
        if pages < 2 or (partitions <= 1 and pages < snapshot.MIN_PAGES):
            queries = self._partition_queries(fast, where, partitions)
            yield from read_partitioned(self, queries, batch_size, transform)
            return
        yield from self._read_in_snapshot(fast, batch_size, readers, transform)

    def _pages(self, ref: TableRef) -> int:
        rows = self.catalog(
            "SELECT pg_relation_size({}::regclass) / current_setting('block_size')::int", self.table_sql(ref)
        )
        return int(rows[0][0]) if rows else 0

    def _read_in_snapshot(
        self, plan: TablePlan, batch_size: int, readers: int, transform: Callable[[pa.RecordBatch], pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        from lakeforge.sources.parallel import read_partitioned
        from lakeforge.sources.postgres import snapshot

        with contextlib.ExitStack() as stack:
            with self.errors("cannot export a snapshot"):
                snap = stack.enter_context(snapshot.exported(self._catalog, self.table_sql(plan.ref)))
            queries = [self.select_sql(plan, cond) for cond in snapshot.block_ranges(snap.pages, readers)]
            streams = snapshot.SnapshotStreams(self, snap)
            yield from read_partitioned(streams, queries, batch_size, transform)

    def stream(self, sql: str, batch_size: int, *, begin: tuple[str, ...] = ()) -> Iterator[pa.RecordBatch]:
        """ADBC's low-level API, not its DB-API module: ``adbc_driver_manager.dbapi`` imports pandas and
        polars when they are installed (~0.5 s of CPU per process; see docs/benchmarks.md, Profiles).
        ``begin``: statements that open the transaction the query runs in (a shared snapshot)."""
        import adbc_driver_manager as adbc
        import adbc_driver_postgresql
        import pyarrow as pa

        handles: list[Any] = []  # closed in reverse: reader, statement, connection, database
        try:
            with self.errors("cannot connect (ADBC)"):
                handles.append(adbc_driver_postgresql.connect(self.dsn))
                handles.append(adbc.AdbcConnection(handles[-1]))
            with self.errors("read failed"):
                stmt = adbc.AdbcStatement(handles[-1])
                handles.append(stmt)
                for setting in ("SET intervalstyle TO iso_8601", "SET TIME ZONE 'UTC'", *begin):
                    stmt.set_sql_query(setting)
                    stmt.execute_update()
                stmt.set_sql_query(sql)
                stmt.set_options(**{"adbc.postgresql.batch_size_hint_bytes": str(BATCH_BYTES)})
                result, _ = stmt.execute_query()
                reader = pa.RecordBatchReader.from_stream(result)
                handles.append(reader)
            while True:
                with self.errors("read failed"):
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                yield batch
        finally:
            for handle in reversed(handles):
                with contextlib.suppress(Exception):
                    handle.close()

    # -- dialect ------------------------------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    def literal(self, value: CursorValue, column: ColumnPlan) -> str:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | decimal.Decimal | float):
            return repr(value) if isinstance(value, float) else str(value)
        if isinstance(value, dt.datetime):
            cast = "timestamptz" if column.kind == "datetime_tz" else "timestamp"
            return f"'{value.isoformat(sep=' ')}'::{cast}"
        if isinstance(value, dt.date):
            return f"'{value.isoformat()}'::date"
        return "'" + str(value).replace("'", "''") + "'"

    def minus(self, literal: str, amount: float, column: ColumnPlan) -> str:
        if column.kind in ("datetime", "datetime_tz"):
            return f"({literal} - interval '{amount} seconds')"
        if column.kind == "date":
            return f"({literal} - {int(amount // 86400)})"
        return f"({literal} - {amount})"
