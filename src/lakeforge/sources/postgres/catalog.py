"""Catalog queries (tables, columns, keys, sizes) over ADBC, the driver that already reads the rows.

Planning a run needs a handful of catalog queries. Through psycopg they cost its import, ~0.1 s of CPU a
process, which a one-row table's whole run is measured against (docs/benchmarks.md, "Fixed cost of a run",
third pass); ADBC is loaded for the read anyway. Every value these queries return is text or an integer, so
the two drivers give the same Python values. The few parameters (schema and table names) are written into the
SQL as escaped literals: binding them would build Arrow arrays from Python values, which makes pyarrow import
pandas. Other queries (cursor bounds, CDC) keep psycopg, whose Python types they rely on.
"""

from __future__ import annotations

import contextlib
from typing import Any


def literal(value: str | list[str]) -> str:
    """``value`` as a PostgreSQL literal: ``E'...'`` (backslashes and quotes doubled, safe whatever
    ``standard_conforming_strings`` says), a list as ``ARRAY[...]::text[]``."""
    if isinstance(value, list):
        return "ARRAY[" + ", ".join(literal(v) for v in value) + "]::text[]"
    return "E'" + value.replace("\\", "\\\\").replace("'", "''") + "'"


class AdbcCatalog:
    """One ADBC connection for catalog queries, opened on first use."""

    def __init__(self, dsn: str) -> None:
        self._dsn = dsn
        self._handles: list[Any] = []  # database, connection

    @property
    def connected(self) -> bool:
        return bool(self._handles)

    def _connection(self) -> Any:
        import adbc_driver_manager as adbc

        if not self._handles:
            import adbc_driver_postgresql

            database = adbc_driver_postgresql.connect(self._dsn)
            try:
                self._handles = [database, adbc.AdbcConnection(database)]
            except BaseException:
                database.close()
                raise
        return self._handles[-1]

    def execute(self, sql: str) -> None:
        """Run a statement that returns no rows (``BEGIN``, ``COMMIT``)."""
        import adbc_driver_manager as adbc

        statement = adbc.AdbcStatement(self._connection())
        try:
            statement.set_sql_query(sql)
            statement.execute_update()
        finally:
            statement.close()

    def rows(self, sql: str, *params: str | list[str]) -> list[tuple[Any, ...]]:
        """The rows of ``sql``, whose ``{}`` placeholders take ``params`` as literals."""
        import adbc_driver_manager as adbc
        import pyarrow as pa

        statement = adbc.AdbcStatement(self._connection())
        try:
            statement.set_sql_query(sql.format(*(literal(p) for p in params)))
            stream, _ = statement.execute_query()
            table = pa.RecordBatchReader.from_stream(stream).read_all()
        finally:
            statement.close()
        return list(zip(*(column.to_pylist() for column in table.columns), strict=True))

    def close(self) -> None:
        for handle in reversed(self._handles):
            with contextlib.suppress(Exception):
                handle.close()
        self._handles = []
