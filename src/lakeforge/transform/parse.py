"""Which lake tables a SQL model reads, from its parsed SQL (sqlglot, DuckDB dialect)."""

from __future__ import annotations

from pathlib import Path

from lakeforge.errors import ModelError


def tables_read(sql: str, path: Path) -> list[str]:
    """``layer.table`` names read by ``sql``; CTE names are not tables. Errors name the file."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except ParseError as exc:
        detail = exc.errors[0] if exc.errors else {}
        line = detail.get("line")
        where = f"{path}:{line}" if line else str(path)
        raise ModelError(f"{where}: SQL does not parse: {detail.get('description') or exc}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"{path}: a SQL model is one SELECT query (found {len(statements)} statement(s))")
    query = statements[0]
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    found: set[str] = set()
    for table in query.find_all(exp.Table):
        if not table.name:
            continue  # a table function, e.g. range(10)
        if table.catalog:
            raise ModelError(f"{path}: '{table.sql('duckdb')}': name lake tables as layer.table")
        if not table.db:
            if table.name.lower() in ctes:
                continue
            raise ModelError(
                f"{path}: table '{table.name}' is neither a CTE nor a lake table; name lake tables as "
                "layer.table (e.g. bronze.crm_customers)"
            )
        found.add(f"{table.db.lower()}.{table.name.lower()}")
    return sorted(found)
