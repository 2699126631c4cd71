"""Delta maintenance: compact small files, checkpoint the log, vacuum files older than the retention.

``optimize.compact`` rewrites small files into bigger ones in a new version (same rows); ``create_checkpoint``
writes a Parquet checkpoint of the log so readers stop replaying JSON commits; ``vacuum`` deletes files no
version younger than the retention references (older versions can no longer be time-travelled to). The
compaction commit carries the table's current checkpoint, so the newest commit always holds the position.
Log entries are not deleted here (``cleanup_metadata``): the checkpoint is read back from commit info.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lakeforge.lake.base import FileStats, MaintainResult

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from lakeforge.lake.delta.lake import DeltaLake


def maintain(lake: DeltaLake, name: str, *, retain_seconds: float, target_file_size: int | None) -> MaintainResult:
    from lakeforge.lake.delta.lake import delta_error

    table = lake.table(name)
    before = stats(table)
    actions = []
    try:
        if before.files > 1:
            from lakeforge.lake.delta.lake import _commit

            # the newest commit keeps carrying the position (commit info only: see Lake.checkpoint)
            carried = _commit(name, lake.checkpoint(name), transaction=False)
            metrics = table.optimize.compact(target_size=target_file_size, commit_properties=carried)
            if metrics.get("numFilesRemoved"):
                actions.append(f"compacted {metrics['numFilesRemoved']} files into {metrics['numFilesAdded']}")
        from lakeforge.load.killpoint import kill_at

        kill_at("maintain", name)  # crash test: compacted and committed, log checkpoint and vacuum not done
        table = lake.table(name)
        table.create_checkpoint()
        actions.append(f"checkpointed the log at version {table.version()}")
        hours = max(0, int(retain_seconds // 3600))
        removed = table.vacuum(retention_hours=hours, dry_run=False, enforce_retention_duration=False)
        if removed:
            actions.append(f"removed {len(removed)} unreferenced files older than {hours} h")
    except Exception as exc:
        raise delta_error(name, "maintain", exc) from exc
    return MaintainResult(name, before, stats(lake.table(name)), len(removed), actions)


def stats(table: DeltaTable) -> FileStats:
    actions = table.get_add_actions(flatten=True)
    sizes: list[int | None] = list(actions.column("size_bytes").to_pylist()) if actions.num_rows else []
    return FileStats(len(sizes), int(sum(s or 0 for s in sizes)))
