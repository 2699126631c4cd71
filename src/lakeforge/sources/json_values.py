"""JSON message values (Kafka, NATS) and API records (HTTP) as typed Arrow columns.

Each value is parsed on its own, so one that is not JSON, not an object, or does not fit a declared column's
type is refused alone (the caller quarantines it with its partition/offset or sequence and raw text) and
the others load. Numbers are parsed exactly (a JSON ``12.30`` is ``Decimal('12.30')`` until its column's
type is known).

Types, per column:

- **declared** (``schema: {amount: "decimal(12,2)", at: timestamp}``): the value must fit exactly; a number
  that would lose digits, a string in a number column, a bad timestamp are refused with the column named.
  ``timestamp`` reads ISO 8601 text (an offset is converted to UTC, no offset is taken as UTC) or
  epoch milliseconds; ``string``/``json`` columns keep strings as they are and any other JSON value as its
  JSON text.
- **inferred** (not declared): booleans -> bool, integers -> int64, numbers with a fraction or exponent
  (alone or mixed with integers) -> float64, strings -> string, objects and arrays -> their JSON text
  (string); a column whose values mix these kinds is kept as JSON text (string). Nothing is guessed from
  string contents: declare ``timestamp``/``date``/``decimal`` columns to get those types.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


@dataclass
class Parsed:
    """The good records as one batch (in input order) and the refused ones."""

    batch: pa.RecordBatch
    kept: list[int]
    """Input index of each row of ``batch``."""
    refused: dict[int, str] = field(default_factory=dict)
    """Input index -> reason."""


def fast_batch(raws: Sequence[bytes | str | None], declared: list[ColumnPlan]) -> pa.RecordBatch | None:
    """The batch :func:`parse_objects` + :func:`to_batch` would build, parsed by Arrow's JSON reader (C++, ~10x
    faster), or None when this batch needs the per-value path: a null value, a value over several lines,
    a value that is not an object, nested objects or arrays, or a value that does not fit its column. The
    per-value path then gives each refused value its own reason."""
    import io

    import pyarrow as pa
    import pyarrow.json as pj

    from lakeforge.sources.typed import cast_exact

    if not raws:
        return None
    try:
        data = b"\n".join(raws)  # type: ignore[arg-type]
    except TypeError:  # a null value (a tombstone) or text
        return None
    if data.count(b"\n") != len(raws) - 1:  # a value over several lines
        return None
    explicit = pa.schema([pa.field(c.name, pa.string()) for c in declared])
    options = pj.ParseOptions(explicit_schema=explicit, unexpected_field_behavior="infer")
    try:
        table = pj.read_json(io.BytesIO(data), parse_options=options)
        strings = [f.name for f in table.schema if f.name not in explicit.names and _needs_text(f.type)]
        if strings:  # an ISO 8601 string Arrow read as a timestamp: keep the text, as the per-value path does
            wanted = pa.schema([*explicit, *(pa.field(n, pa.string()) for n in strings)])
            options = pj.ParseOptions(explicit_schema=wanted, unexpected_field_behavior="infer")
            table = pj.read_json(io.BytesIO(data), parse_options=options)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if table.num_rows != len(raws) or any(not _plain(f.type) for f in table.schema):
        return None
    by_name = {c.name: c for c in declared}
    arrays, fields = [], []
    from lakeforge.lake.naming import lake_column_names

    names = [*(c.name for c in declared), *(n for n in table.column_names if n not in by_name)]
    for name, lake in zip(names, lake_column_names(names, table="message"), strict=True):
        column = table.column(name).combine_chunks()
        plan = by_name.get(name)
        if plan is not None:
            column, bad = cast_exact(column, plan.arrow_type)
            if bad:
                return None
            lake = plan.lake_name
        elif pa.types.is_null(column.type):
            column = column.cast(pa.string())
        arrays.append(column)
        fields.append(pa.field(lake, column.type))
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


def with_columns(batch: pa.RecordBatch, extra: dict[str, pa.Array]) -> pa.RecordBatch:
    """``batch`` with the ``extra`` columns (message metadata) appended."""
    for name, array in extra.items():
        batch = batch.append_column(name, array)
    return batch


def empty_lists(n: int, kind: pa.ListType) -> pa.Array:
    """``n`` empty lists of type ``kind`` (message headers when no message has any), without a Python list
    per row (``pa.array([[]] * n)`` costs ~2 us a row)."""
    import numpy as np
    import pyarrow as pa

    offsets = pa.array(np.zeros(n + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array([], kind.value_type), type=kind)


def _needs_text(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_timestamp(kind) or pa.types.is_date(kind) or pa.types.is_time(kind))


def _plain(kind: pa.DataType) -> bool:
    import pyarrow as pa

    return bool(
        pa.types.is_integer(kind)
        or pa.types.is_floating(kind)
        or pa.types.is_boolean(kind)
        or pa.types.is_string(kind)
        or pa.types.is_null(kind)
    )


def parse_objects(raws: Sequence[bytes | str | None]) -> tuple[list[dict[str, Any] | None], dict[int, str]]:
    """Each raw value as a JSON object (None for a null value: a Kafka tombstone), and why the others were
    refused."""
    rows: list[dict[str, Any] | None] = []
    refused: dict[int, str] = {}
    loads = json.loads
    for i, raw in enumerate(raws):
        if raw is None:
            rows.append(None)
            continue
        try:
            value = loads(raw, parse_float=decimal.Decimal)
        except (ValueError, UnicodeDecodeError) as exc:
            refused[i] = f"not JSON: {exc}"
            rows.append(None)
            continue
        if not isinstance(value, dict):
            refused[i] = f"not a JSON object: a {type(value).__name__}"
            rows.append(None)
            continue
        rows.append(value)
    return rows, refused


def to_batch(
    rows: Sequence[dict[str, Any] | None],
    declared: list[ColumnPlan],
    refused: dict[int, str] | None = None,
    extra: dict[str, pa.Array] | None = None,
) -> Parsed:
    """Typed columns of the rows not already ``refused`` (declared columns first, then inferred ones in
    order of appearance), plus ``extra`` columns (message metadata, one value per input row)."""
    import pyarrow as pa

    refused = dict(refused or {})
    by_name = {c.name: c for c in declared}
    names: dict[str, None] = dict.fromkeys(by_name)
    for i, row in enumerate(rows):
        if row is not None and i not in refused:
            names.update(dict.fromkeys(row))
    columns: dict[str, tuple[pa.DataType, list[Any]]] = {}
    for name in names:
        values = [None if row is None else row.get(name) for row in rows]
        plan = by_name.get(name)
        target = plan.arrow_type if plan is not None else _infer([v for i, v in enumerate(values) if i not in refused])
        converted = [_convert(v, target, name, i, refused) for i, v in enumerate(values)]
        columns[name] = (target, converted)
    kept = [i for i in range(len(rows)) if i not in refused]
    from lakeforge.lake.naming import lake_column_names

    lake_names = lake_column_names(list(columns), table="message")
    arrays, fields = [], []
    take = pa.array(kept, pa.int64())
    for (name, (target, values)), lake_name in zip(columns.items(), lake_names, strict=True):
        arrays.append(pa.array([values[i] for i in kept], target))
        fields.append(pa.field(by_name[name].lake_name if name in by_name else lake_name, target))
    for name, array in (extra or {}).items():
        arrays.append(array.take(take))
        fields.append(pa.field(name, array.type))
    batch = pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))
    return Parsed(batch, kept, refused)


def _infer(values: list[Any]) -> pa.DataType:
    import pyarrow as pa

    kinds = {_kind(v) for v in values if v is not None}
    if kinds == {"bool"}:
        return pa.bool_()
    if kinds == {"int"}:
        return pa.int64()
    if kinds and kinds <= {"int", "float"}:
        return pa.float64()
    return pa.string()


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, decimal.Decimal | float):
        return "float"
    if isinstance(value, str):
        return "str"
    return "json"


def _convert(value: Any, target: pa.DataType, name: str, i: int, refused: dict[int, str]) -> Any:
    if value is None or i in refused:
        return None
    try:
        return convert_value(value, target)
    except (ValueError, TypeError, ArithmeticError, OverflowError) as exc:
        refused[i] = f"column '{name}': {exc}"
        return None


def convert_value(value: Any, target: pa.DataType) -> Any:
    """``value`` (as ``json.loads`` with exact decimals returns it) as a Python value of Arrow type ``target``,
    exactly; raises ValueError/TypeError saying why it does not fit."""
    import pyarrow as pa

    kind = _kind(value)
    if pa.types.is_string(target) or pa.types.is_large_string(target):
        return value if kind == "str" else json_text(value)
    if pa.types.is_boolean(target):
        if kind != "bool":
            raise TypeError(f"{_show(value)} is not a boolean")
        return value
    if pa.types.is_integer(target):
        if kind != "int":
            raise TypeError(f"{_show(value)} is not an integer")
        info = _int_range(target)
        if not info[0] <= value <= info[1]:
            raise ValueError(f"{value} is out of range for {target}")
        return value
    if pa.types.is_floating(target):
        if kind not in ("int", "float"):
            raise TypeError(f"{_show(value)} is not a number")
        return float(value)
    if pa.types.is_decimal(target):
        return _decimal(value, kind, target)
    if pa.types.is_timestamp(target):
        return _timestamp(value, kind, target)
    if pa.types.is_date(target):
        if kind != "str":
            raise TypeError(f"{_show(value)} is not a date (YYYY-MM-DD)")
        return dt.date.fromisoformat(value)
    if pa.types.is_binary(target):
        if kind != "str":
            raise TypeError(f"{_show(value)} is not a string")
        return value.encode()
    raise TypeError(f"no conversion from JSON to {target}")


def json_text(value: Any) -> str:
    """``value`` as compact JSON text, numbers with the digits they were written with (``json.dumps`` would
    turn an exact ``Decimal`` into a string)."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k))}:{json_text(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(json_text(v) for v in value) + "]"
    return json.dumps(value)


def _show(value: Any) -> str:
    text = json.dumps(value, default=str)
    return text if len(text) <= 40 else text[:37] + "..."


def _int_range(target: pa.DataType) -> tuple[int, int]:
    bits = target.bit_width
    if str(target).startswith("u"):
        return 0, 2**bits - 1
    return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1


def _decimal(value: Any, kind: str, target: Any) -> decimal.Decimal:
    if kind == "str":
        try:
            number = decimal.Decimal(value)
        except decimal.InvalidOperation:
            raise ValueError(f"{_show(value)} is not a decimal number") from None
    elif kind in ("int", "float"):
        number = decimal.Decimal(value)
    else:
        raise TypeError(f"{_show(value)} is not a decimal number")
    if not number.is_finite():
        raise ValueError(f"{value} is not a finite number")
    exponent = number.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > target.scale and number != number.quantize(decimal.Decimal(1).scaleb(-target.scale)):
        raise ValueError(
            f"{value} has more than {target.scale} decimal places (decimal({target.precision},{target.scale}))"
        )
    digits = len(number.quantize(decimal.Decimal(1).scaleb(-target.scale)).as_tuple().digits)
    if digits > target.precision:
        raise ValueError(f"{value} does not fit decimal({target.precision},{target.scale})")
    return number


def _timestamp(value: Any, kind: str, target: Any) -> dt.datetime:
    if kind == "int":
        moment = _EPOCH + dt.timedelta(milliseconds=value)
    elif kind == "str":
        try:
            moment = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{_show(value)} is not an ISO 8601 timestamp") from None
    else:
        raise TypeError(f"{_show(value)} is not a timestamp (ISO 8601 text or epoch milliseconds)")
    if target.tz is None:
        return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)
    return moment.replace(tzinfo=dt.UTC) if moment.tzinfo is None else moment.astimezone(dt.UTC)
