"""Iceberg internal tables stay bounded (lake/iceberg/trim.py): the run history keeps every event while its
snapshots, data files and metadata JSON files stop growing with the number of runs; two writers appending
events at once (each trimming) lose none."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lakeforge.config.models import LakeConfig
from lakeforge.lake import open_lake
from lakeforge.lake.iceberg import trim
from lakeforge.lake.iceberg.lake import IcebergLake
from lakeforge.lake.iceberg.maintain import stats
from lakeforge.state.history import RUN_ROW, RUNS, Event, RunHistory

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _lake(tmp_path: Path) -> IcebergLake:
    lake = open_lake(LakeConfig(path="lh", format="iceberg"), tmp_path)
    assert isinstance(lake, IcebergLake)
    return lake


def _run(history: RunHistory, run_id: str) -> None:
    """What a one-table run records: its ``running`` row, the table's row, its final row."""
    history.record(Event(run_id, RUN_ROW, "running", T0))
    history.record(Event(run_id, "bronze.t", "success", T0, T0, "src", "public.t", "full", 7, 0.5, 1))
    history.record(Event(run_id, RUN_ROW, "success", T0, T0))


@pytest.mark.slow
def test_run_history_snapshots_bounded_and_every_event_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trim, "LIMIT", 7)  # the rule at a smaller scale: 30 snapshots would take 10 runs
    lake = _lake(tmp_path)
    history = RunHistory(lake)
    counts = []
    for i in range(12):
        _run(history, f"run{i:02d}")
        counts.append(len(lake.table(RUNS).metadata.snapshots))
    assert max(counts) <= 7 and min(counts[3:]) >= trim.KEEP  # bounded, and never emptier than KEEP
    events = history.events()
    assert len(events) == 36
    assert sorted({e["run_id"] for e in events}) == [f"run{i:02d}" for i in range(12)]
    assert sum(1 for e in events if e["table"] == "bronze.t" and e["rows"] == 7 and e["status"] == "success") == 12
    assert all(e["started_at"] == T0 for e in events)
    latest = history.latest(limit=100, lock_free=True)
    assert len(latest) == 12 and all(r["run"]["status"] == "success" for r in latest)
    table = lake.table(RUNS)
    assert stats(table).files <= 7  # compacted: one file, plus the events appended since the last trim
    metadata = list(Path(lake.uri(RUNS), "metadata").glob("*.metadata.json"))
    assert len(metadata) >= 36  # kept while younger than the retention: a reader behind still finds its file
    assert table.properties["write.metadata.delete-after-commit.enabled"] == "false"

    # files of expired snapshots are deleted by a later trim once older than the retention (at least an hour)
    location = Path(lake.uri(RUNS))
    on_disk = sorted(location.rglob("*.parquet"))
    assert len(on_disk) >= 36  # one file per event so far, plus the compactions' files
    hours_ago = time.time() - 7200
    for f in location.rglob("*"):
        os.utime(f, (hours_ago, hours_ago))
    monkeypatch.setattr(lake, "retain_seconds", 0.0)  # the one-hour floor still holds
    for i in range(12, 15):
        _run(history, f"run{i:02d}")
    left = sorted(location.rglob("*.parquet"))
    table = lake.table(RUNS)
    referenced = {
        e.data_file.file_path.removeprefix("file://")
        for snap in table.snapshots()
        for m in snap.manifests(table.io)
        for e in m.fetch_manifest_entry(table.io, discard_deleted=False)
    }
    stale = [f for f in left if str(f) not in referenced and f.stat().st_mtime <= hours_ago + 1]
    assert stale == [] and len(left) < len(on_disk) // 2  # old unreferenced files gone, referenced ones kept
    assert referenced <= {str(f) for f in left}
    metadata = list(location.glob("metadata/*.metadata.json"))  # old metadata files gone too, but the current one
    assert all(f.stat().st_mtime > hours_ago + 1 for f in metadata) and len(metadata) < 20
    assert str(location / "metadata" / Path(table.metadata_location).name) in {str(f) for f in metadata}
    assert len(history.events()) == 45 and len({e["run_id"] for e in history.events()}) == 15
    lake.close()


@pytest.mark.slow
def test_two_writers_trimming_at_once_lose_no_event(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(trim, "LIMIT", 5)
    first = _lake(tmp_path)
    assert first.catalog.list_namespaces() == []  # the catalog file made before the writers start
    first.close()
    errors: list[BaseException] = []

    def writer(prefix: str) -> None:
        lake = _lake(tmp_path)  # its own catalog connection, as another process would have
        try:
            history = RunHistory(lake)
            for i in range(4):
                _run(history, f"{prefix}{i}")
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            lake.close()

    threads = [threading.Thread(target=writer, args=(p,)) for p in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    lake = _lake(tmp_path)
    events = RunHistory(lake).events()
    assert len(events) == 24  # 2 writers x 4 runs x 3 events: none lost to a trim, none twice
    assert len({(e["run_id"], e["table"], e["status"]) for e in events}) == 24
    assert len(lake.table(RUNS).metadata.snapshots) <= 5 + 2
    lake.close()


WRITER = """
import datetime as dt, sys
from lakeforge.config.models import LakeConfig
from lakeforge.lake import open_lake
from lakeforge.state.history import RUN_ROW, Event, RunHistory
lake = open_lake(LakeConfig(path="lh", format="iceberg"), sys.argv[1])
history = RunHistory(lake)
for i in range(int(sys.argv[2])):
    history.record(Event(f"b{i:02d}", RUN_ROW, "success", dt.datetime(2026, 1, 1, tzinfo=dt.UTC)))
lake.close()
"""


@pytest.mark.slow
def test_a_reader_many_commits_behind_still_finds_its_metadata_file(tmp_path: Path) -> None:
    """Two processes: a reader loads the run history, another process appends 35 events (35 commits and a trim:
    more than ``LIMIT`` snapshots); the reader's metadata file, manifests and data files are all still there."""
    from pyiceberg.serializers import FromInputFile

    lake = _lake(tmp_path)
    RunHistory(lake).record(Event("a00", RUN_ROW, "success", T0))
    reader = lake.table(RUNS)
    pointer = reader.metadata_location
    subprocess.run([sys.executable, "-c", WRITER, str(tmp_path), "35"], check=True, timeout=600)
    assert Path(pointer.removeprefix("file://")).exists()  # deleted 5 commits later before
    metadata = FromInputFile.table_metadata(reader.io.new_input(pointer))  # what a reader that is behind opens
    assert metadata.current_snapshot_id == reader.metadata.current_snapshot_id
    assert reader.scan().to_arrow().column("run_id").to_pylist() == ["a00"]
    fresh = lake.table(RUNS)
    assert len(fresh.metadata.snapshots) <= trim.LIMIT  # the writer did trim
    assert sorted(e["run_id"] for e in RunHistory(lake).events()) == ["a00"] + [f"b{i:02d}" for i in range(35)]
    lake.close()
