"""A MERGE source is collected (delta-rs skips target files outside its keys) up to SMALL_SOURCE_BYTES, streamed
past it; either way the merged table holds the same rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from lakeforge.lake.delta import merge as delta_merge
from lakeforge.lake.delta.lake import DeltaLake

SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string())])


def batches(ids: range, tag: str) -> list[pa.RecordBatch]:
    rows = list(ids)
    return [
        pa.RecordBatch.from_arrays([pa.array(rows[i : i + 100], pa.int64()), pa.array([tag] * len(rows[i : i + 100]))],
                                   schema=SCHEMA)
        for i in range(0, len(rows), 100)
    ]


def test_small_source_is_collected_and_a_large_one_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    source, streamed = delta_merge.merge_source(iter(batches(range(1000), "a")), SCHEMA)
    assert not streamed and isinstance(source, pa.Table) and source.num_rows == 1000
    monkeypatch.setattr(delta_merge, "SMALL_SOURCE_BYTES", 2000)
    source, streamed = delta_merge.merge_source(iter(batches(range(1000), "a")), SCHEMA)
    assert streamed and isinstance(source, pa.RecordBatchReader)
    assert source.read_all().column("id").to_pylist() == list(range(1000))  # nothing lost at the switch


@pytest.mark.parametrize("limit", [64 * 2**20, 2000])
def test_merged_rows_are_the_same_collected_or_streamed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         limit: int) -> None:
    monkeypatch.setattr(delta_merge, "SMALL_SOURCE_BYTES", limit)
    lake = DeltaLake(tmp_path)
    for part in (range(0, 5000), range(5000, 10000)):  # two files: the change below touches only the second
        lake.write("bronze.t", batches(part, "old"), schema=SCHEMA, mode="append", checkpoint=None)
    metrics = lake.merge("bronze.t", batches(range(9000, 11000), "new"), schema=SCHEMA, keys=["id"])
    assert metrics["num_target_rows_updated"] == 1000 and metrics["num_target_rows_inserted"] == 1000
    rows = dict(zip(*DeltaTable(lake.uri("bronze.t")).to_pyarrow_table().to_pydict().values(), strict=True))
    assert len(rows) == 11000
    assert {rows[i] for i in range(9000)} == {"old"} and {rows[i] for i in range(9000, 11000)} == {"new"}
    assert metrics["num_target_files_removed"] == 1  # the file without changed keys is left as it is
