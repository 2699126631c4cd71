"""Names in the lake: ``layer.table``, lower-case Unicode letters, digits and underscores.

Delta (without column mapping) forbids spaces and ``,;{}()=`` in column names and most engines fold case, so
source identifiers are normalised: NFC-composed, lower-cased, and every run of characters that is not a
letter, a digit or ``_`` becomes one ``_``. Unicode letters are kept (``商品`` stays ``商品``, ``Größe``
becomes ``größe``): Delta, Iceberg, Parquet and DuckDB all accept them. An identifier with no letter or digit
at all (``?``, ``€``) is spelled by its code points (``u003f``, ``u20ac``) instead of collapsing to a
placeholder.

Two distinct source identifiers that still normalise to the same name (``Dup Name`` and ``dup_name``) are
an error, never a silent overwrite: columns when a table is planned (:func:`lake_column_names`), tables when
a run is planned (:mod:`lakeforge.load.plan`).
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa

LAYERS = ("bronze", "silver", "gold", "quarantine")
_INVALID = re.compile(r"[^\w]+")
"""``\\w`` in Python 3 is Unicode-aware: letters and digits of every script, and ``_``."""
META_PREFIX = "_lf_"
COUNTING_COLUMNS = ("_lf_row",)
"""Columns whose values go up by one from row to row (a file's record numbers): every lakeforge Parquet writer
writes them delta-encoded without a dictionary, which the writer would build and drop for every page (~20% of a
file load's write CPU, docs/benchmarks.md, Files)."""


def normalize(identifier: str) -> str:
    """The lake spelling of a source identifier (deterministic; see the module docstring)."""
    composed = unicodedata.normalize("NFC", identifier.strip())
    name = _INVALID.sub("_", composed.lower()).strip("_")
    if not name:
        name = "_".join(f"u{ord(c):04x}" for c in composed) or "col"
    if name[0].isdigit():
        name = "_" + name
    return name


def lake_column_names(names: list[str], *, table: str) -> list[str]:
    result: list[str] = []
    seen: dict[str, str] = {}
    for name in names:
        lake = normalize(name)
        if lake.startswith(META_PREFIX):
            lake = "src" + lake
        if lake in seen:
            raise ConfigError(
                f"table {table}: columns '{seen[lake]}' and '{name}' both become '{lake}' in the lake; rename "
                "one in the source, or create a view that renames it and list the view under the source's "
                "tables: (views are loaded when named there)"
            )
        seen[lake] = name
        result.append(lake)
    return result


def bronze_table_name(prefix: str, schema: str, table: str, default_schema: str) -> str:
    """``<prefix>_<table>``, or ``<prefix>_<schema>_<table>`` outside the source's default schema; an empty
    prefix leaves just the table (and schema)."""
    parts = [prefix] if prefix else []
    if schema != default_schema:
        parts.append(schema)
    return normalize("_".join([*parts, table]))


def split_name(qualified: str) -> tuple[str, str]:
    """``bronze.crm_customers`` -> (``bronze``, ``crm_customers``)."""
    layer, dot, name = qualified.partition(".")
    if not dot or not name:
        raise ConfigError(f"'{qualified}' is not a lake table name; write layer.table, e.g. bronze.crm_orders")
    return layer, name


def counting_columns(schema: pa.Schema) -> list[str]:
    """The ``COUNTING_COLUMNS`` of ``schema`` that are int64 (written delta-encoded)."""
    return [n for n in COUNTING_COLUMNS if n in schema.names and str(schema.field(n).type) == "int64"]
