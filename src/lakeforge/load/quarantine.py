"""Bad records of a record source, kept in the lake table ``quarantine.<table>`` (``<table>`` is the bronze
table's name without its layer: ``quarantine.<source>_<table>``, or ``quarantine.<source>``).

Each row says where the record came from (source, file and line, or partition and offset), why it was
refused, its raw text and the run that read it. The bad records of a commit interval are committed just
before the bronze commit that carries the same position; their commit carries the bronze table's sequence
number it belongs to, so a run that dies between the two commits and reads the same records again does not
quarantine them twice.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from lakeforge.lake.checkpoint import Checkpoint

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.base import Lake
    from lakeforge.sources.records import BadRecord

LAYER = "quarantine"


def quarantine_table(bronze: str) -> str:
    return f"{LAYER}.{bronze.partition('.')[2]}"


def quarantine_schema() -> pa.Schema:
    import pyarrow as pa

    return pa.schema(
        [
            pa.field("source", pa.string()),
            pa.field("table", pa.string()),
            pa.field("file", pa.string()),
            pa.field("line", pa.int64()),
            pa.field("partition", pa.string()),
            pa.field("offset", pa.int64()),
            pa.field("reason", pa.string()),
            pa.field("raw", pa.string()),
            pa.field("run_id", pa.string()),
            pa.field("quarantined_at", pa.timestamp("us", tz="UTC")),
        ]
    )


def write_quarantine(
    lake: Lake, bronze: str, bad: list[BadRecord], *, source: str, run_id: str, for_sequence: int | None
) -> int:
    """Commit ``bad`` to ``quarantine.<table>`` unless the commit for bronze sequence ``for_sequence`` is
    already there; returns the rows written. ``for_sequence=None`` (messages, each named by its partition and
    offset): only the records whose partition and offset the table does not hold yet are written."""
    import pyarrow as pa

    name = quarantine_table(bronze)
    previous = lake.checkpoint(name)
    if for_sequence is not None and previous is not None and previous.position.get("for_sequence") == for_sequence:
        return 0
    if for_sequence is None and previous is not None:
        held = lake.read(name).select(["partition", "offset"]).to_pylist()
        seen = {(r["partition"], r["offset"]) for r in held}
        bad = [r for r in bad if (r.partition, r.offset) not in seen]
    if not bad:
        return 0
    now = dt.datetime.now(dt.UTC)
    columns: dict[str, list[Any]] = {f.name: [] for f in quarantine_schema()}
    for record in bad:
        columns["source"].append(source)
        columns["table"].append(bronze)
        columns["file"].append(record.file)
        columns["line"].append(record.line)
        columns["partition"].append(record.partition)
        columns["offset"].append(record.offset)
        columns["reason"].append(record.reason)
        columns["raw"].append(record.raw)
        columns["run_id"].append(run_id)
        columns["quarantined_at"].append(now)
    schema = quarantine_schema()
    batch = pa.RecordBatch.from_pydict(columns, schema=schema)
    checkpoint = Checkpoint(
        run_id=run_id,
        mode="quarantine",
        sequence=lake.next_sequence(name),
        position={"for_sequence": for_sequence},
        source=source,
        source_table=bronze,
    )
    lake.write(name, [batch], schema=schema, mode="append", checkpoint=checkpoint)
    return len(bad)


def read_quarantine(lake: Lake, tables: list[str] | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The newest quarantined records (of the quarantine tables matching ``tables`` globs, or all)."""
    import fnmatch

    names = lake.names([LAYER])
    if tables:
        names = [n for n in names if any(fnmatch.fnmatchcase(c, p) for p in tables for c in (n, n.partition(".")[2]))]
    rows: list[dict[str, Any]] = []
    for name in names:
        for row in lake.read(name).to_pylist():
            row["quarantine_table"] = name
            rows.append(row)
    rows.sort(key=lambda r: (r["quarantined_at"], r["file"] or "", r["line"] or 0, r["offset"] or 0), reverse=True)
    return rows[:limit]
