"""Dashboards as code: ``dashboards/<name>.yml``, strict like ``lakeforge.yml``.

.. code-block:: yaml

    title: Sales
    filters:
      - {name: country, label: Country, sql: "select distinct country from gold.dim_customer order by 1"}
    tiles:
      - {type: kpi, title: Revenue, format: money,
         sql: "select sum(amount) from gold.fact_order_line f where $country is null or f.country = $country"}
      - {type: chart, chart: bar, title: Revenue by month, x: month, y: revenue, color: product_line,
         sql: "select month, product_line, revenue from gold.agg_sales_monthly"}
      - {type: table, title: Top customers, sql: "select ...", limit: 20}

A filter's value reaches the SQL as the named parameter ``$<name>`` (NULL when nothing is chosen), never by
pasting text into the query. A tile whose SQL fails shows the error in its place; the page still renders.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

_PARAM = re.compile(r"\$([a-z][a-z0-9_]*)")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Filter(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    """The parameter's name: tiles read it as ``$name``."""
    label: str | None = None
    options: list[str | int | float] | None = None
    """Fixed choices; or give ``sql``."""
    sql: str | None = None
    """A query whose first column lists the choices."""
    default: str | None = None


class TileBase(Strict):
    title: str
    sql: str
    """SQL over the lake (DuckDB, tables as ``layer.table``); may use ``$filter`` parameters."""
    description: str | None = None
    width: Literal[1, 2, 3] = 1
    """Grid columns the tile spans (the page is three columns wide)."""


class Kpi(TileBase):
    type: Literal["kpi"]
    column: str | None = None
    """Column of the first row shown; default the first column."""
    format: Literal["number", "money", "percent"] = "number"


def _listify(value: object) -> object:
    return [value] if isinstance(value, str) else value


class Chart(TileBase):
    type: Literal["chart"]
    chart: Literal["bar", "line", "area", "pie", "scatter"] = "bar"
    x: str
    y: list[str]
    """One column, or several (one series each)."""
    color: str | None = None
    """A column whose values split the rows into series (one y column only)."""
    stacked: bool = False

    _y = field_validator("y", mode="before")(_listify)


class Table(TileBase):
    type: Literal["table"]
    limit: int = Field(default=100, gt=0)
    """Rows shown (the CSV export has every row)."""
    export: bool = True
    """Offer the tile's rows as a CSV download."""


Tile = Annotated[Kpi | Chart | Table, Field(discriminator="type")]


class Dashboard(Strict):
    title: str
    description: str | None = None
    filters: list[Filter] = Field(default_factory=list)
    tiles: list[Tile] = Field(default_factory=list)


@dataclass
class DashboardFile:
    name: str
    path: Path
    dashboard: Dashboard | None
    error: str | None = None


def load_dashboards(folder: Path) -> dict[str, DashboardFile]:
    """Every ``*.yml`` in ``folder`` by file stem; a file that does not validate carries its error."""
    found: dict[str, DashboardFile] = {}
    for path in sorted(folder.glob("*.y*ml")) if folder.is_dir() else []:
        found[path.stem] = load_dashboard(path)
    return found


def load_dashboard(path: Path) -> DashboardFile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        return DashboardFile(path.stem, path, Dashboard.model_validate(data))
    except yaml.YAMLError as exc:
        return DashboardFile(path.stem, path, None, f"{path}: not valid YAML: {exc}")
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '(top)'}: {e['msg']}" for e in exc.errors(include_url=False)
        )
        return DashboardFile(path.stem, path, None, f"{path}: {problems}")


# -- running tiles ---------------------------------------------------------------------------------------
class TileError(Exception):
    """A tile's SQL failed or its result does not have the columns the tile names."""


def run_sql(con: duckdb.DuckDBPyConnection, sql: str, values: dict[str, Any]) -> pa.Table:
    """Run ``sql`` with the filter values it references as named parameters."""
    import duckdb

    params = {name: values.get(name) for name in sorted(set(_PARAM.findall(sql)))}
    try:
        relation = con.sql(sql, params=params or None)
        if relation is None:
            raise TileError("the SQL returns no rows (a tile needs a SELECT)")
        table: pa.Table = relation.to_arrow_table()
    except duckdb.Error as exc:
        raise TileError(" ".join(str(exc).split())) from None
    return table


def require(table: pa.Table, columns: list[str], tile: str) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise TileError(
            f"tile '{tile}': column(s) {', '.join(missing)} not in the result ({', '.join(table.column_names)})"
        )


def filter_options(con: duckdb.DuckDBPyConnection, flt: Filter) -> list[Any]:
    if flt.options is not None:
        return list(flt.options)
    if flt.sql:
        table = run_sql(con, flt.sql, {})
        return [v for v in table.column(0).to_pylist() if v is not None] if table.num_columns else []
    return []


def chosen(options: list[Any], raw: str | None) -> Any:
    """The option whose text is ``raw`` (typed as the option is), or None."""
    if raw is None or raw == "":
        return None
    for option in options:
        if str(option) == raw:
            return option
    return None
