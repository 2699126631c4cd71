"""Open Delta tables of one lake, kept between calls and brought up to date instead of opened again.

Opening a Delta table reads ``_last_checkpoint``, lists ``_delta_log`` and reads every commit since the last
checkpoint (delta-rs reads each twice); a load asks the same table for its schema, next sequence, existence and
version, then writes it, and a CDC run does so per micro-batch. On object storage each open is a round trip per
commit. A kept handle is refreshed with ``update_incremental`` (one LIST from its version, plus the new commits
only), so every call still sees commits other processes made (``lakeforge maintain``, another writer).

What this process committed itself through a handle is remembered with the version it made: the checkpoint it
carried and its transaction version. While the table is still at that version, ``checkpoint`` and
``next_sequence`` answer from memory; delta-rs's ``transaction_version`` replays the whole log to find it (a GET
per commit since the last log checkpoint), ``history`` a GET per commit read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from deltalake import DeltaTable

    from lakeforge.lake.checkpoint import Checkpoint


@dataclass(frozen=True)
class Committed:
    """This process's own commit at ``version`` and the checkpoint it carried (its sequence is the table's
    transaction version)."""

    version: int
    checkpoint: Checkpoint


class Handles:
    def __init__(self, open_table: Callable[[str], DeltaTable | None]) -> None:
        self._open = open_table
        self._tables: dict[str, DeltaTable] = {}
        self._committed: dict[str, Committed] = {}
        self._lock = threading.RLock()

    def get(self, name: str) -> DeltaTable | None:
        """The table at its newest version, or None when it does not exist."""
        with self._lock:
            table = self._tables.get(name)
            if table is not None:
                try:
                    table.update_incremental()
                    return table
                except Exception:  # the table was replaced under us: open it anew
                    self.forget(name)
            table = self._open(name)
            if table is not None:
                self._tables[name] = table
            return table

    def kept(self, name: str) -> DeltaTable | None:
        """The kept handle as it is (no refresh): a write through it detects a newer commit itself."""
        return self._tables.get(name)

    def forget(self, name: str) -> None:
        with self._lock:
            self._tables.pop(name, None)
            self._committed.pop(name, None)

    def committed(self, name: str, checkpoint: Checkpoint | None) -> None:
        """Note this process's commit just made through the kept handle (now at the new version), carrying
        ``checkpoint`` as the table's transaction version (None: forget what was noted)."""
        with self._lock:
            table = self._tables.get(name)
            if table is None or checkpoint is None:
                self._committed.pop(name, None)
                return
            self._committed[name] = Committed(int(table.version()), checkpoint)

    def own(self, name: str, table: DeltaTable) -> Committed | None:
        """This process's commit, if it is still the table's newest version."""
        found = self._committed.get(name)
        return found if found is not None and found.version == table.version() else None
