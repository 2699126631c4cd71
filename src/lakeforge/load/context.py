"""What a table load needs from the run around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lakeforge.config.models import RunConfig
from lakeforge.lake.base import Lake
from lakeforge.load.batches import Stamp


@dataclass
class LoadContext:
    lake: Lake
    run: RunConfig
    stamp: Stamp
    on_rows: Callable[[int], None] = field(default=lambda n: None)
    """Called with the row count of every batch written (progress bars)."""
