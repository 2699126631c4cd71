"""``lakeforge maintain`` beside running loads: maintenance commits optimistically and starts over on a conflict.

Maintenance takes its own lock (``<lake>/_lakeforge/maintain.lock``: one maintenance at a time), not the run
lock, so it can run while a run (a ``--follow`` CDC run, say) writes the same tables. A compaction that loses
the commit race to a concurrent writer made no commit (Delta ``CommitFailedError``, Iceberg
``CommitFailedException`` / ``ValidationException``: transient errors); it is started again from the newest
version. A writer that loses the race to the compaction retries likewise (loads start over, a CDC micro-batch
re-applies its MERGE). Neither side's commit is lost, and the position a table carries never goes back (see
``Lake.checkpoint``).
"""

from __future__ import annotations

import time

from lakeforge.errors import LakeError
from lakeforge.lake.base import Lake, MaintainResult

ATTEMPTS = 5


def maintain_table(lake: Lake, name: str, *, retain_seconds: float, target_file_size: int | None) -> MaintainResult:
    """``lake.maintain(name)``, started again (0.2 s, 0.4 s ... later) when a concurrent commit won the race."""
    for attempt in range(ATTEMPTS):
        try:
            return lake.maintain(name, retain_seconds=retain_seconds, target_file_size=target_file_size)
        except LakeError as exc:
            if not exc.transient or attempt == ATTEMPTS - 1:
                raise
            time.sleep(0.2 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover
