"""Types DuckDB can return that Delta cannot store are widened or spelled out before writing."""

from __future__ import annotations

import pyarrow as pa

from lakeforge.transform.session import literal
from lakeforge.transform.write import delta_type


def test_delta_types() -> None:
    assert delta_type(pa.uint8()) == pa.int32()
    assert delta_type(pa.uint32()) == pa.int64()
    assert delta_type(pa.uint64()) == pa.decimal128(20, 0)
    assert delta_type(pa.time64("us")) == pa.string()
    assert delta_type(pa.null()) == pa.string()
    assert delta_type(pa.large_string()) == pa.string()
    assert delta_type(pa.timestamp("ns", "UTC")) == pa.timestamp("us", "UTC")
    for kept in (pa.int64(), pa.decimal128(38, 2), pa.date32(), pa.timestamp("us", "UTC"), pa.bool_()):
        assert delta_type(kept) == kept


def test_literals() -> None:
    import datetime as dt

    assert literal("it's") == "'it''s'"
    assert literal(dt.date(2005, 1, 1)) == "CAST('2005-01-01' AS DATE)"
    assert literal(dt.datetime(2005, 1, 1, tzinfo=dt.UTC)) == "CAST('2005-01-01T00:00:00+00:00' AS TIMESTAMPTZ)"
    assert literal(None) == "NULL" and literal(True) == "TRUE" and literal(7) == "7"
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    stamp = dt.datetime(2005, 1, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    values = [dt.date(2005, 1, 1), stamp, dt.datetime(2005, 1, 1, 0, 0, 1), "it's", 7, 2.5, None]
    row = con.execute("SELECT " + ", ".join(literal(v) for v in values)).fetchone()
    assert row is not None
    assert list(row[:1]) + [row[1].astimezone(dt.UTC)] + list(row[2:]) == [
        values[0],
        stamp.astimezone(dt.UTC),
        *values[2:],
    ]
