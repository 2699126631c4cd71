"""The bounds of ``partition_by`` ranges: every cut point written as a literal that reads back as the value."""

from __future__ import annotations

import datetime as dt

from lakeforge.distributed.ranges import _scale, key_ranges


def test_cut_points_round_trip_as_literals() -> None:
    samples = [
        (dt.datetime(2024, 3, 31, 1, 59, 59, 999999), "'{}'"),
        (dt.datetime(1969, 12, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))), "'{}+00:00'"),
        (dt.date(2024, 2, 29), "'{}'"),
        (-42, "{}"),
    ]
    for value, shape in samples:
        to_int, literal = _scale(value)
        n = to_int(value)
        text = literal(n)
        if isinstance(value, dt.datetime):
            back = dt.datetime.fromisoformat(text.strip("'"))
            assert back == value and (back.tzinfo is None) == (value.tzinfo is None), text
            expect = value.astimezone(dt.UTC).replace(tzinfo=None) if value.tzinfo else value
            assert text == shape.format(expect.isoformat(sep=" ", timespec="microseconds")), text
        elif isinstance(value, dt.date):
            assert text == "'2024-02-29'"
        else:
            assert text == "-42"


def test_cuts_split_a_timestamp_span_evenly() -> None:
    # four ranges of one day and one microsecond (the span rounded up), the last open-ended
    to_int, literal = _scale(dt.datetime(2024, 1, 1))
    cuts = [start for start, _ in key_ranges(to_int(dt.datetime(2024, 1, 1)), to_int(dt.datetime(2024, 1, 5)), 4)][1:]
    assert [literal(c) for c in cuts] == [
        "'2024-01-02 00:00:00.000001'",
        "'2024-01-03 00:00:00.000002'",
        "'2024-01-04 00:00:00.000003'",
    ]
