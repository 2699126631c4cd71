"""DuckDB over the lake: every lake table (Delta or Iceberg) becomes a view ``layer.table``.

Tables are registered as the lake's pyarrow dataset (``Lake.dataset``): DuckDB's delta/iceberg extensions
need a download, and a dataset works for every format (projections and filters push down into the scan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeforgeError
from lakeforge.lake.naming import split_name

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakeforge.lake.base import Lake


class QueryError(LakeforgeError):
    """A SQL query over the lake failed."""


def connect(lake: Lake, *, versions: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with a view per lake table (at ``versions[name]`` when given)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    for name in lake.names():
        register(con, lake, name, (versions or {}).get(name))
    return con


def register(con: duckdb.DuckDBPyConnection, lake: Lake, name: str, version: int | None = None) -> None:
    layer, table = split_name(name)
    hidden = f"__lf_{layer}__{table}"
    con.register(hidden, lake.dataset(name, version))
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
    con.execute(f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM "{hidden}"')


def to_arrow(relation: Any) -> pa.Table:
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return fetch()


def run_sql(lake: Lake, query: str) -> pa.Table:
    import duckdb

    con = connect(lake)
    try:
        relation = con.sql(query)
        if relation is None:
            import pyarrow as pa

            return pa.table({})
        return to_arrow(relation)
    except duckdb.Error as exc:
        raise QueryError(f"SQL failed: {str(exc).strip()}") from None
    finally:
        con.close()
