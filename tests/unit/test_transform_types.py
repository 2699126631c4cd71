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
    assert literal(dt.date(2005, 1, 1)) == "DATE '2005-01-01'"
    assert literal(dt.datetime(2005, 1, 1, tzinfo=dt.UTC)) == "TIMESTAMPTZ '2005-01-01T00:00:00+00:00'"
    assert literal(None) == "NULL" and literal(True) == "TRUE" and literal(7) == "7"
