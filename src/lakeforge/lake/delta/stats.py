"""Delta ``add`` statistics (``numRecords``, ``minValues``, ``maxValues``, ``nullCount``) from a Parquet footer.

What ``write_deltalake`` records, for files lakeforge writes itself (``load/staged.py``): the first
``INDEXED_COLUMNS`` top-level columns (Delta's ``dataSkippingNumIndexedCols`` default), null counts for each,
min/max where the value is safe to compare. Bounds are conservative: a timestamp's min is rounded down and its
max up to the millisecond (Delta stats carry milliseconds), decimals are written as their exact text, and
types whose bounds could mislead a reader are left out (floats: NaN is not in Parquet's min/max; strings over
32 characters: delta-rs truncates those; time stamps without a zone, binary, booleans, nested types). A
column without min/max is simply not skipped by readers.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

INDEXED_COLUMNS = 32
_MAX_STRING = 32
_EXACT = decimal.Context(prec=80)
"""Enough digits for any decimal128 (38) or decimal256 (76): the default context (28) would round."""


def delta_stats(meta: Any, schema: pa.Schema, rows: int) -> str:
    """The ``stats`` JSON of one file from its ``pyarrow.parquet.FileMetaData``."""
    indexed = {f.name: f.type for f in list(schema)[:INDEXED_COLUMNS]}
    nulls: dict[str, int] = {}
    lows: dict[str, Any] = {}
    highs: dict[str, Any] = {}
    no_nulls: set[str] = set()
    no_bounds: set[str] = set()
    for g in range(meta.num_row_groups):
        group = meta.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            name = chunk.path_in_schema
            if name not in indexed:
                continue  # a nested column's leaves ("a.list.element") and columns past the indexed ones
            st = chunk.statistics
            if st is None:
                no_nulls.add(name)
                no_bounds.add(name)
                continue
            if st.has_null_count:
                nulls[name] = nulls.get(name, 0) + st.null_count
            else:
                no_nulls.add(name)
            if st.has_min_max and _bounded(indexed[name]):
                lo, hi = st.min_raw, st.max_raw  # not .min/.max: a time stamp's makes pyarrow import pandas (1 s)
                lows[name] = lo if name not in lows else min(lows[name], lo)
                highs[name] = hi if name not in highs else max(highs[name], hi)
            elif st.num_values > 0:
                no_bounds.add(name)  # a row group with values but no bounds: no bounds for the file
    low_json = {n: _json(v, indexed[n], up=False) for n, v in lows.items() if n not in no_bounds}
    high_json = {n: _json(v, indexed[n], up=True) for n, v in highs.items() if n not in no_bounds}
    keep = [n for n in indexed if low_json.get(n) is not None and high_json.get(n) is not None]
    counted = [n for n in indexed if n in nulls and n not in no_nulls]
    parts = [
        f'"numRecords":{rows}',
        '"minValues":' + _object({n: low_json[n] for n in keep}),
        '"maxValues":' + _object({n: high_json[n] for n in keep}),
        '"nullCount":' + _object({n: str(nulls[n]) for n in counted}),
    ]
    return "{" + ",".join(parts) + "}"


def _object(encoded: dict[str, str | None]) -> str:
    """A JSON object of values already encoded as JSON text."""
    return "{" + ",".join(f"{json.dumps(k)}:{v}" for k, v in encoded.items()) + "}"


def _bounded(t: pa.DataType) -> bool:
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        return bool(t.tz is not None and t.unit == "us")
    return bool(
        pa.types.is_integer(t)
        or pa.types.is_decimal(t)
        or pa.types.is_date32(t)
        or pa.types.is_string(t)
        or pa.types.is_large_string(t)
    )


def _json(raw: Any, t: pa.DataType, *, up: bool) -> str | None:
    """A raw Parquet bound (int or bytes) of a column of type ``t`` as Delta's JSON text, or None when it
    gives no safe bound."""
    import pyarrow as pa

    if pa.types.is_timestamp(t):
        ms, rest = divmod(int(raw), 1000)
        ms += 1 if up and rest else 0
        try:
            when = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=ms)
        except OverflowError:  # 9999-12-31 23:59:59.999999 rounded up: no bound to give
            return None
        return json.dumps(when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z")
    if pa.types.is_date32(t):
        return json.dumps((dt.date(1970, 1, 1) + dt.timedelta(days=int(raw))).isoformat())
    if pa.types.is_decimal(t):
        unscaled = int.from_bytes(raw, "big", signed=True) if isinstance(raw, bytes) else int(raw)
        return format(decimal.Decimal(unscaled).scaleb(-t.scale, _EXACT), "f")
    if pa.types.is_integer(t):
        return str(int(raw))
    try:
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
    except UnicodeDecodeError:
        return None
    return json.dumps(text) if len(text) <= _MAX_STRING else None
