"""PostgreSQL column types -> lake (Arrow/Delta) types. Every choice is listed in docs/type-mapping.md.

ADBC reads PostgreSQL's binary COPY format: integers, floats, bool, text, date, timestamp(tz), bytea and
arrays of those arrive exactly. ``numeric`` arrives as its exact decimal text and is cast to
``decimal(p,s)`` without loss (or kept as text when it has no declared precision or more than 38 digits).
Types Delta has no type for are read as their canonical PostgreSQL text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NUMERIC = re.compile(r"numeric\((\d+),(\d+)\)")

# typname -> (arrow type name, cursor kind)
_EXACT: dict[str, tuple[str, str]] = {
    "int2": ("int16", "number"),
    "int4": ("int32", "number"),
    "int8": ("int64", "number"),
    "oid": ("int64", "number"),
    "float4": ("float32", "number"),
    "float8": ("float64", "number"),
    "bool": ("bool", "plain"),
    "text": ("string", "string"),
    "varchar": ("string", "string"),
    "bpchar": ("string", "string"),
    "name": ("string", "string"),
    "citext": ("string", "string"),
    "date": ("date32", "date"),
    "timestamp": ("timestamp_us", "datetime"),
    "timestamptz": ("timestamp_us_utc", "datetime_tz"),
    "bytea": ("binary", "plain"),
}
_ARRAY_ELEMENTS = {"int2", "int4", "int8", "float4", "float8", "bool", "text", "varchar", "bpchar", "date",
                   "timestamp", "timestamptz", "bytea"}


@dataclass(frozen=True)
class PgType:
    select: str
    """Expression template; ``{col}`` is the quoted column."""
    arrow: Any
    kind: str


def arrow_type(name: str) -> Any:
    import pyarrow as pa

    return {
        "int16": pa.int16(),
        "int32": pa.int32(),
        "int64": pa.int64(),
        "float32": pa.float32(),
        "float64": pa.float64(),
        "bool": pa.bool_(),
        "string": pa.string(),
        "date32": pa.date32(),
        "timestamp_us": pa.timestamp("us"),
        "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
        "binary": pa.binary(),
    }[name]


def map_type(typname: str, formatted: str, typtype: str, element: str | None) -> PgType:
    """Plan one column from its catalog entry (domains are resolved to their base type by the caller)."""
    import pyarrow as pa

    if typname in _EXACT:
        arrow, kind = _EXACT[typname]
        return PgType("{col}", arrow_type(arrow), kind)
    if typname == "numeric":
        match = _NUMERIC.match(formatted)
        if match and int(match.group(1)) <= 38:
            return PgType("{col}", pa.decimal128(int(match.group(1)), int(match.group(2))), "number")
        # unconstrained or wider than Delta's decimal(38): exact text, never rounded
        return PgType("{col}::text", pa.string(), "number")
    if typname == "money":
        return PgType("{col}::numeric", pa.decimal128(38, 2), "number")
    if element is not None:
        if element in _EXACT and element in _ARRAY_ELEMENTS:
            return PgType("{col}", pa.list_(arrow_type(_EXACT[element][0])), "plain")
        return PgType("{col}::text[]", pa.list_(pa.string()), "plain")
    # time, timetz, interval (ISO 8601), uuid, json, jsonb, inet, cidr, macaddr, enums, xml, bit, ...
    return PgType("{col}::text", pa.string(), "string" if typtype != "e" else "plain")
