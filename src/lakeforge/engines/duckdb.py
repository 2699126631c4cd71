"""DuckDB over the lake: every Delta table becomes a view ``layer.table``.

DuckDB cannot load its delta extension without network access, so tables are registered as
``DeltaTable.to_pyarrow_dataset()`` (projections and filters push down into the Parquet scan).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeforgeError
from lakeforge.lake.naming import split_name

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

    from lakeforge.lake.delta import DeltaLake


class QueryError(LakeforgeError):
    """A SQL query over the lake failed."""


def connect(lake: DeltaLake, *, versions: dict[str, int] | None = None) -> duckdb.DuckDBPyConnection:
    """A fresh in-memory DuckDB with a view per lake table (at ``versions[name]`` when given)."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    names = lake.names() if lake.is_local else []
    for name in names:
        register(con, lake, name, (versions or {}).get(name))
    return con


def register(con: duckdb.DuckDBPyConnection, lake: DeltaLake, name: str, version: int | None = None) -> None:
    layer, table = split_name(name)
    hidden = f"__lf_{layer}__{table}"
    con.register(hidden, lake.dataset(name, version))
    con.execute(f'CREATE SCHEMA IF NOT EXISTS "{layer}"')
    con.execute(f'CREATE OR REPLACE VIEW "{layer}"."{table}" AS SELECT * FROM "{hidden}"')


def to_arrow(relation: Any) -> pa.Table:
    fetch = getattr(relation, "to_arrow_table", None) or relation.fetch_arrow_table
    return fetch()


def run_sql(lake: DeltaLake, query: str) -> pa.Table:
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
