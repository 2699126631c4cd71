"""Decode PostgreSQL's built-in logical replication output (``pgoutput``, protocol version 1).

Messages: Begin, Commit, Relation, Insert, Update, Delete, Truncate (Origin and Type are skipped). Column
values arrive in PostgreSQL's text format, decoded by :func:`text_to_arrow` to the column's planned type.
A row's values are a list in the relation's column order; a value the server did not send (an unchanged
TOAST value) is None there and named in ``unchanged``.
"""

from __future__ import annotations

import datetime as dt
import decimal
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_I32 = struct.Struct("!i")
_NONE: frozenset[str] = frozenset()


@dataclass
class Relation:
    oid: int
    schema: str
    name: str
    replica_identity: str
    columns: list[str]
    key_flags: list[bool]
    types: list[tuple[int, int]] = field(default_factory=list)
    """Type oid and typmod of each column."""


@dataclass
class Begin:
    final_lsn: int
    commit_time: dt.datetime
    xid: int


@dataclass
class Commit:
    commit_lsn: int
    end_lsn: int
    commit_time: dt.datetime


@dataclass(slots=True)
class Row:
    kind: str
    """insert, update, delete."""
    relation: Relation
    new: list[Any] | None = None
    """Values in the order of ``relation.columns`` (None for an unchanged value too)."""
    old: list[Any] | None = None
    old_is_key: bool = False
    unchanged: frozenset[str] = field(default_factory=frozenset)

    def as_dict(self, values: list[Any]) -> dict[str, Any]:
        """``values`` by column name, without the unchanged columns."""
        skip = self.unchanged
        return {n: v for n, v in zip(self.relation.columns, values, strict=True) if n not in skip}


@dataclass
class Truncate:
    relations: list[Relation]


class Decoder:
    """Keeps the relation cache a pgoutput stream needs (it sends each relation before first use)."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}
        self._buf = b""
        self._at = 0

    def decode(self, payload: bytes) -> Begin | Commit | Relation | Row | Truncate | None:
        self._buf, self._at = payload, 1
        kind = payload[0]
        if kind == 73:  # 'I' (rows first: they are nearly every message)
            rel = self.relations[self._i32()]
            self._at += 1  # 'N'
            new, unchanged = self._tuple(rel)
            return Row("insert", rel, new, None, False, unchanged)
        if kind == 85:  # 'U'
            rel = self.relations[self._i32()]
            old, old_is_key = None, False
            marker = payload[self._at]
            if marker in (75, 79):  # 'K', 'O'
                self._at += 1
                old, _ = self._tuple(rel)
                old_is_key = marker == 75
            self._at += 1  # 'N'
            new, unchanged = self._tuple(rel)
            return Row("update", rel, new, old, old_is_key, unchanged)
        if kind == 68:  # 'D'
            rel = self.relations[self._i32()]
            marker = payload[self._at]
            self._at += 1
            old, _ = self._tuple(rel)
            return Row("delete", rel, None, old, marker == 75)
        if kind == 66:  # 'B'
            return Begin(self._i64(), _pg_time(self._i64()), self._i32())
        if kind == 67:  # 'C'
            self._at += 1
            return Commit(self._i64(), self._i64(), _pg_time(self._i64()))
        if kind == 82:  # 'R'
            return self._relation()
        if kind == 84:  # 'T'
            count = self._i32()
            self._at += 1  # options
            return Truncate([self.relations[self._i32()] for _ in range(count)])
        return None  # Origin, Type, Message: nothing to apply

    def _relation(self) -> Relation:
        oid = self._i32()
        schema, name = self._str(), self._str()
        identity = chr(self._buf[self._at])
        self._at += 1
        count = struct.unpack_from("!h", self._buf, self._at)[0]
        self._at += 2
        columns, keys, types = [], [], []
        for _ in range(count):
            flags = self._buf[self._at]
            self._at += 1
            columns.append(self._str())
            keys.append(bool(flags & 1))
            types.append((self._i32() & 0xFFFFFFFF, self._i32()))
        rel = Relation(oid, schema, name, identity, columns, keys, types)
        self.relations[oid] = rel
        return rel

    def _tuple(self, rel: Relation) -> tuple[list[Any], frozenset[str]]:
        """One tuple's values in column order, and the columns not sent."""
        values, unchanged, self._at = tuple_at(self._buf, self._at)
        return values, _NONE if unchanged is None else frozenset(rel.columns[i] for i in unchanged)

    def _i32(self) -> int:
        value = _I32.unpack_from(self._buf, self._at)[0]
        self._at += 4
        return int(value)

    def _i64(self) -> int:
        value = struct.unpack_from("!q", self._buf, self._at)[0]
        self._at += 8
        return int(value)

    def _str(self) -> str:
        end = self._buf.index(b"\x00", self._at)
        text = self._buf[self._at : end].decode("utf-8")
        self._at = end + 1
        return text


def tuple_at(buf: bytes, at: int) -> tuple[list[Any], list[int] | None, int]:
    """The tuple at ``at``: its values in column order (text as str, NULL and unchanged TOAST values as
    None), the positions of the unchanged values (None when every value was sent), and the offset after it.
    The hot loop of a catch-up: locals only."""
    size_of = _I32.unpack_from
    count = (buf[at] << 8) | buf[at + 1]
    at += 2
    values: list[Any] = []
    add = values.append
    unchanged: list[int] | None = None
    for i in range(count):
        kind = buf[at]
        if kind == 116:  # 't': text
            size = size_of(buf, at + 1)[0]
            at += 5
            add(buf[at : at + size].decode("utf-8"))
            at += size
        elif kind == 110:  # 'n': null
            at += 1
            add(None)
        elif kind == 117:  # 'u': unchanged TOAST value, not sent
            at += 1
            add(None)
            unchanged = [*(unchanged or ()), i]
        else:  # 'b': binary
            size = size_of(buf, at + 1)[0]
            at += 5
            add(buf[at : at + size])
            at += size
    return values, unchanged, at


def _pg_time(micros: int) -> dt.datetime:
    return PG_EPOCH + dt.timedelta(microseconds=micros)


def lsn_text(lsn: int) -> str:
    return f"{lsn >> 32:X}/{lsn & 0xFFFFFFFF:X}"


def lsn_value(text: str) -> int:
    high, _, low = text.partition("/")
    return (int(high, 16) << 32) + int(low, 16)


# -- text values -> Arrow --------------------------------------------------------------------------------
# The snapshot reads the same columns through types.py's SELECT expressions; every rule there has its twin here.

_DATE_MIN, _DATE_MAX = dt.date(1, 1, 1), dt.date(9999, 12, 31)
_TS_MIN, _TS_MAX = dt.datetime(1, 1, 1), dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
_OUT_OF_RANGE = "is outside the Delta range 0001-01-01 .. 9999-12-31"


class Refused(ValueError):
    """A value the lake type cannot hold; the message says why."""


def text_to_arrow(values: list[Any], target: pa.DataType, column: str) -> pa.Array:
    """PostgreSQL text-format values (with the walsender's DateStyle ISO, TimeZone UTC, IntervalStyle
    iso_8601) as ``target``: the same values a snapshot read returns. A value the lake cannot hold raises
    :class:`~lakeforge.errors.ConversionError` naming ``column`` and the value."""
    import pyarrow as pa

    from lakeforge.errors import ConversionError

    whole = _whole_column(values, target)
    if whole is not None:
        return whole
    parse = _parser(target)
    parsed = []
    for value in values:
        try:
            parsed.append(None if value is None else parse(value))
        except (ValueError, ArithmeticError) as exc:
            why = str(exc) if isinstance(exc, Refused) else f"cannot be read as {target} ({exc})"
            raise ConversionError(
                f"column '{column}': value {str(value)[:100]!r} {why}; see docs/type-mapping.md"
            ) from None
    try:
        return pa.array(parsed, type=target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
        for value, item in zip(values, parsed, strict=True):
            try:
                pa.array([item], type=target)
            except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
                raise ConversionError(
                    f"column '{column}': value {str(value)[:100]!r} cannot be stored exactly "
                    f"as {target} ({exc}); see docs/type-mapping.md"
                ) from None
        raise


def _whole_column(values: list[Any], target: pa.DataType) -> pa.Array | None:
    """``values`` converted by Arrow in one step, or None to go value by value. Only where Arrow's parser reads
    PostgreSQL's text exactly as the per-value rules below do: it refuses every value those rules treat
    specially (``infinity``, ``NaN`` in a decimal, ``BC``, five-digit years, a decimal that does not fit, an
    integer out of range), so such a column falls back and gets the same clamp or the same error. float4 is
    left out (parsing straight to float32 can round differently from parsing to double first)."""
    import pyarrow as pa

    try:
        if pa.types.is_string(target) or pa.types.is_large_string(target):
            return pa.array(values, type=target)
        if not _cast_whole(target):
            return None
        return _cast_text(pa.array(values, type=pa.string()), target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return None


def _cast_whole(target: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(target)
        or pa.types.is_decimal(target)
        or pa.types.is_boolean(target)
        or pa.types.is_date32(target)
        or target == pa.float64()
        or (pa.types.is_timestamp(target) and target.unit == "us" and target.tz in (None, "UTC"))
    )


def _cast_text(text: pa.Array, target: pa.DataType) -> pa.Array:
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_boolean(target):
        return pc.equal(text, "t")
    return text.cast(target)


def text_array_to_arrow(text: pa.Array, target: pa.DataType, column: str) -> pa.Array:
    """As :func:`text_to_arrow`, for values already in an Arrow string array (``pgcolumns``): the same cast
    where Arrow reads every value exactly, else the same value-by-value rules."""
    import pyarrow as pa

    try:
        if pa.types.is_string(target) or pa.types.is_large_string(target):
            return text.cast(target)
        if _cast_whole(target):
            return _cast_text(text, target)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        pass
    return text_to_arrow(text.to_pylist(), target, column)


def _parser(target: pa.DataType) -> Any:
    import pyarrow as pa

    if pa.types.is_integer(target):
        return int
    if pa.types.is_floating(target):
        return float
    if pa.types.is_boolean(target):
        return lambda v: v == "t"
    if pa.types.is_decimal(target):
        return _decimal
    if pa.types.is_date(target):
        return _date
    if pa.types.is_timestamp(target):
        return _timestamp_tz if target.tz else _timestamp
    if pa.types.is_binary(target) or pa.types.is_large_binary(target):
        return lambda v: bytes.fromhex(v[2:]) if v.startswith("\\x") else v.encode()
    if pa.types.is_list(target):
        element = _parser(target.value_type)
        return lambda v: [None if e is None else element(e) for e in parse_array(v)]
    return str


def _decimal(text: str) -> decimal.Decimal:
    value = decimal.Decimal(text)
    if not value.is_finite():
        raise Refused(
            "is not a number: a decimal column has no NaN or infinity (declare the column numeric "
            "without precision to keep such values as text)"
        )
    return value


def _date(text: str) -> dt.date:
    if text in ("infinity", "-infinity"):
        return _DATE_MAX if text == "infinity" else _DATE_MIN
    _in_range(text)
    return dt.date.fromisoformat(text)


def _timestamp(text: str) -> dt.datetime:
    if text in ("infinity", "-infinity"):
        return _TS_MAX if text == "infinity" else _TS_MIN
    _in_range(text)
    return dt.datetime.fromisoformat(text)


def _timestamp_tz(text: str) -> dt.datetime:
    if text in ("infinity", "-infinity"):
        return (_TS_MAX if text == "infinity" else _TS_MIN).replace(tzinfo=dt.UTC)
    _in_range(text)
    return dt.datetime.fromisoformat(text)


def _in_range(text: str) -> None:
    """Years before 1 (``... BC``) or after 9999 (five digits) do not fit Delta's date and timestamp types."""
    if text.endswith(" BC") or len(text.partition("-")[0]) > 4:
        raise Refused(_OUT_OF_RANGE)


def parse_array(text: str) -> list[str | None]:
    """A one-dimensional PostgreSQL array literal, ``{a,"b c",NULL}`` (``[0:1]={...}`` bounds are dropped, as
    the snapshot does); a multi-dimensional value is refused, as the snapshot refuses it."""
    inner = text[text.index("{") + 1 : text.rindex("}")]
    if inner.startswith("{"):
        raise Refused("holds a multi-dimensional array, declared one-dimensional")
    items: list[str | None] = []
    i, n = 0, len(inner)
    while i < n:
        if inner[i] == '"':
            i += 1
            chars = []
            while inner[i] != '"':
                if inner[i] == "\\":
                    i += 1
                chars.append(inner[i])
                i += 1
            items.append("".join(chars))
            i += 2
        else:
            end = inner.find(",", i)
            end = n if end < 0 else end
            word = inner[i:end]
            items.append(None if word == "NULL" else word)
            i = end + 1
    return items
