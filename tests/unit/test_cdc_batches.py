"""Row batches, the readers' columnar form of log changes: the loader's one-step path builds the same Arrow table
as the per-change path, keeps each key's last change as the dict did, and the binlog decoder's tuples hold the
same values as its dicts. (The live paths run in ``tests/integration/cdc/``.)"""

from __future__ import annotations

import datetime as dt
import decimal
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import pytest

from lakeforge.load.cdc_apply import BatchEvent, _batches_table, _events_table, _expanded
from lakeforge.load.cdc_state import last_per_key
from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef
from lakeforge.sources.cdc import Position, RowBatch
from lakeforge.sources.mysql.cdc import _key_changes
from lakeforge.sources.mysql.rows import compile_rows

REF = TableRef("public", "t")
WHEN = dt.datetime(2026, 12, 3, 20, 0, tzinfo=dt.UTC)


class _Reader:
    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        return pa.array(values, column.arrow_type)


def _plan(*columns: tuple[str, pa.DataType]) -> TablePlan:
    planned = [ColumnPlan(n, n, str(t), n, t, "x") for n, t in columns]
    return TablePlan("src", REF, planned, [columns[0][0]])


PLAN = _plan(("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("note", pa.string()), ("extra", pa.int32()))


def _events() -> list[BatchEvent]:
    d = decimal.Decimal
    first = RowBatch(REF, ["id", "amount", "note"])  # "extra" is planned but not in these rows: NULL
    first.ops += ["insert", "insert", "update"]
    first.rows += [[1, d("1.50"), "a"], [2, None, None], [1, d("-0.01"), "b"]]
    second = RowBatch(REF, ["id", "amount", "note"])
    second.ops += ["delete", "truncate", "insert"]
    second.rows += [(2, None, None), (None, None, None), (3, d("9.99"), "c")]
    return [
        BatchEvent(first, Position(10, "0/A"), WHEN, 1),
        BatchEvent(second, Position(20, "0/14"), None, 4),
    ]


def test_batches_table_equals_the_per_change_path() -> None:
    events = _events()
    fast = _batches_table(_Reader(), PLAN, list(events))  # type: ignore[arg-type]
    slow = _events_table(None, _Reader(), PLAN, "bronze.t", _expanded(list(events)), ["id"])  # type: ignore[arg-type]
    assert fast is not None
    assert fast.equals(slow)
    assert fast.column("_lf_op").to_pylist() == ["insert", "insert", "update", "delete", "truncate", "insert"]
    assert fast.column("_lf_seq").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert fast.column("_lf_position").to_pylist() == ["0/A"] * 3 + ["0/14"] * 3
    assert fast.column("_lf_commit_ts").to_pylist() == [WHEN] * 3 + [None] * 3
    assert fast.column("amount").to_pylist()[2] == decimal.Decimal("-0.01")
    assert fast.column("extra").null_count == 6


def test_rare_rows_take_the_per_change_path() -> None:
    events = _events()
    events[0].batch.old_keys[2] = {"id": 7, "amount": None, "note": None}  # an update that changed its key
    assert _batches_table(_Reader(), PLAN, list(events)) is None  # type: ignore[arg-type]
    changes = list(events[0].batch.changes())
    assert changes[2].old_key == {"id": 7, "amount": None, "note": None}
    events = _events()
    events[1].batch.unchanged[2] = frozenset({"note"})
    assert _batches_table(_Reader(), PLAN, list(events)) is None  # type: ignore[arg-type]
    expanded = _expanded(list(events))
    assert expanded[5].change.row == {"id": 3, "amount": decimal.Decimal("9.99")}  # the unchanged value left out
    assert expanded[5].change.unchanged == {"note"}
    assert expanded[4].change.op == "truncate" and expanded[4].change.row is None
    assert [e.seq for e in expanded] == [1, 2, 3, 4, 5, 6]


def _dict_last(table: pa.Table, keys: list[str]) -> list[int]:
    last: dict[tuple[Any, ...], int] = {}
    for i, key in enumerate(zip(*[table[k].to_pylist() for k in keys], strict=True)):
        last[key] = i
    return sorted(last.values())


@pytest.mark.parametrize(
    "columns",
    [
        {"id": pa.array([1, 2, 1, None, None, 3, 2], pa.int64())},
        {"id": pa.chunked_array([[5, 1, 5], [2, 1, -3]], pa.int64())},  # one integer key: the numpy path
        {"k": pa.array([3, -1, 3, 7, -1, 2**31 - 1], pa.int32())},
        {"a": pa.array([1, 1, 1, 2, None, None]), "b": pa.array(["x", "y", "x", "x", None, None])},
        {"d": pa.array([decimal.Decimal("1.10"), decimal.Decimal("1.1"), None], pa.decimal128(5, 2))},
        {"ts": pa.array([WHEN, WHEN, None, WHEN], pa.timestamp("us", tz="UTC"))},
        {"f": pa.array([0.0, -0.0, float("nan"), float("nan"), 1.5], pa.float64())},  # the dict path: floats
        {"id": pa.array([], pa.int64())},
    ],
)
def test_last_per_key_is_the_dicts(columns: dict[str, pa.Array]) -> None:
    table = pa.table(columns)
    assert last_per_key(table, list(columns)).to_pylist() == _dict_last(table, list(columns))


def test_key_changes_marks_only_updates_that_moved_their_key() -> None:
    batch = RowBatch(REF, ["id", "note"])
    batch.ops += ["insert"]
    batch.rows += [(9, "x")]
    befores = [(1, "a"), (2, "b"), (3, "c")]
    afters = [(1, "A"), (20, "b"), (3, "C")]
    _key_changes(batch, ["id"], befores, afters)
    assert batch.old_keys == {2: {"id": 2, "note": "b"}}  # row 1 of the event, after the batch's one insert
    _key_changes(batch, [], befores, afters)  # no key known: every update goes the general way
    assert set(batch.old_keys) == {1, 2, 3}


def test_binlog_tuples_hold_the_dicts_values() -> None:
    columns = [
        SimpleNamespace(name="d", type=246, precision=14, decimals=4),
        SimpleNamespace(name="z", type=246, precision=5, decimals=0),
        SimpleNamespace(name="s", type=15, max_length=40, character_set_name="latin1"),
    ]
    # -1234567890.1234 (MySQL's manual), then 0.0000 negative (every bit inverted, sign bit clear): -0.0000;
    # DECIMAL(5,0) 12345 and -0; latin1 text, ASCII and not
    minus_zero_14_4 = bytes(b ^ 0xFF for b in bytes.fromhex("80000000000000"))
    minus_zero_5_0 = bytes(b ^ 0xFF for b in bytes.fromhex("800000"))
    first_row = b"\x00" + bytes.fromhex("7EF204C72DFB2D") + bytes.fromhex("803039") + b"\x05plain"
    data = first_row + b"\x00" + minus_zero_14_4 + minus_zero_5_0 + b"\x04caf\xe9"
    dicts = compile_rows(columns)
    tuples = compile_rows(columns, tuples=True)
    assert dicts is not None and tuples is not None
    as_dicts: list[dict[str, Any]] = []
    as_tuples: list[tuple[Any, ...]] = []
    assert dicts(data, 0, len(data), as_dicts) == tuples(data, 0, len(data), as_tuples) == len(data)
    assert [tuple(d.values()) for d in as_dicts] == as_tuples
    first, second = as_tuples
    assert first == (decimal.Decimal("-1234567890.1234"), decimal.Decimal("12345"), "plain")
    assert str(second[0]) == "-0.0000" and str(second[1]) == "-0" and second[2] == "caf\u00e9"
