"""PostgreSQL column types -> lake (Arrow/Delta) types. Every choice is listed in docs/type-mapping.md.

ADBC reads PostgreSQL's binary COPY format: integers, floats (NaN, infinities, -0), bool, text, date,
timestamp(tz), bytea and arrays of those arrive exactly. ``numeric`` arrives as its exact decimal text and is
cast to ``decimal(p,s)`` without loss (or kept as text when it has no declared precision or more than 38
digits). Types Delta has no type for are read as their canonical PostgreSQL text.

Where ADBC is not exact the SELECT expression shapes the value first:

- ``infinity`` / ``-infinity`` and dates past year 294247 wrap around silently in ADBC's int64 microseconds.
  Delta's timestamp and date range is 0001-01-01 .. 9999-12-31, so ``infinity`` becomes its last instant
  and ``-infinity`` its first (as psycopg2 and Debezium do); a finite value outside that range (a BC date,
  year 10000+) stops the table with a message naming the column and the value.
- ADBC flattens a multi-dimensional array into one list. A column declared ``int[][]`` is kept as its
  array literal text; a column declared ``int[]`` that holds a multi-dimensional value stops the table.
- ``time`` 24:00:00 arrives as 00:00:00; time is read as text.

Expression templates use ``{col}`` (the quoted column) and ``{name}`` (the column name as a SQL string
literal, for error messages); :func:`render` fills them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

_NUMERIC = re.compile(r"numeric\((\d+),(-?\d+)\)")

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
_ARRAY_ELEMENTS = {
    "int2",
    "int4",
    "int8",
    "float4",
    "float8",
    "bool",
    "text",
    "varchar",
    "bpchar",
    "date",
    "timestamp",
    "timestamptz",
    "bytea",
}

# Delta's range for dates and timestamps; PostgreSQL's infinities are clamped to its ends
_RANGES = {
    "date": ("'0001-01-01'::date", "'9999-12-31'::date"),
    "timestamp": ("'0001-01-01 00:00:00'::timestamp", "'9999-12-31 23:59:59.999999'::timestamp"),
    "timestamptz": ("'0001-01-01 00:00:00+00'::timestamptz", "'9999-12-31 23:59:59.999999+00'::timestamptz"),
}


@dataclass(frozen=True)
class PgType:
    select: str
    """Expression template; ``{col}`` is the quoted column, ``{name}`` its name as a string literal."""
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


def render(template: str, quoted: str, name: str) -> str:
    """Fill a template (``str.format`` would trip over the braces of array literals)."""
    literal = "'" + name.replace("'", "''") + "'"
    return template.replace("{col}", quoted).replace("{name}", literal)


def refuse(why: str, like: str) -> str:
    """An expression that stops the query with ``lakeforge: column <name> <why>`` (``why`` is SQL text);
    it has the type of the expression ``like``.

    PostgreSQL has no RAISE in plain SQL: the message is cast to int, whose error repeats it. ``why`` must
    depend on the row (it names the value), so the planner cannot fold it into a constant and fail early.
    """
    return f"(CASE WHEN ('lakeforge: column ' || {{name}} || ' ' || {why})::int = 0 THEN {like} END)"


def guard_range(expr: str, typname: str) -> str:
    """``expr`` with infinities clamped to Delta's range and other out-of-range values refused."""
    low, high = _RANGES[typname]
    why = "'holds ' || " + expr + "::text || ', outside the Delta range 0001-01-01 .. 9999-12-31'"
    return (
        f"CASE WHEN {expr} IS NULL OR ({expr} >= {low} AND {expr} <= {high}) THEN {expr} "
        f"WHEN {expr} = 'infinity' THEN {high} WHEN {expr} = '-infinity' THEN {low} "
        f"ELSE {refuse(why, expr)} END"
    )


def map_type(typname: str, formatted: str, typtype: str, element: str | None, ndims: int = 0) -> PgType:
    """Plan one column from its catalog entry (domains are resolved to their base type by the caller).

    ``element`` is the element type of an array, ``ndims`` the dimensions the column was declared with.
    """
    import pyarrow as pa

    if typname in _RANGES:
        arrow, kind = _EXACT[typname]
        return PgType(guard_range("{col}", typname), arrow_type(arrow), kind)
    if typname in _EXACT:
        arrow, kind = _EXACT[typname]
        return PgType("{col}", arrow_type(arrow), kind)
    if typname == "numeric":
        decimal = numeric_type(formatted)
        if decimal is not None:
            return PgType("{col}", decimal, "number")
        # unconstrained or wider than Delta's decimal(38): exact text, never rounded
        return PgType("{col}::text", pa.string(), "number")
    if typname == "money":
        return PgType("{col}::numeric", pa.decimal128(38, 2), "number")
    if element is not None:
        return _map_array(element, formatted, ndims)
    if typname == "inet":
        # inet's own output form (what psql shows: ::1, 10.0.0.0/8); inet::text always adds the netmask
        return PgType("abbrev({col})", pa.string(), "string")
    # time, timetz, interval (ISO 8601), uuid, json, jsonb, inet, cidr, macaddr, enums, xml, bit, ...
    return PgType("{col}::text", pa.string(), "string" if typtype != "e" else "plain")


def numeric_type(formatted: str) -> Any:
    """``numeric(p,s)`` as the smallest decimal128 holding every value, or None (no precision, or > 38)."""
    import pyarrow as pa

    match = _NUMERIC.search(formatted)
    if not match:
        return None
    precision, scale = int(match.group(1)), int(match.group(2))
    if scale < 0:  # numeric(5,-2): up to 7 integer digits, no fraction
        precision, scale = precision - scale, 0
    elif scale > precision:  # numeric(3,5): |v| < 0.001, five decimals
        precision = scale
    return pa.decimal128(precision, scale) if precision <= 38 else None


def _map_array(element: str, formatted: str, ndims: int) -> PgType:
    import pyarrow as pa

    if ndims > 1:
        # ADBC would flatten {{1,2},{3,4}} into [1,2,3,4]: keep PostgreSQL's exact array literal instead
        return PgType("{col}::text", pa.string(), "plain")
    if element in _RANGES:
        # each element clamped/refused like a scalar column, in order
        item = guard_range("u.e", element)
        whole = f"ARRAY(SELECT {item} FROM unnest({{col}}) WITH ORDINALITY AS u(e, i) ORDER BY u.i)"
        return PgType(
            f"CASE WHEN {{col}} IS NULL THEN NULL ELSE {_one_dim(whole)} END",
            pa.list_(arrow_type(_EXACT[element][0])),
            "plain",
        )
    if element in _ARRAY_ELEMENTS:
        return PgType(_one_dim("{col}"), pa.list_(arrow_type(_EXACT[element][0])), "plain")
    if element == "inet":
        whole = "ARRAY(SELECT abbrev(u.e) FROM unnest({col}) WITH ORDINALITY AS u(e, i) ORDER BY u.i)"
        return PgType(f"CASE WHEN {{col}} IS NULL THEN NULL ELSE {_one_dim(whole)} END", pa.list_(pa.string()), "plain")
    if element == "numeric" and numeric_type(formatted) is not None:
        return PgType(_one_dim("{col}"), pa.list_(numeric_type(formatted)), "plain")
    return PgType(_one_dim("{col}::text[]"), pa.list_(pa.string()), "plain")


def _one_dim(expr: str) -> str:
    """``expr`` for a one-dimensional value of the array column; a multi-dimensional one is refused."""
    why = "'holds a multi-dimensional array ' || left({col}::text, 100) || ', declared one-dimensional'"
    return f"CASE WHEN array_ndims({{col}}) > 1 THEN {refuse(why, expr)} ELSE {expr} END"
