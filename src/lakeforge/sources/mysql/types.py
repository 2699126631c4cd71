"""MySQL/MariaDB column types -> lake (Arrow/Delta) types. Every choice is listed in docs/type-mapping.md.

connectorx is fast but not exact for every type: it panics on zero dates and on TIME values outside
00:00-23:59, reads every DECIMAL as decimal(38,10) (dropping digits past the 10th decimal, panicking past 18
integer digits), and returns
TIMESTAMP in the session time zone. The SELECT expressions below shape each column so that what the driver
returns is exact, and the Arrow types are what the lake keeps.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_PREC = re.compile(r"\((\d+)(?:,(\d+))?\)")
_ZERO_GUARD = "IF({col} < '0001-01-01' OR MONTH({col}) = 0 OR DAYOFMONTH({col}) = 0, NULL, {col})"


@dataclass(frozen=True)
class MyType:
    select: str
    arrow: Any
    kind: str


def map_type(data_type: str, column_type: str) -> MyType:
    """Plan one column from ``information_schema.COLUMNS`` (DATA_TYPE, COLUMN_TYPE)."""
    import pyarrow as pa

    data_type = data_type.lower()
    column_type = column_type.lower()
    unsigned = "unsigned" in column_type
    match = _PREC.search(column_type)
    precision = int(match.group(1)) if match else None
    scale = int(match.group(2)) if match and match.group(2) else 0

    ints = {
        "tinyint": (pa.int8(), pa.int16()),
        "smallint": (pa.int16(), pa.int32()),
        "mediumint": (pa.int32(), pa.int32()),
        "int": (pa.int32(), pa.int64()),
        "integer": (pa.int32(), pa.int64()),
    }
    if data_type in ints:
        return MyType("{col}", ints[data_type][1 if unsigned else 0], "number")
    if data_type == "bigint":
        return MyType("{col}", pa.decimal128(20, 0) if unsigned else pa.int64(), "number")
    if data_type in ("decimal", "numeric"):
        p = precision or 10
        if p > 38:
            return MyType("CAST({col} AS CHAR)", pa.string(), "number")
        if scale <= 10 and p - scale <= 18:
            # connectorx rescales to scale 10 in rust_decimal (96-bit, 28 digits): only 18 integer digits fit;
            # past that it panics (measured: decimal(19,0) fails, decimal(28,10) works)
            return MyType("{col}", pa.decimal128(p, scale), "number")
        return MyType("CAST({col} AS CHAR)", pa.decimal128(p, scale), "number")
    if data_type == "float":
        return MyType("{col}", pa.float32(), "number")
    if data_type in ("double", "real"):
        return MyType("{col}", pa.float64(), "number")
    if data_type == "date":
        return MyType(_ZERO_GUARD, pa.date32(), "date")
    if data_type == "datetime":
        return MyType(_ZERO_GUARD, pa.timestamp("us"), "datetime")
    if data_type == "timestamp":
        expr = "IF(UNIX_TIMESTAMP({col}) = 0, NULL, CAST(UNIX_TIMESTAMP({col}) * 1000000 AS SIGNED))"
        return MyType(expr, pa.timestamp("us", tz="UTC"), "datetime_tz")
    if data_type == "time":
        return MyType("CAST({col} AS CHAR)", pa.string(), "string")
    if data_type == "year":
        return MyType("{col}", pa.int16(), "number")
    if data_type == "bit":
        if precision == 1 or precision is None:
            return MyType("CAST({col} AS UNSIGNED)", pa.bool_(), "plain")
        if precision < 64:
            return MyType("CAST({col} AS UNSIGNED)", pa.int64(), "number")
        return MyType("CAST({col} AS UNSIGNED)", pa.decimal128(20, 0), "number")
    if data_type in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"):
        return MyType("{col}", pa.string(), "string")
    if data_type in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        return MyType("{col}", pa.binary(), "plain")
    if data_type in (
        "geometry",
        "point",
        "linestring",
        "polygon",
        "multipoint",
        "multilinestring",
        "multipolygon",
        "geometrycollection",
    ):
        return MyType("ST_AsText({col})", pa.string(), "plain")
    # uuid / inet4 / inet6 (MariaDB) and anything newer: canonical text
    return MyType("CAST({col} AS CHAR)", pa.string(), "string")
