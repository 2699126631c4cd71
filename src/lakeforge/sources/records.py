"""Record sources: files, streams, HTTP APIs, Python generators (anything not read with SQL).

A record source's :meth:`RecordSource.read` yields :class:`Chunk` objects: an Arrow batch of good records,
the bad records it met (for ``quarantine.<table>``), and, at a *safe point*, the **position** reached after
this chunk and every earlier one. A position is a JSON-able dict the source alone understands (the files
read with their size/mtime/ETag, per-partition offsets, a stream sequence, a user state); the loader commits
it in the same lake commit as the data up to that point, and hands it back to the next run. The contract:

- reading again from a committed position yields exactly the records after it (nothing lost, nothing twice);
- the last chunk of a bounded read carries a position (the loader commits at the end of the read);
- a stream (``SUPPORTS_STREAM``) read with ``request.follow`` keeps going until ``request.stopped()``, and
  yields a chunk (possibly empty, with its position) at least every second or so, so time-based commits
  happen while the stream is idle.
- ``read`` runs in a reader thread (the loader reads ahead while it writes); ``acknowledge`` in the loader's.

See docs/sources.md, "Writing a source".
"""

from __future__ import annotations

import threading
from abc import abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from lakeforge.config.models import SourceBase, TableConfig, TableDefaults
from lakeforge.sources.base import Source, TablePlan, TableRef

if TYPE_CHECKING:
    import pyarrow as pa

Position = dict[str, Any]
"""Where a record source has got to: JSON-able, opaque to the loader."""


@dataclass(frozen=True)
class BadRecord:
    """A record that could not be loaded, kept whole in ``quarantine.<table>`` with why."""

    reason: str
    raw: str
    """The record's raw text (undecodable bytes shown as ``\\xNN``)."""
    file: str | None = None
    line: int | None = None
    """1-based line of the file where the record starts."""
    partition: str | None = None
    offset: int | None = None
    """Partition and offset (or stream sequence) of a message."""


@dataclass
class Chunk:
    batch: pa.RecordBatch | None = None
    """Good records (may be None or empty)."""
    bad: list[BadRecord] = field(default_factory=list)
    position: Position | None = None
    """Set at a safe point: the position after this chunk and everything before it."""


@dataclass(frozen=True)
class ReadRequest:
    position: Position
    """The position the lake has committed ({}: read from the beginning)."""
    batch_size: int
    """Rows per batch the loader prefers."""
    follow: bool = False
    """A stream keeps reading (``lakeforge run --follow``) until :meth:`stopped`."""
    stop: threading.Event | None = None

    def stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()


class RecordSourceConfig(SourceBase):
    """Options every record source has, besides its own."""

    table: str | None = None
    """The name of the source's table (one table per record source unless the type says otherwise);
    default: the source's name, so the lake table is ``bronze.<source>`` and bad records go to
    ``quarantine.<source>``."""
    column_types: dict[str, str] = Field(default_factory=dict, alias="schema")
    """Declared types by column, e.g. ``{amount: "decimal(12,2)", at: timestamp}`` (written ``schema:``);
    the others are inferred. Valid types: docs/sources.md."""
    defaults: TableDefaults = Field(default_factory=lambda: TableDefaults(mode="append"))
    """Record sources default to ``mode: append`` (each record once, in the order read)."""

    @field_validator("column_types")
    @classmethod
    def _known_types(cls, value: dict[str, str]) -> dict[str, str]:
        from lakeforge.sources.declared import check_type

        for column, spelled in value.items():
            check_type(column, spelled)
        return value


class RecordSource(Source):
    """A source whose reads yield Arrow batches with positions (see the module docstring)."""

    CONFIG: ClassVar[type[SourceBase]] = RecordSourceConfig
    SUPPORTS_PARALLEL_READ: ClassVar[bool] = False
    META_COLUMNS: ClassVar[tuple[str, ...]] = ()
    """The source's own metadata columns (``_lf_file``...), kept as named; every other column is named by the
    lake's rules (``lake.naming``: ``Order ID`` -> ``order_id``, a data column ``_lf_x`` -> ``src_lf_x``)."""
    config: RecordSourceConfig

    def check(self) -> dict[str, str]:
        return {"type": self.type_name}

    def table_name(self) -> str:
        return self.config.table or self.name

    def list_tables(self) -> list[TableRef]:
        return [TableRef("", self.table_name())]

    def lake_table(self, ref: TableRef) -> str:
        """``<prefix>_<table>``, or just ``<table>`` when the table has the source's name and no prefix is set."""
        from lakeforge.lake.naming import normalize

        if self.config.prefix is None and ref.name == self.name:
            return normalize(ref.name)
        return super().lake_table(ref)

    def describe(self, ref: TableRef, options: TableConfig) -> TablePlan:
        """The declared columns (``schema:``); the other columns come with the batches."""
        from lakeforge.sources.declared import declared_columns

        return TablePlan(self.name, ref, declared_columns(self.config.column_types), [], options=options)

    @abstractmethod
    def read(self, plan: TablePlan, request: ReadRequest) -> Iterator[Chunk]:
        """Good records as Arrow batches, bad records, and positions at safe points, from ``request.position``."""

    def acknowledge(self, plan: TablePlan, position: Position) -> None:  # noqa: B027 - optional hook
        """Called after ``position`` is committed to the lake (a broker may now forget what came before)."""
