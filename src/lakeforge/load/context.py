"""What a table load needs from the run around it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from lakeforge.config.models import MaintenanceConfig, RunConfig
from lakeforge.lake.base import Lake
from lakeforge.load.batches import Stamp


@dataclass
class LoadContext:
    lake: Lake
    run: RunConfig
    stamp: Stamp
    on_rows: Callable[[int], None] = field(default=lambda n: None)
    """Called with the row count of every batch written (progress bars)."""
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    """``lake.maintenance``: with ``compact_every``, a table is maintained after every N checkpointed commits."""
    notes: list[str] = field(default_factory=list)
    """What a strategy did beyond its mode (a full reload, a rewrite): reported as the table's reason."""
    follow: bool = False
    """Stream sources keep reading (``lakeforge run --follow``), committing every N seconds or N records."""
    stop: threading.Event | None = None
    """Set to end a followed stream (SIGINT/SIGTERM, a scheduler stopping)."""

    def note(self, text: str) -> None:
        self.notes.append(text)

    def reason(self) -> str | None:
        return "; ".join(self.notes) or None


def maybe_maintain(ctx: LoadContext, name: str) -> None:
    """Maintain ``name`` when its newest checkpoint's sequence is a multiple of ``compact_every`` (each
    checkpointed commit takes the next sequence, in every format, so this is every N commits)."""
    every = ctx.maintenance.compact_every
    if not every:
        return
    checkpoint = ctx.lake.checkpoint(name)
    if checkpoint is not None and checkpoint.sequence % every == 0:
        size = ctx.maintenance.target_file_mb * 2**20
        ctx.lake.maintain(name, retain_seconds=ctx.maintenance.retain_seconds, target_file_size=size)
