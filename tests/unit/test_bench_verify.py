"""The bench's correctness check: a contender whose output differs from the source is reported WRONG.

Real Arrow data through the same ``tally`` the bench uses on every contender's output (Delta, Parquet,
Iceberg all end as a pyarrow dataset), compared with a source fingerprint by ``judge``.
"""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from bench.verify import Check, Truth, judge, tally

UTC = dt.UTC
TRUTH = Truth(rows=3, amount_sum="6.06", id_sum=6, null_notes=1, max_updated="2024-01-01 12:00:00.000003")


def table(**change: object) -> pa.Table:
    cols: dict[str, object] = {
        "id": pa.array([1, 2, 3], pa.int64()),
        "amount": pa.array([decimal.Decimal("1.01"), decimal.Decimal("2.02"), decimal.Decimal("3.03")],
                           pa.decimal128(12, 2)),
        "note": pa.array(["a", None, "c"], pa.string()),
        "updated_at": pa.array([dt.datetime(2024, 1, 1, 11, tzinfo=UTC), dt.datetime(2024, 1, 1, 11, 30, tzinfo=UTC),
                                dt.datetime(2024, 1, 1, 12, 0, 0, 3, tzinfo=UTC)], pa.timestamp("us", tz="UTC")),
    }
    cols.update(change)
    return pa.table(cols)


def check(t: pa.Table, tmp_path: Path) -> Check:
    """Through a Parquet file, as the bench reads pandas' and Sling's output."""
    ds.write_dataset(t, tmp_path / "out", format="parquet")
    return judge(tally(ds.dataset(tmp_path / "out", format="parquet")), TRUTH)


def test_exact_output_is_ok(tmp_path: Path) -> None:
    result = check(table(), tmp_path)
    assert result.ok, result.problem
    assert (result.rows, result.amount_sum, result.id_sum, result.null_notes) == (3, "6.06", 6, 1)
    assert result.max_updated == "2024-01-01 12:00:00.000003"
    assert result.amount_type == "decimal128(12, 2)" and result.problem == ""


def test_same_instant_in_another_zone_is_ok(tmp_path: Path) -> None:
    berlin = table(updated_at=table().column("updated_at").cast(pa.timestamp("us", tz="Europe/Berlin")))
    assert check(berlin, tmp_path).ok


@pytest.mark.parametrize(
    ("change", "reported"),
    [
        ({"id": pa.array([1, 2, 4], pa.int64())}, "id_sum 7, source 6"),
        ({"amount": pa.array([decimal.Decimal("1.01"), decimal.Decimal("2.02"), decimal.Decimal("3.04")],
                             pa.decimal128(12, 2))}, "sum(amount) 6.07, source 6.06"),
        ({"note": pa.array(["a", "", "c"], pa.string())}, "null_notes 0, source 1"),
        # the wall clock kept but the zone lost: a UTC+1 local time stored as if it were UTC
        ({"updated_at": pa.array([dt.datetime(2024, 1, 1, 13, 0, 0, 3)] * 3, pa.timestamp("us"))},
         "max_updated 2024-01-01 13:00:00.000003, source 2024-01-01 12:00:00.000003"),
        ({"updated_at": pa.array(["2024-01-01 12:00:00.000003"] * 3, pa.string())}, "max_updated stored as string"),
    ],
)
def test_a_differing_output_is_wrong(tmp_path: Path, change: dict[str, pa.Array], reported: str) -> None:
    result = check(table(**change), tmp_path)
    assert not result.ok
    assert reported in result.problem


def test_lost_and_duplicated_rows_are_wrong(tmp_path: Path) -> None:
    t = table()
    lost = judge(tally(ds.dataset(t.slice(0, 2))), TRUTH)
    assert not lost.ok and "2 rows, source has 3" in lost.problem
    doubled = judge(tally(ds.dataset(pa.concat_tables([t, t.slice(2)]))), TRUTH)
    assert not doubled.ok and "4 rows, source has 3" in doubled.problem


def test_float_amount_is_flagged_inexact_even_when_it_sums_right(tmp_path: Path) -> None:
    result = check(table(amount=pa.array([1.01, 2.02, 3.03], pa.float64())), tmp_path)
    assert result.amount_sum == "6.06" and result.amount_type == "double"
    assert result.ok and "amount stored as double (inexact)" in result.problem


def test_raw_driver_tally_is_judged_on_what_it_measured() -> None:
    assert judge(Check(3, "6.06", "arrow (not written)"), TRUTH).ok
    assert not judge(Check(3, "6.05", "arrow (not written)"), TRUTH).ok
