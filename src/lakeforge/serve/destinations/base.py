"""The destination seam: a database lake tables are published into.

A destination declares what it can do as data (``BULK_PATH``, ``TRANSACTIONAL_DDL``, ``SUPPORTS_UPSERT``), maps
each Arrow column of a lake table to an exact column type of its own (saying so in ``Column.note`` where no
exact type exists), and performs the two write modes in its own SQL:

``replace``
    load a shadow table, then swap it in atomically (readers see the old table or the new one, never a mix);
``upsert``
    stream the lake's rows into a staging table, then in one transaction update/insert by key and delete the
    rows the lake no longer has.

Either way the lake version published is recorded in the target (``_lakeforge_published``) atomically with
the data, so a publish killed half-way and run again leaves exactly the lake's rows, and a table whose
version is already there is skipped. Shared code (``serve.publish``) reads the flags, never the type name.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

from lakeforge.errors import PublishError
from lakeforge.serve.destinations.text import Render

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.serve.config import PublishMode, PublishTarget
    from lakeforge.serve.foreign_keys import ForeignKey

PUBLISHED_TABLE = "_lakeforge_published"
"""The target table recording, per published table, the lake table and version it holds."""


@dataclass(frozen=True)
class Column:
    name: str
    sql_type: str
    """Column type in the target's DDL."""
    render: Render
    """How a value is spelled in the bulk-load text."""
    nullable: bool = True
    load_via: str | None = None
    """SQL function applied to the loaded text (MariaDB ``UNHEX`` for bytes), if any."""
    note: str | None = None
    """Set when the target has no exact type for the lake's: what was chosen and what it means."""


@dataclass
class TableSpec:
    """One lake table as it is to be published."""

    lake_table: str
    target_table: str
    columns: list[Column]
    mode: PublishMode
    version: int
    """The lake version being published."""
    primary_key: list[str] = field(default_factory=list)
    indexes: list[list[str]] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]


@dataclass(frozen=True)
class Published:
    """What ``_lakeforge_published`` says a target table holds."""

    lake_table: str
    version: int
    columns: str
    """The published column list and types, so a changed schema is republished even at the same version."""


class Destination(ABC):
    """One connection to a target database; use as a context manager."""

    TYPE: ClassVar[str]
    BULK_PATH: ClassVar[str]
    """How rows are bulk-loaded, e.g. ``COPY FROM STDIN (text)`` or ``LOAD DATA LOCAL INFILE``."""
    TRANSACTIONAL_DDL: ClassVar[bool]
    """CREATE/RENAME/DROP take part in transactions (else a swap is one atomic DDL statement)."""
    SUPPORTS_UPSERT: ClassVar[bool]
    """``mode: upsert`` is available (merge by primary key and apply deletes in one transaction)."""
    SUPPORTS_FOREIGN_KEYS: ClassVar[bool] = False
    """Foreign key constraints of a star schema are created (``foreign_keys``/``drop_``/``add_foreign_key``)."""

    def __init__(self, name: str, config: PublishTarget) -> None:
        self.name = name
        self.config = config

    def __enter__(self) -> Destination:
        self.connect()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def error(self, message: str, exc: BaseException | None = None) -> PublishError:
        """A one-line error naming the target; the driver's text with the password scrubbed."""
        text = message
        if exc is not None:
            detail = " ".join(str(exc).split())
            secret = self.config.secret()
            if secret:
                detail = detail.replace(secret, "***")
            text = f"{message}: {detail}"
        return PublishError(self.name, text)

    @abstractmethod
    def connect(self) -> None:
        """Open the connection and create ``_lakeforge_published`` if missing; unreachable -> PublishError."""

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def column(self, field: pa.Field, *, key: bool, json: bool) -> Column:
        """The target column for a lake column (``key``: part of the primary key or an index)."""

    def adjust(self, spec: TableSpec) -> TableSpec:
        """A last look at the whole table's shape (e.g. fitting key columns into an index size limit)."""
        return spec

    def foreign_keys(self) -> set[str]:
        """Names of the lakeforge foreign key constraints (``lf_fk_*``) in the target."""
        return set()

    def drop_foreign_key(self, fk: ForeignKey) -> None:
        raise NotImplementedError

    def add_foreign_key(self, fk: ForeignKey) -> None:
        raise NotImplementedError

    @abstractmethod
    def published(self, spec: TableSpec) -> Published | None:
        """What the target table holds now, or None when it does not exist or was never published."""

    @abstractmethod
    def replace(self, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> int:
        """Load a shadow table and swap it in, recording the version atomically; returns the rows loaded."""

    @abstractmethod
    def upsert(self, spec: TableSpec, batches: Iterable[pa.RecordBatch]) -> int:
        """Merge by key and delete what the lake no longer has, one transaction; returns the rows staged."""


def signature(spec: TableSpec) -> str:
    """The table's shape as recorded beside the version (columns, types, keys, indexes), hashed."""
    import hashlib

    shape = "; ".join(
        [
            ", ".join(f"{c.name} {c.sql_type}{'' if c.nullable else ' not null'}" for c in spec.columns),
            "key " + ",".join(spec.primary_key),
            "indexes " + "|".join(",".join(i) for i in spec.indexes),
        ]
    )
    return hashlib.sha256(shape.encode()).hexdigest()[:16]
