"""Internal tables kept small: lakeforge's own tables (layer ``_lakeforge``: run history, transform state) gain
a snapshot per event, and PyIceberg's commits get dearer with every snapshot the metadata holds (each
transaction deep-copies it). After a write that leaves more than ``LIMIT`` snapshots, the table's data files
are compacted into one (rows unchanged, one overwrite commit) and every snapshot but the newest ``KEEP`` is
expired, so an internal table holds between ``KEEP`` and ``LIMIT`` snapshots however many runs it records.
Old metadata JSON files are deleted by the trim too, once older than the retention below (not after each commit:
``write.metadata.delete-after-commit.enabled`` deleted the file of the 5th commit back at once, so a reader that
had read the catalog's pointer and was more than 4 commits behind when it opened the file found it gone).

Files no retained snapshot references (the data files, manifests and manifest lists of expired snapshots, and
metadata JSON files but the current one) are deleted by a later trim once older than ``lake.maintenance.retain``
(at least ``MIN_AGE``): a reader that loaded an older snapshot or metadata file a moment ago, however many
commits behind it is, still finds them, and a concurrent writer's uncommitted files are safe.
The trim is optimistic like ``maintain``: if a concurrent writer commits first, the trim is dropped (the next
write tries again) and the writer's own append, if it lost the race to the compaction, is retried by its
caller (``state/history.py``).
"""

from __future__ import annotations

import datetime as dt
import logging
import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from lakeforge.lake.iceberg.lake import IcebergLake

LIMIT = 30
"""An internal table is trimmed when a write leaves it with more snapshots than this (10 runs' history)."""
KEEP = 4
"""Snapshots an internal table keeps after a trim (the compaction's and the newest before it)."""
METADATA_PROPERTIES = {
    "write.metadata.delete-after-commit.enabled": "false",
    "write.metadata.previous-versions-max": str(KEEP),
}
"""Table properties of internal tables: the metadata log holds ``KEEP`` entries; old metadata JSON files are not
deleted as commits land (tables made before set it to true) but by the trim, past the retention."""
MIN_AGE = 3600.0
"""Unreferenced files younger than this (or than ``lake.maintenance.retain``, if longer) are kept: a concurrent
writer's data files not yet committed, and files a reader of a just-expired snapshot may still open."""


def needs_trim(table: Table) -> bool:
    return len(table.metadata.snapshots) > LIMIT


def trim(lake: IcebergLake, name: str) -> bool:
    """Compact ``name`` and expire all but its newest ``KEEP`` snapshots; False if it did not (a concurrent
    commit won, or it failed: logged, the next write tries again)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    from lakeforge.errors import LakeError
    from lakeforge.lake.iceberg.maintain import compact, remove_old_metadata, remove_unreferenced, stats

    try:
        table = lake.table(name)
        if any(table.properties.get(k) != v for k, v in METADATA_PROPERTIES.items()):
            table.transaction().set_properties(METADATA_PROPERTIES).commit_transaction()
        if stats(table).files > 1:
            compact(lake, name, table, 128 * 2**20)
            table = lake.table(name)
        newest = sorted(table.metadata.snapshots, key=lambda s: s.sequence_number or 0)[-KEEP:]
        keep = {s.snapshot_id for s in newest}
        current = table.current_snapshot()
        if current is not None:
            keep.add(current.snapshot_id)
        expire = [s.snapshot_id for s in table.metadata.snapshots if s.snapshot_id not in keep]
        if expire:
            with warnings.catch_warnings():  # "Failed to delete old metadata": a concurrent trim deleted it first
                warnings.simplefilter("ignore")
                table.maintenance.expire_snapshots().by_ids(expire).commit()
            table = lake.table(name)
        cutoff = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=max(lake.retain_seconds, MIN_AGE))
        remove_unreferenced(lake, table, cutoff)
        remove_old_metadata(lake, table, cutoff)
    except (CommitFailedException, ValidationException):
        return False
    except Exception as exc:  # the event already landed: a failed trim must not fail (or repeat) the write
        text = str(exc) if isinstance(exc, LakeError) else f"{type(exc).__name__}: {exc}"
        logging.getLogger(__name__).warning("lake table %s: trim skipped: %s", name, lake.storage.scrub(text))
        return False
    return True
