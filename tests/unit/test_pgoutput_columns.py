"""pgoutput text -> Arrow: the whole-column conversion (Arrow's cast, used for speed) gives exactly what the
per-value rules give, and leaves every value those rules treat specially (infinity, BC, NaN, out of range) to
them. The CDC type test (tests/integration/cdc/test_pg_cdc_types.py) mixes such values into most columns, so
this is where the fast path itself is checked value for value."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest

from lakeforge.errors import ConversionError
from lakeforge.sources.postgres.pgoutput import _parser, _whole_column, text_to_arrow

# target -> values as the walsender writes them (DateStyle ISO, TimeZone UTC, extra_float_digits 3)
PLAIN: dict[str, tuple[pa.DataType, list[str | None]]] = {
    "int2": (pa.int16(), ["-32768", "32767", "0", None, "7"]),
    "int4": (pa.int32(), ["-2147483648", "2147483647", None]),
    "int8": (pa.int64(), ["9223372036854775807", "-9223372036854775808", "-1", None]),
    "float8": (pa.float64(), ["0.1", "Infinity", "-Infinity", "-0", "1e-320", "1.7976931348623157e+308",
                              "4.9406564584124654e-324", "123456.78900000001", None]),
    "numeric(12,3)": (pa.decimal128(12, 3), ["123456789.123", "-0.001", "0.000", "1.500", None]),
    "numeric(38,2)": (pa.decimal128(38, 2), ["999999999999999999999999999999999999.99", "-0.50", None]),
    "numeric(5,5)": (pa.decimal128(5, 5), ["0.12345", "-0.00001"]),
    "bool": (pa.bool_(), ["t", "f", None]),
    "text": (pa.string(), ["héllo, \"wörld\"", "", None, "{x}"]),
    "date": (pa.date32(), ["2024-02-29", "0001-01-01", "9999-12-31", "1999-12-31", None]),
    "timestamp": (pa.timestamp("us"), ["2024-01-02 03:04:05.123456", "2024-01-02 03:04:05", "2024-01-02 03:04:05.5",
                                       "0001-01-01 00:00:00", "9999-12-31 23:59:59.999999", None]),
    "timestamptz": (pa.timestamp("us", tz="UTC"), ["2024-01-02 01:04:05.5+00", "2024-01-02 03:04:05+02",
                                                   "2024-01-02 03:04:05.000001-05:30", "0001-01-01 00:00:00+00",
                                                   "9999-12-31 23:59:59.999999+00", None]),
}

# values the per-value rules clamp or refuse: Arrow's cast must refuse them too, so the column falls back
SPECIAL: list[tuple[pa.DataType, str]] = [
    (pa.date32(), "infinity"), (pa.date32(), "-infinity"), (pa.date32(), "0044-03-15 BC"),
    (pa.date32(), "10000-01-01"),
    (pa.timestamp("us"), "infinity"), (pa.timestamp("us"), "-infinity"),
    (pa.timestamp("us"), "0044-03-15 12:00:00 BC"), (pa.timestamp("us"), "10000-01-01 00:00:00"),
    (pa.timestamp("us", tz="UTC"), "infinity"), (pa.timestamp("us", tz="UTC"), "-infinity"),
    (pa.timestamp("us", tz="UTC"), "0044-03-15 12:00:00+00 BC"),
    (pa.timestamp("us", tz="UTC"), "10000-01-01 00:00:00+00"),
    (pa.decimal128(12, 3), "NaN"), (pa.decimal128(12, 3), "Infinity"), (pa.decimal128(12, 3), "1.2345"),
    (pa.decimal128(12, 3), "1234567890.000"),
    (pa.int16(), "32768"), (pa.int64(), "9223372036854775808"),
]


def _per_value(values: list[Any], target: pa.DataType) -> pa.Array:
    parse = _parser(target)
    return pa.array([None if v is None else parse(v) for v in values], type=target)


@pytest.mark.parametrize("name", list(PLAIN))
def test_whole_column_equals_per_value_rules(name: str) -> None:
    target, values = PLAIN[name]
    whole = _whole_column(values, target)
    assert whole is not None, f"{name}: the whole-column path was not taken"
    expected = _per_value(values, target)
    assert whole.type == target
    assert whole.equals(expected), f"{name}: {whole.to_pylist()} != {expected.to_pylist()}"
    if target == pa.float64():  # equals() treats -0.0 as 0.0: compare the bits
        assert [repr(v) for v in whole.to_pylist()] == [repr(v) for v in expected.to_pylist()]


@pytest.mark.parametrize(("target", "value"), SPECIAL, ids=lambda x: str(x))
def test_special_values_fall_back(target: pa.DataType, value: str) -> None:
    ordinary = {pa.date32(): "2024-01-02", pa.timestamp("us"): "2024-01-02 00:00:00",
                pa.timestamp("us", tz="UTC"): "2024-01-02 00:00:00+00"}.get(target, "1")
    assert _whole_column([ordinary, value, None], target) is None
    try:
        expected: pa.Array | None = _per_value([ordinary, value, None], target)
    except (ValueError, ArithmeticError, pa.ArrowInvalid):  # OverflowError is an ArithmeticError
        expected = None
    if expected is None:
        with pytest.raises(ConversionError):
            text_to_arrow([ordinary, value, None], target, "c")
    else:
        assert text_to_arrow([ordinary, value, None], target, "c").equals(expected)
