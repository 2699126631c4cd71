"""The seam through which range tasks on other processes read one consistent view of a source.

The driver opens a :class:`Snapshot` (a transaction on its own connection), computes the ranges inside it,
hands every task a :class:`Ticket`, and closes it when the last task has finished. On the worker,
``stream`` joins the ticket's snapshot and streams one range. A source type without an entry in
:data:`SNAPSHOTS` is not extracted by distributed tasks (its tables load in one process).
"""

from __future__ import annotations

import importlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.sql import SqlSource

from lakeforge.errors import SourceError

log = logging.getLogger("lakeforge.distributed")

SNAPSHOTS: dict[str, str] = {
    "postgres": "lakeforge.distributed.postgres:PostgresSnapshot",
    "mysql": "lakeforge.distributed.mysql:MySQLSnapshot",
}
"""Source ``type`` -> the Snapshot class that shares its consistent view across tasks."""


class NotShared(SourceError):
    """An adopted snapshot the range tasks cannot share after all (MariaDB without the RELOAD privilege): the
    CDC snapshot is read in one process instead."""


@dataclass(frozen=True)
class Ticket:
    """What a worker needs to join the snapshot (picklable, no connection)."""

    kind: str
    """The source type (a key of :data:`SNAPSHOTS`)."""
    token: str
    """Unique per load: names the snapshot (PostgreSQL) or the markers tasks leave (MariaDB)."""
    index: int
    values: dict[str, str] = field(default_factory=dict)


class Snapshot(ABC):
    """One consistent view of a source, opened by the driver and joined by every range task."""

    def __init__(self, source: SqlSource, token: str, *, timeout: float) -> None:
        self.source = source
        self.token = token
        self.timeout = timeout
        self.position: dict[str, Any] = {}
        """The source's log position at the snapshot (LSN; binlog file/offset, GTIDs), kept in the checkpoint."""
        self.notes: list[str] = []
        """Warnings for the run's report (a weaker snapshot than asked for)."""

    @classmethod
    def adopt(cls, source: SqlSource, token: str, shared: dict[str, str], *, timeout: float) -> Snapshot | None:
        """A snapshot someone else took (a CDC reader's, at its log position), joined instead of taken;
        None when this source cannot share one that way."""
        return None

    @abstractmethod
    def open(self) -> None:
        """Take the snapshot on the driver's own connection."""

    @abstractmethod
    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """A small query (range bounds) answered inside the snapshot."""

    @abstractmethod
    def ticket(self, index: int) -> Ticket: ...

    def where(self) -> str | None:
        """A condition added to every range query (a guard that the task reads the driver's snapshot)."""
        return None

    def verified(self) -> bool:
        """True: a task retried after ``started`` still reads the driver's snapshot, or fails; False: it
        might read a later state unnoticed, so tasks are not retried one by one (the load starts over)."""
        return True

    def started(self, finished: Callable[[], set[int]], count: int) -> None:  # noqa: B027 - optional hook
        """Called once the ``count`` tasks are submitted; ``finished()`` gives the indexes already done.
        MariaDB waits here until every task has opened its transaction, then releases the read lock."""

    @abstractmethod
    def close(self) -> None:
        """End the driver's transaction (after the last task finished: retries may still need it)."""

    def warn(self, text: str) -> None:
        log.warning("%s", text)
        self.notes.append(text)

    # -- worker side ----------------------------------------------------------------------------------
    @staticmethod
    @abstractmethod
    def stream(source: SqlSource, ticket: Ticket, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """Join the ticket's snapshot on a new connection and stream ``sql``'s batches."""


def snapshot_class(kind: str) -> type[Snapshot] | None:
    target = SNAPSHOTS.get(kind)
    if target is None:
        return None
    module_name, _, attr = target.partition(":")
    cls: type[Snapshot] = getattr(importlib.import_module(module_name), attr)
    return cls
