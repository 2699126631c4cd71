"""Arrow result columns as PostgreSQL types on the wire: the type OID (and typmod) of each column, its values
rendered in PostgreSQL's text format (vectorised in Arrow) or, when the client asks, its binary format.

Exact: a decimal is ``numeric(p,s)`` with its digits, an integer keeps its width, a timestamp with time zone
is ``timestamptz``; no value goes through a float or a string it did not come from.
"""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON, FLOAT4, FLOAT8 = 16, 17, 20, 21, 23, 25, 114, 700, 701
DATE, TIME, TIMESTAMP, TIMESTAMPTZ, INTERVAL, NUMERIC, UUID, VARCHAR = 1082, 1083, 1114, 1184, 1186, 1700, 2950, 1043
NAMES = {
    BOOL: "boolean",
    BYTEA: "bytea",
    INT8: "bigint",
    INT2: "smallint",
    INT4: "integer",
    TEXT: "text",
    JSON: "json",
    FLOAT4: "real",
    FLOAT8: "double precision",
    DATE: "date",
    TIME: "time without time zone",
    TIMESTAMP: "timestamp without time zone",
    TIMESTAMPTZ: "timestamp with time zone",
    INTERVAL: "interval",
    NUMERIC: "numeric",
    UUID: "uuid",
    VARCHAR: "character varying",
}
SIZES = {BOOL: 1, INT2: 2, INT4: 4, INT8: 8, FLOAT4: 4, FLOAT8: 8, DATE: 4, TIME: 8, TIMESTAMP: 8, TIMESTAMPTZ: 8}
_EPOCH_2000 = dt.datetime(2000, 1, 1)
_EPOCH_2000_TZ = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


@dataclass(frozen=True)
class PgType:
    oid: int
    typmod: int = -1

    @property
    def size(self) -> int:
        return SIZES.get(self.oid, -1)


def pg_type(t: pa.DataType) -> PgType:
    """The PostgreSQL type a column of Arrow type ``t`` is sent as."""
    import pyarrow as pa

    if pa.types.is_boolean(t):
        return PgType(BOOL)
    if pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_uint8(t):
        return PgType(INT2)
    if pa.types.is_int32(t) or pa.types.is_uint16(t):
        return PgType(INT4)
    if pa.types.is_int64(t) or pa.types.is_uint32(t):
        return PgType(INT8)
    if pa.types.is_uint64(t):
        return PgType(NUMERIC, ((20 << 16) | 0) + 4)
    if pa.types.is_float16(t) or pa.types.is_float32(t):
        return PgType(FLOAT4)
    if pa.types.is_float64(t):
        return PgType(FLOAT8)
    if pa.types.is_decimal(t):
        return PgType(NUMERIC, ((t.precision << 16) | (t.scale & 0xFFFF)) + 4)
    if pa.types.is_date(t):
        return PgType(DATE)
    if pa.types.is_time(t):
        return PgType(TIME)
    if pa.types.is_timestamp(t):
        return PgType(TIMESTAMPTZ if t.tz else TIMESTAMP)
    if pa.types.is_duration(t) or pa.types.is_interval(t):
        return PgType(INTERVAL)
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return PgType(UUID if str(t) in ("extension<arrow.uuid>",) else BYTEA)
    return PgType(TEXT)


def text_column(array: pa.Array, typ: PgType) -> list[bytes | None]:
    """The column's values in PostgreSQL's text format, as UTF-8 bytes (None for NULL)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = array.type
    if pa.types.is_dictionary(t):
        array = array.dictionary_decode()
        t = array.type
    if typ.oid == BOOL:
        out = pc.if_else(array, "t", "f")
    elif typ.oid in (FLOAT4, FLOAT8):
        out = _floats(array)
    elif typ.oid == NUMERIC:
        return [None if v is None else format(v, "f").encode() for v in array.to_pylist()]
    elif typ.oid in (TIMESTAMP, TIMESTAMPTZ, TIME):
        out = pc.replace_substring_regex(pc.cast(array, pa.string()), r"Z$", "+00")
        out = pc.replace_substring_regex(out, r"(\.\d*?)0+(\+00)?$", r"\1\2")  # PostgreSQL drops trailing zeros
        out = pc.replace_substring_regex(out, r"\.(\+00)?$", r"\1")
    elif typ.oid == BYTEA:
        from lakeforge.serve.destinations.text import hex_digits

        out = pc.binary_join_element_wise(
            pa.scalar("\\x", pa.large_string()), hex_digits(array), pa.scalar("", pa.large_string())
        )
    elif typ.oid == INTERVAL:
        return [None if v is None else _interval(v).encode() for v in array.to_pylist()]
    elif pa.types.is_nested(t):
        import json

        return [None if v is None else json.dumps(v, default=str).encode() for v in array.to_pylist()]
    else:
        out = pc.cast(array, pa.large_string())
    return [None if v is None else v.encode() for v in out.to_pylist()]


def _floats(array: pa.Array) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    out = pc.cast(array, pa.large_string())
    for raw, pg in (("^inf$", "Infinity"), ("^-inf$", "-Infinity"), ("^nan$", "NaN")):
        out = pc.replace_substring_regex(out, raw, pg)
    return out


def _interval(value: Any) -> str:
    if isinstance(value, dt.timedelta):
        micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
        return f"{micros} microseconds"
    months, days, nanos = value.months, value.days, value.nanoseconds
    return f"{months} mons {days} days {nanos // 1000} microseconds"


# -- binary format ------------------------------------------------------------------------------------
def _numeric_binary(value: Decimal) -> bytes:
    sign, digits, exp = value.as_tuple()
    assert isinstance(exp, int)
    dscale = max(-exp, 0)
    text = "".join(map(str, digits))
    if exp > 0:
        text += "0" * exp
        exp = 0
    elif exp < 0:
        text = text.rjust(-exp, "0")
    int_part, frac_part = (text[: len(text) + exp], text[len(text) + exp :]) if exp else (text, "")
    int_part = int_part.lstrip("0")
    int_part = "0" * (-len(int_part) % 4) + int_part
    frac_part = frac_part + "0" * (-len(frac_part) % 4)
    groups = [int(int_part[i : i + 4]) for i in range(0, len(int_part), 4)]
    weight = len(groups) - 1
    groups += [int(frac_part[i : i + 4]) for i in range(0, len(frac_part), 4)]
    while groups and groups[-1] == 0:
        groups.pop()
    while groups and groups[0] == 0:
        groups.pop(0)
        weight -= 1
    if not groups:
        weight = 0
    return struct.pack(f"!hhHH{len(groups)}H", len(groups), weight, 0x4000 if sign else 0, dscale, *groups)


_BINARY: dict[int, Callable[[Any], bytes]] = {
    BOOL: lambda v: b"\x01" if v else b"\x00",
    INT2: lambda v: struct.pack("!h", v),
    INT4: lambda v: struct.pack("!i", v),
    INT8: lambda v: struct.pack("!q", v),
    FLOAT4: lambda v: struct.pack("!f", v),
    FLOAT8: lambda v: struct.pack("!d", v),
    TEXT: lambda v: str(v).encode(),
    JSON: lambda v: str(v).encode(),
    BYTEA: bytes,
    NUMERIC: lambda v: _numeric_binary(Decimal(v)),
    DATE: lambda v: struct.pack("!i", (v - _EPOCH_2000.date()).days),
    TIMESTAMP: lambda v: struct.pack("!q", (v - _EPOCH_2000) // dt.timedelta(microseconds=1)),
    TIMESTAMPTZ: lambda v: struct.pack("!q", (v - _EPOCH_2000_TZ) // dt.timedelta(microseconds=1)),
    TIME: lambda v: struct.pack("!q", ((v.hour * 60 + v.minute) * 60 + v.second) * 1_000_000 + v.microsecond),
}


def has_binary(typ: PgType) -> bool:
    return typ.oid in _BINARY


def binary_column(array: pa.Array, typ: PgType) -> list[bytes | None]:
    encode = _BINARY[typ.oid]
    return [None if v is None else encode(v) for v in array.to_pylist()]


def parse_binary_param(oid: int, data: bytes) -> Any:
    """A parameter sent in binary format (the common scalar types)."""
    formats = {INT2: "!h", INT4: "!i", INT8: "!q", FLOAT4: "!f", FLOAT8: "!d"}
    if oid in formats:
        return struct.unpack(formats[oid], data)[0]
    if oid == BOOL:
        return data != b"\x00"
    if oid in (TEXT, VARCHAR, JSON, 0):
        return data.decode()
    if oid == BYTEA:
        return data
    raise ValueError(f"a binary parameter of type oid {oid} is not supported; send it as text")


def parse_text_param(oid: int, text: str) -> Any:
    """A parameter sent in text format, typed by the OID the client declared (0: let DuckDB infer)."""
    if oid in (INT2, INT4, INT8):
        return int(text)
    if oid in (FLOAT4, FLOAT8):
        return float(text)
    if oid == NUMERIC:
        return Decimal(text)
    if oid == BOOL:
        return text.lower() in ("t", "true", "1", "yes", "on")
    if oid == BYTEA and text.startswith("\\x"):
        return bytes.fromhex(text[2:])
    if oid == DATE:
        return dt.date.fromisoformat(text)
    if oid in (TIMESTAMP, TIMESTAMPTZ):
        return dt.datetime.fromisoformat(text.replace(" ", "T", 1))
    return text
