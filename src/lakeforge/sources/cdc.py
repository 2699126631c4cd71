"""What a change-data-capture reader offers, whatever the database: one log stream per source, many tables.

A reader turns the database log into :class:`Txn` objects (one per source transaction, in commit order),
each carrying its log *position*: an integer that grows with the log (a PostgreSQL LSN, a MariaDB GTID
sequence number in the strict domain). The loader commits each lake table's position with its data and
acknowledges the log only up to the smallest position every table has committed.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol

from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import Source
    from lakeforge.sources.records import BadRecord

Op = Literal["insert", "update", "delete", "truncate"]


@dataclass(frozen=True)
class Position:
    value: int
    """Orders the log: larger is later."""
    text: str
    """As the database writes it (``0/16B3748``, ``0-1-42``)."""

    def to_json(self) -> dict[str, Any]:
        return {"value": self.value, "text": self.text}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> Position | None:
        if not data or "value" not in data:
            return None
        return cls(int(data["value"]), str(data["text"]))


@dataclass
class Change:
    table: TableRef
    op: Op
    row: dict[str, Any] | None = None
    """New row image by source column name (insert/update), or the old image/key (delete)."""
    old_key: dict[str, Any] | None = None
    """Key before an UPDATE that changed it (PostgreSQL sends it only then)."""
    unchanged: frozenset[str] = frozenset()
    """Columns the log did not send (unchanged TOAST values): keep the lake's value."""


class Undecoded(Protocol):
    """Rows a reader has kept as the log sent them (see :attr:`RowBatch.raw`)."""

    def rows(self) -> tuple[list[list[Any]], dict[int, frozenset[str]]]:
        """The rows' values in log column order, and the columns not sent by row number."""
        ...


@dataclass(slots=True)
class RowBatch:
    """Row changes of one table within one transaction, in log order, as plain value sequences: what the
    database readers emit instead of one :class:`Change` per row (the loader transposes the rows into Arrow
    columns in one step). ``rows[i]`` holds the values of ``columns`` for ``ops[i]``; a truncate is a row of
    Nones. The rare cases ride along by row number and send the batch down the per-change path."""

    table: TableRef
    columns: Sequence[str]
    """Source column names, the order of every row's values."""
    ops: list[Op] = field(default_factory=list)
    rows: list[Sequence[Any]] = field(default_factory=list)
    old_keys: dict[int, dict[str, Any]] = field(default_factory=dict)
    """Row number -> the key before an UPDATE that may have changed it (as :attr:`Change.old_key`)."""
    unchanged: dict[int, frozenset[str]] = field(default_factory=dict)
    """Row number -> columns the log did not send (their values in the row are None placeholders)."""
    raw: Undecoded | None = None
    """The rows not decoded yet (``rows`` is empty then): the reader decodes them a micro-batch at a time
    (:meth:`CdcReader.columns`), or :meth:`decode` row by row."""

    def decode(self) -> None:
        """Fill ``rows`` (and ``unchanged``) from ``raw``."""
        if self.raw is not None:
            rows, unchanged = self.raw.rows()
            self.rows[:0] = rows
            self.unchanged.update(unchanged)
            self.raw = None

    @property
    def plain(self) -> bool:
        """Whether every row is a whole image with its own key (no key change, no unchanged column)."""
        return not self.old_keys and not self.unchanged

    def changes(self) -> Iterator[Change]:
        """The same rows as :class:`Change` objects (the general path)."""
        self.decode()
        names = self.columns
        for i, (op, values) in enumerate(zip(self.ops, self.rows, strict=True)):
            if op == "truncate":
                yield Change(self.table, "truncate")
                continue
            skip = self.unchanged.get(i, _NO_COLUMNS)
            row = {n: v for n, v in zip(names, values, strict=True) if n not in skip}
            yield Change(self.table, op, row, self.old_keys.get(i), skip)


_NO_COLUMNS: frozenset[str] = frozenset()


@dataclass
class Txn:
    position: Position
    commit_time: dt.datetime | None
    changes: list[Change | RowBatch] = field(default_factory=list)
    """In log order; a reader may group a table's consecutive row changes into one :class:`RowBatch`."""
    bad: list[tuple[TableRef, BadRecord]] = field(default_factory=list)
    """Events of this position that cannot be applied (malformed), for ``quarantine.<table>``: the loader
    commits them with the table's next commit, and the good changes still apply."""

    def count(self) -> int:
        """Changes in the transaction (the rows of a batch each count)."""
        return sum(len(c.ops) if type(c) is RowBatch else 1 for c in self.changes)


@dataclass
class Problem:
    """A readiness problem, with the exact fix."""

    what: str
    fix: str

    def __str__(self) -> str:
        return f"{self.what}; fix: {self.fix}"


@dataclass
class Snapshot:
    """A consistent snapshot of some tables, taken exactly at ``position``."""

    position: Position
    read: Callable[[TablePlan, int], Iterator[pa.RecordBatch]]
    """``read(plan, batch_size)`` streams one table's rows as of ``position`` (batches of its Arrow schema)."""
    shared: dict[str, str] = field(default_factory=dict)
    """What range tasks on other processes need to read a snapshot consistent with the log (PostgreSQL: the
    exported snapshot's name; MariaDB ``{"binlog": "gtid"}``: they take one together under the global read lock,
    at a GTID of its own, ``CdcReader.snapshot_position``); empty when it cannot be shared (one process)."""


class CdcReader(ABC):
    """Reads one source's log for a set of tables."""

    LOG_NAME: ClassVar[str]
    """What the position is called in messages (LSN, GTID)."""

    def __init__(self, source: Source, plans: list[TablePlan]) -> None:
        self.source = source
        self.plans = {p.ref: p for p in plans}

    @abstractmethod
    def check(self) -> list[Problem]:
        """Everything that keeps the server from CDC, each with its fix (empty when ready)."""

    @abstractmethod
    def prepare(self) -> Position | None:
        """Create what the log needs (publication, slot); return the oldest position the log still has for
        lakeforge (None when it has none, e.g. a new or lost slot)."""

    @abstractmethod
    def snapshot(self, plans: list[TablePlan]) -> AbstractContextManager[Snapshot]:
        """A snapshot consistent with a log position, for tables that need a first (or new) load."""

    @abstractmethod
    def changes(self, start: Position | None, idle_seconds: float) -> Iterator[Txn | None]:
        """Transactions after ``start`` in commit order; yields None after ``idle_seconds`` without one."""

    @abstractmethod
    def ack(self, position: Position) -> None:
        """Tell the server every change up to ``position`` is committed in the lake."""

    @abstractmethod
    def status(self) -> dict[str, Any]:
        """Slot / binlog position, lag in bytes (and what else the server knows)."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to close by default
        """Stop reading and close connections."""

    def snapshot_position(self, at: dict[str, Any]) -> Position | None:
        """The log position of a snapshot that range tasks took together instead of joining this reader's
        (``at``: the distributed snapshot's position, e.g. MariaDB's GTID under the read lock); None when they
        joined this reader's own snapshot (PostgreSQL) or ``at`` says nothing."""
        return None

    def resume_points(self, positions: list[Position]) -> None:  # noqa: B027 - optional hook
        """Positions some tables have committed past the start of :meth:`changes` (a table ahead of another
        after a crash between their commits), in order. A log read again in the same order needs nothing; a
        reader whose replay order may differ (Kafka partitions) must deliver exactly the changes up to each of
        them before any later one."""

    def replan(self, ref: TableRef, columns: list[str]) -> TablePlan:
        """The plan of ``ref`` after its columns changed in the log: the catalog's types, and string for a
        column the catalog no longer has (dropped again since)."""
        import pyarrow as pa

        from lakeforge.lake.naming import lake_column_names

        old = self.plans[ref]
        current = self.source.describe(ref, old.options)
        by_name = {c.name: c for c in [*old.columns, *current.columns]}
        lake_names = lake_column_names(columns, table=ref.qualified)
        planned = []
        for name, lake in zip(columns, lake_names, strict=True):
            known = by_name.get(name)
            planned.append(known or ColumnPlan(name, lake, "unknown", name, pa.string(), "string"))
        plan = TablePlan(old.source, ref, planned, current.primary_key or old.primary_key, 0, old.options)
        self.plans[ref] = plan
        return plan

    def columns(self, raw: list[Undecoded], plan: TablePlan, names: Sequence[str]) -> list[pa.Array] | None:
        """The rows of ``raw`` (undecoded row batches of one table, in log order, each of the columns
        ``names``) as one Arrow array per column of ``plan``; None to have them decoded row by row."""
        return None

    @abstractmethod
    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        """Log values of one column (as this reader decodes them) as the column's Arrow type."""
