"""What a table load needs from the run around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from lakeforge.config.models import RunConfig
from lakeforge.lake.delta import DeltaLake
from lakeforge.load.batches import Stamp


@dataclass
class LoadContext:
    lake: DeltaLake
    run: RunConfig
    stamp: Stamp
    on_rows: Callable[[int], None] = field(default=lambda n: None)
    """Called with the row count of every batch written (progress bars)."""
    notes: list[str] = field(default_factory=list)
    """What a strategy did beyond its mode (a full reload, a rewrite): reported as the table's reason."""

    def note(self, text: str) -> None:
        self.notes.append(text)

    def reason(self) -> str | None:
        return "; ".join(self.notes) or None
