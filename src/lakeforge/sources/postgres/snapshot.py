"""Read one PostgreSQL table with several connections that share one snapshot, in ctid (block) ranges.

The first connection exports its snapshot (``pg_export_snapshot()`` in a REPEATABLE READ transaction) and
holds it open; every reader starts ``BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT``
and reads the rows of a block range (``ctid >= '(b,0)' AND ctid < '(e,0)'``, a TID range scan since
PostgreSQL 14). The ranges cover every block (the first has no lower bound, the last no upper one), every
row version lives in exactly one block, and all readers see the same snapshot: each row is read exactly once,
as one query would read it. The SELECT is the plan's own (the same exact casts and guards), so the types are
those of the single-query read.

This is how DuckDB's postgres scanner reads in parallel; on PostgreSQL it beats one ADBC stream because the
server's COPY encoding and the client's decoding both run on several cores.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.postgres.catalog import AdbcCatalog

SNAPSHOT_READERS = 2
"""Readers when ``run.partitions`` leaves it to the source (1): two streams already use both cores of the
bench machine (the server encodes, the client decodes); more only add connections."""
MIN_PAGES = 1024
"""Tables below this many 8 KiB blocks (8 MiB) are read by one query: the second connection costs more than it
saves."""


@dataclass(frozen=True)
class Snapshot:
    name: str
    """What ``pg_export_snapshot()`` returned."""
    pages: int
    """Blocks of the table when the snapshot was taken (rows added later land past them: the last range
    is open-ended anyway)."""


@contextlib.contextmanager
def exported(catalog: AdbcCatalog, table_sql: str) -> Iterator[Snapshot]:
    """Export a snapshot and hold it (the transaction stays open) until the readers are done.

    On the source's catalog connection (ADBC, already open for planning the run): a connection of psycopg's
    cost its import and a connect on the critical path before the first row, 0.1-0.4 s."""
    catalog.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    try:
        rows = catalog.rows(
            "SELECT pg_export_snapshot(), pg_relation_size({}::regclass) / current_setting('block_size')::int",
            table_sql,
        )
        yield Snapshot(str(rows[0][0]), int(rows[0][1]))
    finally:
        try:
            catalog.execute("COMMIT")
        except Exception:  # noqa: BLE001 - never plan later tables inside this transaction: reconnect instead
            catalog.close()


def block_ranges(pages: int, readers: int) -> list[str]:
    """``readers`` WHERE conditions on ``ctid`` that together cover every block once (fewer for small tables)."""
    readers = max(1, min(readers, pages))
    bounds = sorted({pages * i // readers for i in range(1, readers)})
    conds = []
    low: int | None = None
    for high in [*bounds, None]:
        parts = []
        if low is not None:
            parts.append(f"ctid >= '({low},0)'::tid")
        if high is not None:
            parts.append(f"ctid < '({high},0)'::tid")
        conds.append(" AND ".join(parts) if parts else "true")
        low = high
    return conds


class SnapshotStreams:
    """``stream`` of a source, each query inside the shared snapshot (what ``read_partitioned`` calls)."""

    def __init__(self, source: Any, snapshot: Snapshot) -> None:
        self.source = source
        self.snapshot = snapshot

    def stream(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        begin = ("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", f"SET TRANSACTION SNAPSHOT '{self.snapshot.name}'")
        stream: Iterator[pa.RecordBatch] = self.source.stream(sql, batch_size, begin=begin)
        return stream
