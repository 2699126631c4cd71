"""Read every contender's output back: row count, exact sum of ``amount``, and the type it was stored as."""

from __future__ import annotations

import decimal
from dataclasses import dataclass
from typing import Any


@dataclass
class Check:
    rows: int
    amount_sum: str
    amount_type: str
    ok: bool = False
    problem: str = ""


def read_back(contender: str, output: dict[str, Any], out: str) -> Check:
    """Count and sum what ``contender`` wrote (the raw driver writes nothing: its own tally counts)."""
    if contender == "raw":
        return Check(int(output["rows"]), output["amount_sum"], "arrow (not written)")
    if contender == "pandas":
        import pyarrow.dataset as ds

        return _tally(ds.dataset(output["parquet"], format="parquet"))
    if contender == "lakeforge-iceberg":
        from pyiceberg.catalog.sql import SqlCatalog

        root = f"{out}/lakehouse"
        catalog = SqlCatalog("lakeforge", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
        import pyarrow.dataset as ds

        table = catalog.list_tables("bronze")[0]
        return _tally(ds.dataset(catalog.load_table(table).scan().to_arrow()))
    from deltalake import DeltaTable

    path = output.get("delta") or _lakeforge_table(out)
    return _tally(DeltaTable(path).to_pyarrow_dataset())


def _lakeforge_table(out: str) -> str:
    from pathlib import Path

    found = sorted((Path(out) / "lakehouse" / "bronze").glob("*/_delta_log"))
    return str(found[0].parent)


def _tally(dataset: Any) -> Check:
    import pyarrow as pa
    import pyarrow.compute as pc

    rows, total = 0, None
    kind = str(dataset.schema.field("amount").type)
    for batch in dataset.to_batches(columns=["amount"]):
        rows += batch.num_rows
        col = batch.column(0)
        if pa.types.is_floating(col.type):
            part: Any = pc.sum(col.cast(pa.float64())).as_py()
            part = decimal.Decimal(repr(part)) if part is not None else None
        else:
            part = pc.sum(col).as_py()
        if part is not None:
            total = part if total is None else total + part
    value = decimal.Decimal(total if total is not None else 0)
    return Check(rows, f"{value.quantize(decimal.Decimal('0.01'))}", kind)


def judge(check: Check, rows: int, amount_sum: str) -> Check:
    """Compare with the source; a float column that happens to round right is still flagged inexact."""
    problems = []
    if check.rows != rows:
        problems.append(f"{check.rows} rows, source has {rows}")
    if check.amount_sum != amount_sum:
        problems.append(f"sum(amount) {check.amount_sum}, source {amount_sum}")
    if "double" in check.amount_type or "float" in check.amount_type:
        problems.append(f"amount stored as {check.amount_type} (inexact)")
    check.ok = not any("rows" in p or "sum" in p for p in problems)
    check.problem = "; ".join(problems)
    return check
