"""Clamp ``±infinity`` dates and timestamps on the client instead of in the bulk read's SELECT.

The plan's expression for a date/timestamp column (``types.guard_range``) clamps ``infinity`` to Delta's last
instant and ``-infinity`` to its first, and refuses other values outside 0001-01-01 .. 9999-12-31. PostgreSQL
evaluates that CASE for every row: ~0.3 s of server CPU per column and million rows, on the same two cores
as the client's decoding (docs/benchmarks.md, Issue #14). The bulk reader selects the bare column instead and
checks the batch here, one vectorised min/max per column; a column with every value in range (the usual
case) passes untouched.

What ADBC gives for the values outside the range, checked by ``tests/integration/test_pg_range_clamp.py``:
PostgreSQL sends ``infinity`` as the largest int64 (int32 for dates) and ``-infinity`` as the smallest, and
ADBC adds the 2000-01-01 epoch offset with wrap-around. So ``-infinity`` arrives as ``MIN + offset`` and
``infinity`` as ``MIN + offset - 1`` (one below); finite values of years past 294246 wrap to below both, and
every other finite value (4713 BC .. 294246) stays far above them. The two sentinels are therefore exactly
the infinities, and anything else outside Delta's range is a real value that no Delta type holds: refused,
naming the column, as the server-side guard does.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import TablePlan

_EPOCH_US = 946_684_800_000_000
"""2000-01-01 (PostgreSQL's epoch) in Unix microseconds; 10,957 days."""
_EPOCH_DAYS = 10_957
_INT64_MIN = -(2**63)
_INT32_MIN = -(2**31)
_UNIX = dt.datetime(1970, 1, 1)
_LOW_US = (dt.datetime(1, 1, 1) - _UNIX) // dt.timedelta(microseconds=1)
_HIGH_US = (dt.datetime(9999, 12, 31, 23, 59, 59, 999999) - _UNIX) // dt.timedelta(microseconds=1)
_LOW_DAYS = (dt.date(1, 1, 1) - _UNIX.date()).days
_HIGH_DAYS = (dt.date(9999, 12, 31) - _UNIX.date()).days


class Bounds:
    """Delta's range and ADBC's two infinity sentinels for one column type, as integers."""

    def __init__(self, *, low: int, high: int, minus_infinity: int, storage: Any) -> None:
        self.low, self.high = low, high
        self.minus_infinity, self.infinity = minus_infinity, minus_infinity - 1
        self.storage = storage
        """The integer type the column's buffers hold (int64 for timestamps, int32 for dates)."""


def _bounds(typname: str) -> Bounds:
    import pyarrow as pa

    if typname == "date":
        return Bounds(low=_LOW_DAYS, high=_HIGH_DAYS, minus_infinity=_INT32_MIN + _EPOCH_DAYS, storage=pa.int32())
    return Bounds(low=_LOW_US, high=_HIGH_US, minus_infinity=_INT64_MIN + _EPOCH_US, storage=pa.int64())


def clamped_columns(plan: TablePlan, quote: Any) -> dict[int, str]:
    """Positions of the columns whose expression is exactly the standard range guard, with their type name."""
    from lakeforge.sources.postgres.types import guard_range, render

    found = {}
    for i, col in enumerate(plan.columns):
        for typname in ("date", "timestamp", "timestamptz"):
            if col.select_expr == render(guard_range("{col}", typname), quote(col.name), col.name):
                found[i] = typname
    return found


def read_plan(plan: TablePlan, clamped: dict[int, str], quote: Any) -> TablePlan:
    """``plan`` whose clamped columns select the bare column (a copy: the plan itself is unchanged)."""
    columns = list(plan.columns)
    for i in clamped:
        columns[i] = replace(columns[i], select_expr=quote(columns[i].name))
    return replace(plan, columns=columns)


def clamp(batch: pa.RecordBatch, clamped: dict[int, str], plan: TablePlan, source: str) -> pa.RecordBatch:
    """``batch`` with the infinities of the clamped columns moved to Delta's ends; other values outside the
    range stop the read."""
    import pyarrow as pa

    if not clamped or batch.num_rows == 0:
        return batch
    arrays = list(batch.columns)
    changed = False
    for i, typname in clamped.items():
        fixed = _clamp_array(arrays[i], _bounds(typname), plan.columns[i].name, source)
        if fixed is not None:
            arrays[i], changed = fixed, True
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names) if changed else batch


def _clamp_array(array: pa.Array, bounds: Bounds, name: str, source: str) -> pa.Array | None:
    """The clamped array, or None when every value is in range."""
    import pyarrow as pa
    import pyarrow.compute as pc

    ints = array.view(bounds.storage)
    extremes = pc.min_max(ints)
    low, high = extremes["min"].as_py(), extremes["max"].as_py()
    if low is None or (low >= bounds.low and high <= bounds.high):
        return None
    outside = pc.or_(pc.less(ints, bounds.low), pc.greater(ints, bounds.high))
    odd = pc.filter(ints, outside).to_pylist()
    for value in odd:
        if value not in (bounds.infinity, bounds.minus_infinity):
            raise SourceError(
                source,
                f"read failed: lakeforge: column {name} holds {_render(value, bounds)}, "
                "outside the Delta range 0001-01-01 .. 9999-12-31",
            )
    lows = pa.array([bounds.low], bounds.storage)[0]
    highs = pa.array([bounds.high], bounds.storage)[0]
    fixed = pc.if_else(pc.equal(ints, bounds.infinity), highs, ints)
    fixed = pc.if_else(pc.equal(fixed, bounds.minus_infinity), lows, fixed)
    return fixed.view(array.type)


def _render(value: int, bounds: Bounds) -> str:
    """The refused value as PostgreSQL prints it (``0044-03-15 BC``), as far as ADBC kept it."""
    if value < bounds.infinity:  # wrapped around past the largest int
        return "a value after the year 294246"
    if bounds.high == _HIGH_DAYS:
        return _civil(value)
    days, micros = divmod(value, 86_400_000_000)
    seconds, fraction = divmod(micros, 1_000_000)
    clock = f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}.{fraction:06d}"
    day = _civil(days)
    return f"{day[:-3]} {clock} BC" if day.endswith(" BC") else f"{day} {clock}"


def _civil(days: int) -> str:
    """Days since 1970-01-01 as a proleptic Gregorian date, for any year (H. Hinnant's civil_from_days)."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    year = yoe + era * 400 + (1 if month <= 2 else 0)
    return f"{year:04d}-{month:02d}-{day:02d}" if year > 0 else f"{1 - year:04d}-{month:02d}-{day:02d} BC"
