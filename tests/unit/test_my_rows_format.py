"""``sources/mysql/rows.py`` on byte strings written by hand from MySQL's documented binary formats (the live
comparison with ``mysql-replication`` on real events is ``tests/integration/cdc/test_my_rows.py``)."""

from __future__ import annotations

import datetime as dt
import decimal
from types import SimpleNamespace
from typing import Any

from lakeforge.sources.mysql.rows import compile_rows


def _decode(columns: list[Any], data: bytes) -> list[dict[str, Any]]:
    rows = compile_rows(columns)
    assert rows is not None
    out: list[dict[str, Any]] = []
    assert rows(data, 0, len(data), out) == len(data)
    return out


def test_decimal_from_the_documented_example() -> None:
    # MySQL's manual (decimal storage): 1234567890.1234 as DECIMAL(14,4) is 81 0D FB 38 D2 04 D2,
    # and -1234567890.1234 is 7E F2 04 C7 2D FB 2D
    column = SimpleNamespace(name="d", type=246, precision=14, decimals=4)
    rows = _decode([column], bytes.fromhex("00 810DFB38D204D2 00 7EF204C72DFB2D 01"))
    assert [r["d"] for r in rows] == [decimal.Decimal("1234567890.1234"), decimal.Decimal("-1234567890.1234"), None]
    assert rows[0]["d"].as_tuple().exponent == -4


def test_integers_text_and_datetime2() -> None:
    columns = [
        SimpleNamespace(name="i", type=3, unsigned=False),
        SimpleNamespace(name="u", type=1, unsigned=True),
        SimpleNamespace(name="s", type=15, max_length=40, character_set_name="utf8mb4"),
        SimpleNamespace(name="t", type=18, fsp=6),
    ]
    # 2024-02-29 12:34:56.000123: year*13+month = 26314 in 17 bits after the sign bit, day 29, 12:34:56
    packed = (1 << 39) | (26314 << 22) | (29 << 17) | (12 << 12) | (34 << 6) | 56
    data = b"\x00" + (-5).to_bytes(4, "little", signed=True) + b"\xfa" + bytes([4]) + "h\xe9!".encode()
    data += packed.to_bytes(5, "big") + (123).to_bytes(3, "big")
    data += b"\x0e" + (7).to_bytes(4, "little")  # second row: u, s and t NULL (bits 1, 2, 3 of the bitmap)
    rows = _decode(columns, data)
    assert rows[0] == {"i": -5, "u": 250, "s": "h\xe9!", "t": dt.datetime(2024, 2, 29, 12, 34, 56, 123)}
    assert rows[1] == {"i": 7, "u": None, "s": None, "t": None}
