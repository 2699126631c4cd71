"""Delta tables kept open between calls (lake/delta/handles.py): every call still sees other writers' commits,
and the checkpoint answered from this process's own commit is never a stale one."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.delta.lake import DeltaLake

NAME = "bronze.t"
SCHEMA = pa.schema([("id", pa.int64()), ("v", pa.string())])


def _rows(*ids: int) -> list[pa.RecordBatch]:
    return [pa.record_batch([pa.array(list(ids), pa.int64()), pa.array([f"v{i}" for i in ids])], schema=SCHEMA)]


def test_two_writers_see_each_others_commits_and_checkpoints(tmp_path: Path) -> None:
    a, b = DeltaLake(tmp_path / "lake"), DeltaLake(tmp_path / "lake")  # as two processes would have them
    a.write(NAME, _rows(1, 2), schema=SCHEMA, mode="append", checkpoint=Checkpoint("r1", "full", 1))
    assert a.checkpoint(NAME) == Checkpoint("r1", "full", 1) and a.next_sequence(NAME) == 2  # its own commit
    a.write(NAME, _rows(3), schema=SCHEMA, mode="append", checkpoint=Checkpoint("r2", "full", 2))
    assert a.checkpoint(NAME) == Checkpoint("r2", "full", 2)

    assert b.version(NAME) == a.version(NAME) == 1
    b.write(NAME, _rows(4), schema=SCHEMA, mode="append", checkpoint=Checkpoint("r3", "incremental", 3))
    b.merge(NAME, _rows(1), schema=SCHEMA, keys=["id"], checkpoint=Checkpoint("r4", "incremental", 4))

    # a's handle is behind by two commits: it sees them, and not its own (older) checkpoint
    assert a.version(NAME) == 3 and a.checkpoint(NAME) == Checkpoint("r4", "incremental", 4)
    assert a.next_sequence(NAME) == 5
    assert sorted(a.read(NAME).column("id").to_pylist()) == [1, 2, 3, 4]

    # a writes through its kept handle after b's commits: nothing of b's is lost, and a's checkpoint is newest
    a.write(NAME, _rows(5), schema=SCHEMA, mode="append", checkpoint=Checkpoint("r5", "full", 5))
    assert b.checkpoint(NAME) == Checkpoint("r5", "full", 5) and b.next_sequence(NAME) == 6
    assert sorted(b.read(NAME).column("id").to_pylist()) == [1, 2, 3, 4, 5]

    # a commit without a checkpoint (a compaction from elsewhere) ends the answer from memory
    b.table(NAME).optimize.compact()
    assert a.checkpoint(NAME) == Checkpoint("r5", "full", 5) and a.version(NAME) == 5
    assert DeltaLake(tmp_path / "lake").checkpoint(NAME) == Checkpoint("r5", "full", 5)  # a fresh reader agrees
