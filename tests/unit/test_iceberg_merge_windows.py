"""An Iceberg MERGE larger than its window: merged window by window (bounded memory) in one catalog commit, with
the same result as one MERGE of the whole input; a key repeated across windows is still refused."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from lakeforge.config.models import LakeConfig
from lakeforge.errors import LakeError
from lakeforge.lake import open_lake
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.iceberg import IcebergLake
from lakeforge.lake.iceberg import merge as merge_module

SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string()), ("gone", pa.bool_())])


def batch(ids: list[int], v: str, gone: set[int] = frozenset()) -> pa.RecordBatch:  # type: ignore[assignment]
    return pa.record_batch([pa.array(ids, pa.int64()), pa.array([f"{v}{i}" for i in ids], pa.string()),
                            pa.array([i in gone for i in ids], pa.bool_())], schema=SCHEMA)


@pytest.fixture
def lake(tmp_path: Path) -> IcebergLake:
    opened = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    assert isinstance(opened, IcebergLake)
    opened.write("bronze.t", [batch(list(range(0, 100)), "old")], schema=SCHEMA, mode="overwrite")
    return opened


def test_a_merge_in_many_windows_is_one_commit_with_the_whole_result(lake: IcebergLake,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merge_module, "WINDOW_BYTES", 1)  # every batch is a window of its own
    commits = len(lake.table("bronze.t").metadata.metadata_log)
    batches = [batch(list(range(90, 110)), "new", gone={95, 96}), batch(list(range(0, 10)), "new", gone={3}),
               batch(list(range(200, 205)), "new")]
    cp = Checkpoint("r2", "incremental", 2)
    counts = lake.merge("bronze.t", batches, schema=SCHEMA, keys=["id"], delete_column="gone", checkpoint=cp)
    assert counts == {"num_target_rows_inserted": 15, "num_target_rows_updated": 17, "num_target_rows_deleted": 3}
    assert len(lake.table("bronze.t").metadata.metadata_log) == commits + 1  # one catalog commit
    rows = {r["id"]: r["v"] for r in lake.read("bronze.t").to_pylist()}
    expected = {i: f"old{i}" for i in range(100)}
    expected.update({i: f"new{i}" for i in [*range(90, 110), *range(0, 10), *range(200, 205)]})
    for i in (95, 96, 3):
        expected.pop(i)
    assert rows == expected and lake.checkpoint("bronze.t") == cp
    lake.close()


def test_a_key_repeated_in_a_later_window_is_refused_and_nothing_commits(lake: IcebergLake,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(merge_module, "WINDOW_BYTES", 1)
    version = lake.version("bronze.t")
    with pytest.raises(LakeError, match=r"1 key\(s\) appear in more than one source row"):
        lake.merge("bronze.t", [batch([1, 2], "a"), batch([5, 2], "b")], schema=SCHEMA, keys=["id"])
    assert lake.version("bronze.t") == version
    assert {r["v"] for r in lake.read("bronze.t").to_pylist()} == {f"old{i}" for i in range(100)}
    lake.close()
