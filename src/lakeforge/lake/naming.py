"""Names in the lake: ``layer.table``, lower-case letters, digits and underscores.

Delta forbids spaces and ``,;{}()=`` in column names without column mapping, and most engines fold case, so
source identifiers are normalised: lower-cased, every other character run becomes ``_``. Two source
columns that normalise to the same name are an error, never a silent overwrite.
"""

from __future__ import annotations

import re

from lakeforge.errors import ConfigError

LAYERS = ("bronze", "silver", "gold", "quarantine")
_INVALID = re.compile(r"[^a-z0-9_]+")


def normalize(identifier: str) -> str:
    name = _INVALID.sub("_", identifier.strip().lower()).strip("_")
    if not name:
        name = "col"
    if name[0].isdigit():
        name = "_" + name
    return name


def lake_column_names(names: list[str], *, table: str) -> list[str]:
    result: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        lake = normalize(name)
        if lake.startswith("_lf_"):
            lake = "src" + lake
        if lake in seen:
            raise ConfigError(
                f"table {table}: columns '{seen[lake]}' and '{name}' both become '{lake}' in the lake; "
                "rename one in the source or load the table through a view"
            )
        seen[lake] = name
        result.append(lake)
    return result


def bronze_table_name(source: str, schema: str, table: str, default_schema: str) -> str:
    parts = [source] if schema == default_schema else [source, schema]
    return normalize("_".join([*parts, table]))


def split_name(qualified: str) -> tuple[str, str]:
    """``bronze.crm_customers`` -> (``bronze``, ``crm_customers``)."""
    layer, dot, name = qualified.partition(".")
    if not dot or not name:
        raise ConfigError(f"'{qualified}' is not a lake table name; write layer.table, e.g. bronze.crm_orders")
    return layer, name
