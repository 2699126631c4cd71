"""Run plumbing that issue #5 (start-up cost, memory) changed: run history rows, metadata columns, fetch size."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from lakeforge.lake.delta import DeltaLake
from lakeforge.load.batches import Stamp, stamp_and_cast, with_meta
from lakeforge.load.full import FETCH_BYTES, fetch_rows
from lakeforge.state.history import RUN_ROW, RUNS, VERSION, Event, RunHistory

NOW = dt.datetime(2026, 11, 21, 19, 37, 42, 903782, tzinfo=dt.UTC)


def test_history_rows_round_trip_exactly(tmp_path: Path) -> None:
    lake = DeltaLake(tmp_path)
    history = RunHistory(lake)
    error = 'bad "quoted" ünïcode\nline two ' + "word " * 700  # kept whole: under errors.MAX_MESSAGE
    events = [
        Event("r1", RUN_ROW, "running", NOW),
        Event(
            "r1",
            "bronze.t",
            "failed",
            NOW,
            NOW + dt.timedelta(seconds=1.5),
            "src",
            "public.t",
            "full",
            12,
            1.25,
            3,
            error,
        ),
        Event("r1", RUN_ROW, "failed", NOW, NOW + dt.timedelta(seconds=2), rows=12, seconds=2.0, error="e"),
    ]
    for event in events:
        history.record(event)
    assert lake.version(RUNS) == 2  # one commit per record
    assert lake.properties(RUNS) == {"lakeforge.state.version": str(VERSION)}
    stored = sorted(history.events(), key=lambda e: e["recorded_at"])
    assert [{k: v for k, v in e.items() if k != "recorded_at"} for e in stored] == [
        {k: v for k, v in vars(e).items() if k != "recorded_at"} for e in events
    ]
    latest = RunHistory(lake).latest()
    assert latest[0]["run"]["status"] == "failed" and latest[0]["tables"][0]["rows"] == 12


def test_a_version_1_history_is_migrated_with_its_events(tmp_path: Path) -> None:
    from deltalake import write_deltalake

    from lakeforge.state.history import _schema

    lake = DeltaLake(tmp_path)
    v1 = _schema().remove(_schema().get_field_index("reason"))
    old = pa.table({"run_id": ["r0"], "table": [RUN_ROW], "status": ["success"], "started_at": [NOW],
                    "finished_at": [NOW], "source": [None], "source_table": [None], "mode": [None], "rows": [5],
                    "seconds": [1.0], "delta_version": [None], "error": [None], "recorded_at": [NOW]}, schema=v1)
    write_deltalake(lake.uri(RUNS), old, description="lakeforge.state.version=1")
    history = RunHistory(lake)
    history.record(Event("r1", "bronze.t", "success", NOW, NOW, rows=3, reason="cursor changed"))
    assert lake.properties(RUNS) == {"lakeforge.state.version": "2"}
    rows = {(e["run_id"], e["table"]): e for e in history.events()}
    assert rows[("r0", RUN_ROW)]["rows"] == 5 and rows[("r0", RUN_ROW)]["reason"] is None
    assert rows[("r1", "bronze.t")]["reason"] == "cursor changed"
    assert lake.schema(RUNS) == _schema()


def test_metadata_columns_hold_the_stamp_for_every_batch_size() -> None:
    schema = pa.schema([("x", pa.int64())])
    stamp = Stamp("src", "20261121T193742903782Z-abcdef", NOW)
    batches = [pa.RecordBatch.from_arrays([pa.nulls(n, pa.int64())], schema=schema) for n in (3, 5, 1, 0)]
    out = list(stamp_and_cast(batches, with_meta(schema), stamp))
    assert [b.num_rows for b in out] == [3, 5, 1, 0]
    for batch in out:
        assert batch.schema == with_meta(schema)
        assert set(batch.column("_lf_source").to_pylist()) <= {"src"}
        assert set(batch.column("_lf_run_id").to_pylist()) <= {stamp.run_id}
        assert set(batch.column("_lf_extracted_at").to_pylist()) <= {NOW}
        assert batch.column("_lf_source").null_count == 0


def test_run_plumbing_does_not_import_pandas_or_polars(tmp_path: Path) -> None:
    """pyarrow imports pandas on the first Python value it converts (~0.5 s per ``lakeforge run``)."""
    code = f"""
import sys, datetime as dt
import pyarrow as pa
from lakeforge.lake.delta import DeltaLake
from lakeforge.load.batches import Stamp, stamp_and_cast, with_meta
from lakeforge.state.history import RUN_ROW, Event, RunHistory
now = dt.datetime.now(dt.UTC)
RunHistory(DeltaLake({str(tmp_path)!r})).record(Event("r", RUN_ROW, "running", now))
schema = pa.schema([("x", pa.int64())])
batch = pa.RecordBatch.from_arrays([pa.nulls(4, pa.int64())], schema=schema)
list(stamp_and_cast([batch], with_meta(schema), Stamp("s", "r", now)))
print(sorted(m for m in ("pandas", "polars") if m in sys.modules))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]", done.stderr


def test_fetch_rows_shrinks_batches_of_wide_rows_only() -> None:
    narrow = pa.schema([("id", pa.int64()), ("amount", pa.decimal128(12, 2)), ("status", pa.string())])
    wide = pa.schema(
        [(f"c{i}", pa.string()) for i in range(20)] + [(f"d{i}", pa.decimal128(20, 10)) for i in range(10)]
    )
    assert fetch_rows(100_000, narrow) == 100_000
    assert fetch_rows(100_000, wide) == FETCH_BYTES // (20 * 32 + 10 * 16)
    assert fetch_rows(500, wide) == 500  # never more than run.batch_size
    assert fetch_rows(100_000, pa.schema([(f"s{i}", pa.string()) for i in range(5_000)])) == 1_000
