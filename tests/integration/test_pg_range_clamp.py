"""Dates and timestamps clamped on the client (``sources/postgres/ranges.py``), through the real ADBC driver.

The bulk read selects the bare column; ADBC's encoding of the infinities (two sentinels just above the int's
minimum) and of values past year 294246 (wrapped below them) is what the client check relies on: pinned here
value by value, so a driver that changes it fails this test instead of landing a wrong value.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pyarrow as pa
import pytest

from lakeforge.config.models import PostgresSource as PostgresConfig
from lakeforge.config.models import TableConfig
from lakeforge.errors import SourceError
from lakeforge.sources.base import TableRef
from lakeforge.sources.postgres import ranges
from lakeforge.sources.postgres.source import PostgresSource
from lakeforge.sources.sql import SqlSource
from tests.conftest import PgDatabase

pytestmark = pytest.mark.integration
UTC = dt.UTC
LAST = dt.datetime(9999, 12, 31, 23, 59, 59, 999999)
FIRST = dt.datetime(1, 1, 1)


@pytest.fixture
def source(pg_db: PgDatabase) -> Iterator[PostgresSource]:
    pg_db.execute("""
        CREATE TABLE t (id int PRIMARY KEY, ts timestamp, tz timestamptz, d date);
        INSERT INTO t VALUES
          (1, 'infinity', 'infinity', 'infinity'),
          (2, '-infinity', '-infinity', '-infinity'),
          (3, '9999-12-31 23:59:59.999999', '9999-12-31 23:59:59.999999+00', '9999-12-31'),
          (4, '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '0001-01-01'),
          (5, '2024-02-29 12:34:56.789012', '2024-02-29 12:34:56.789012+02', '2024-02-29'),
          (6, NULL, NULL, NULL);
    """)
    src = PostgresSource("src", PostgresConfig(type="postgres", url=pg_db.url))
    yield src
    src.close()


def _read(source: PostgresSource) -> list[dict[str, object]]:
    plan = source.describe(TableRef("public", "t"), TableConfig())
    assert ranges.clamped_columns(plan, source.quote) == {1: "timestamp", 2: "timestamptz", 3: "date"}
    data = pa.Table.from_batches(list(source.read(plan, batch_size=100)), schema=plan.arrow_schema())
    reference = pa.Table.from_batches(list(SqlSource.read(source, plan, batch_size=100)), schema=plan.arrow_schema())
    assert data.sort_by("id").equals(reference.sort_by("id"))  # the client clamp equals the server's guard
    return data.sort_by("id").to_pylist()


def test_infinities_clamped_on_the_client_like_the_server_guard(source: PostgresSource) -> None:
    rows = _read(source)
    assert [r["ts"] for r in rows] == [LAST, FIRST, LAST, FIRST, dt.datetime(2024, 2, 29, 12, 34, 56, 789012), None]
    assert [r["tz"] for r in rows[:2]] == [LAST.replace(tzinfo=UTC), FIRST.replace(tzinfo=UTC)]
    assert rows[4]["tz"] == dt.datetime(2024, 2, 29, 10, 34, 56, 789012, tzinfo=UTC)
    assert [r["d"] for r in rows] == [
        dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(9999, 12, 31), dt.date(1, 1, 1), dt.date(2024, 2, 29), None
    ]


def test_the_bulk_select_has_no_server_side_guard(source: PostgresSource) -> None:
    plan = source.describe(TableRef("public", "t"), TableConfig())
    fast = ranges.read_plan(plan, ranges.clamped_columns(plan, source.quote), source.quote)
    assert [c.select_expr for c in fast.columns] == ['"id"', '"ts"', '"tz"', '"d"']
    assert "infinity" in plan.columns[1].select_expr  # the plan itself (CDC snapshot, other readers) keeps it


@pytest.mark.parametrize(
    ("column", "value", "shown"),
    [
        ("ts", "'0044-03-15 12:00:00 BC'", "0044-03-15 12:00:00.000000 BC"),
        ("ts", "'10000-01-01 00:00:00'", "10000-01-01 00:00:00.000000"),
        ("ts", "'294270-01-01 00:00:00'", "a value after the year 294246"),  # wraps in ADBC: still refused
        ("tz", "'0001-12-31 23:59:59.999999+00 BC'", "0001-12-31 23:59:59.999999 BC"),
        ("tz", "'294276-12-31 23:59:59.999999+00'", "a value after the year 294246"),
        ("d", "'0044-03-15 BC'", "0044-03-15 BC"),
        ("d", "'5874897-12-31'", "5874897-12-31"),
    ],
)
def test_values_outside_delta_range_are_refused_naming_them(
    source: PostgresSource, pg_db: PgDatabase, column: str, value: str, shown: str
) -> None:
    pg_db.execute(f"UPDATE t SET {column} = {value} WHERE id = 5")
    plan = source.describe(TableRef("public", "t"), TableConfig())
    with pytest.raises(SourceError, match=f"column {column} holds {shown}, outside the Delta range"):
        list(source.read(plan, batch_size=100))
