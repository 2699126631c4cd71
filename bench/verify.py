"""Read every contender's output back and compare it with the source: a contender whose output differs is WRONG.

The fingerprint of a table (:class:`Truth`): row count, exact ``sum(amount)``, ``sum(id)``, the number of NULL
``note`` values and the latest ``updated_at`` as a UTC wall-clock string (microseconds). It catches lost or
duplicated rows, rounded decimals, NULLs turned into empty strings and time stamps shifted by a time zone.
"""

from __future__ import annotations

import datetime as dt
import decimal
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Truth:
    """What the source holds (``bench.data.truth``)."""

    rows: int
    amount_sum: str
    id_sum: int | None = None
    null_notes: int | None = None
    max_updated: str | None = None
    """``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC (MariaDB DATETIME: as stored)."""


@dataclass
class Check:
    rows: int
    amount_sum: str
    amount_type: str
    ok: bool = False
    problem: str = ""
    id_sum: int | None = None
    null_notes: int | None = None
    max_updated: str | None = None
    """None: not measured (the raw driver writes nothing and only tallies rows and amounts)."""


def read_back(contender: str, output: dict[str, Any], out: str) -> Check:
    """Fingerprint what ``contender`` wrote (the raw driver writes nothing: its own tally counts)."""
    if contender == "raw":
        return Check(int(output["rows"]), output["amount_sum"], "arrow (not written)")
    if "parquet" in output:  # pandas, sling
        import pyarrow.dataset as ds

        return tally(ds.dataset(output["parquet"], format="parquet"))
    if contender == "lakeforge-iceberg":
        from pyiceberg.catalog.sql import SqlCatalog

        root = f"{out}/lakehouse"
        catalog = SqlCatalog("lakeforge", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
        import pyarrow.dataset as ds

        table = catalog.list_tables("bronze")[0]
        return tally(ds.dataset(catalog.load_table(table).scan().to_arrow()))
    from deltalake import DeltaTable

    path = output.get("delta") or _lakeforge_table(out)
    return tally(DeltaTable(path).to_pyarrow_dataset())


def _lakeforge_table(out: str) -> str:
    from pathlib import Path

    found = sorted((Path(out) / "lakehouse" / "bronze").glob("*/_delta_log"))
    return str(found[0].parent)


def tally(dataset: Any) -> Check:
    """The fingerprint of a pyarrow dataset (any format), batch by batch."""
    import pyarrow as pa
    import pyarrow.compute as pc

    rows, total, ids, nulls = 0, None, 0, 0
    latest: dt.datetime | None = None
    kind = str(dataset.schema.field("amount").type)
    updated_type = dataset.schema.field("updated_at").type
    for batch in dataset.to_batches(columns=["amount", "id", "note", "updated_at"]):
        rows += batch.num_rows
        col = batch.column(0)
        if pa.types.is_floating(col.type):
            part: Any = pc.sum(col.cast(pa.float64())).as_py()
            part = decimal.Decimal(repr(part)) if part is not None else None
        else:
            part = pc.sum(col).as_py()
        if part is not None:
            total = part if total is None else total + part
        ids += pc.sum(batch.column(1)).as_py() or 0
        nulls += batch.column(2).null_count
        if pa.types.is_timestamp(updated_type):
            top = pc.max(batch.column(3)).as_py()
            if top is not None and (latest is None or top > latest):
                latest = top
    value = decimal.Decimal(total if total is not None else 0)
    check = Check(rows, f"{value.quantize(decimal.Decimal('0.01'))}", kind, id_sum=ids, null_notes=nulls,
                  max_updated=_utc_text(latest) if latest is not None else f"stored as {updated_type}")
    return check


def _utc_text(value: dt.datetime) -> str:
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(sep=" ", timespec="microseconds")


def judge(check: Check, truth: Truth) -> Check:
    """Compare with the source; a float column that happens to round right is still flagged inexact."""
    wrong = []
    if check.rows != truth.rows:
        wrong.append(f"{check.rows} rows, source has {truth.rows}")
    if check.amount_sum != truth.amount_sum:
        wrong.append(f"sum(amount) {check.amount_sum}, source {truth.amount_sum}")
    for name in ("id_sum", "null_notes", "max_updated"):
        mine, theirs = getattr(check, name), getattr(truth, name)
        if mine is not None and theirs is not None and mine != theirs:
            wrong.append(f"{name} {mine}, source {theirs}")
    notes = []
    if "double" in check.amount_type or "float" in check.amount_type:
        notes.append(f"amount stored as {check.amount_type} (inexact)")
    check.ok = not wrong
    check.problem = "; ".join(wrong + notes)
    return check
