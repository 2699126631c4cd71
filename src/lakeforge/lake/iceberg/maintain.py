"""Iceberg maintenance: compact data files, rewrite manifests, expire snapshots, remove unreferenced files.

- Compaction rewrites the newest snapshot's rows into files of ``target_file_size`` when it has more files
  than that needs; the rewrite is one overwrite commit whose snapshot carries the table's current checkpoint
  forward (so it stays readable from the newest snapshot after older ones expire). Its new manifest list
  has one manifest of added files: that is the manifest rewrite.
- Snapshots older than the retention are expired (never the current one); time travel to them ends.
- Files under the table's location that no retained snapshot references (data files, manifests, manifest
  lists of expired snapshots, files of killed writes) and that are older than the retention are deleted.
  Metadata JSON files are left to the catalog.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.lake.base import FileStats, MaintainResult
from lakeforge.lake.checkpoint import METADATA_KEY

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakeforge.lake.iceberg.lake import IcebergLake


def maintain(lake: IcebergLake, name: str, *, retain_seconds: float, target_file_size: int | None) -> MaintainResult:
    from lakeforge.lake.iceberg.lake import iceberg_error

    table = lake.table(name)
    before = stats(table)
    actions: list[str] = []
    try:
        target = target_file_size or 128 * 2**20
        if before.files > max(1, -(-before.bytes // target)):
            compact(lake, name, table, target)
            actions.append(f"compacted {before.files} data files")
            table = lake.table(name)
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=retain_seconds)
        old = [s for s in table.snapshots() if s.timestamp_ms < cutoff.timestamp() * 1000]
        current = table.current_snapshot()
        expire = [s.snapshot_id for s in old if current is None or s.snapshot_id != current.snapshot_id]
        if expire:
            table.maintenance.expire_snapshots().by_ids(expire).commit()
            actions.append(f"expired {len(expire)} snapshots")
            table = lake.table(name)
        removed = remove_unreferenced(lake, table, cutoff)
        if removed:
            actions.append(f"removed {removed} unreferenced files older than the retention")
    except Exception as exc:
        raise iceberg_error(name, "maintain", exc) from exc
    return MaintainResult(name, before, stats(table), removed, actions)


def compact(lake: IcebergLake, name: str, table: Table, target: int) -> None:
    """Rewrite the newest snapshot's rows into files of ``target`` bytes, the checkpoint carried forward."""
    import pyarrow as pa

    snapshot = lake.snapshot(name)
    carried = {}
    checkpoint = lake.checkpoint(name)
    if checkpoint is not None:
        carried[METADATA_KEY] = checkpoint.to_json()
    key = "write.target-file-size-bytes"
    streaming = table.properties.get(key)
    with table.transaction() as tx:
        tx.set_properties({key: str(target)})
        reader = pa.RecordBatchReader.from_batches(snapshot.dataset.schema, _watched(name, snapshot.dataset))
        tx.overwrite(reader, snapshot_properties=carried)
        if streaming is not None:  # the loads' write buffer (schema.STREAM_TARGET) stays as it was
            tx.set_properties({key: streaming})


def _watched(name: str, dataset: Any) -> Iterator[Any]:
    """The rows to rewrite, with the crash-test point ``maintain`` after the first batch (a rewrite in flight)."""
    from lakeforge.load.killpoint import kill_at

    for i, batch in enumerate(dataset.to_batches()):
        if i == 1:
            kill_at("maintain", name)
        yield batch
    kill_at("maintain", name)


def stats(table: Table) -> FileStats:
    snap = table.current_snapshot()
    if snap is None:
        return FileStats(0, 0)
    files = list(table.scan(snapshot_id=snap.snapshot_id).plan_files())
    return FileStats(len(files), sum(int(t.file.file_size_in_bytes) for t in files))


def remove_unreferenced(lake: IcebergLake, table: Table, cutoff: dt.datetime) -> int:
    """Delete files under the table's location that no snapshot references and older than ``cutoff``."""
    import pyarrow.fs as pafs

    from lakeforge.lake.iceberg.read import _path

    referenced: set[str] = set()
    for snap in table.snapshots():
        referenced.add(_path(snap.manifest_list))
        for manifest in snap.manifests(table.io):
            referenced.add(_path(manifest.manifest_path))
            for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False):
                referenced.add(_path(entry.data_file.file_path))
    fs, _ = lake.storage.filesystem()
    location = _path(table.location())
    try:
        infos = fs.get_file_info(pafs.FileSelector(location, recursive=True, allow_not_found=True))
    except FileNotFoundError:
        return 0
    doomed = [
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.path not in referenced
        and not i.path.endswith(".metadata.json")
        and (i.mtime is None or i.mtime.replace(tzinfo=dt.UTC) < cutoff)
    ]
    for path in doomed:
        fs.delete_file(path)
    return len(doomed)


def remove_old_metadata(lake: IcebergLake, table: Table, cutoff: dt.datetime) -> int:
    """Delete the table's metadata JSON files older than ``cutoff`` but the current one (internal tables,
    lake/iceberg/trim.py). A commit made meanwhile by another process points the catalog at a newer file,
    which is younger than ``cutoff``."""
    import pyarrow.fs as pafs

    from lakeforge.lake.iceberg.read import _path

    fs, _ = lake.storage.filesystem()
    current = _path(table.metadata_location)
    folder = current.rsplit("/", 1)[0]
    try:
        infos = fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True))
    except FileNotFoundError:
        return 0
    doomed = [
        i.path
        for i in infos
        if i.type == pafs.FileType.File
        and i.path.endswith(".metadata.json")
        and i.path != current
        and i.mtime is not None
        and i.mtime.replace(tzinfo=dt.UTC) < cutoff
    ]
    for path in doomed:
        fs.delete_file(path)
    return len(doomed)
