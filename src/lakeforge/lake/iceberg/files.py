"""Iceberg: Parquet files written by distributed workers join a table in one catalog commit (``add_files``,
after deleting every row for an overwrite), the checkpoint in the summary of its snapshots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from lakeforge.errors import LakeError
from lakeforge.lake.base import DataFile

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.iceberg.lake import IcebergLake


def staging(lake: IcebergLake, name: str, schema: pa.Schema) -> str:
    """``<table location>/data``; the table's catalog entry is created first when missing (a table without
    a snapshot, which ``exists`` does not count, as after a first write killed before its commit)."""
    from lakeforge.lake.iceberg.schema import check_types, create_table

    check_types(name, schema)
    table = lake._load(name) or create_table(lake, name, schema, None)
    return str(table.location()).rstrip("/") + "/data"


def commit_files(
    lake: IcebergLake,
    name: str,
    files: Sequence[DataFile],
    *,
    schema: pa.Schema,
    mode: Literal["overwrite", "append"],
    summary: dict[str, str],
) -> None:
    import pyarrow as pa
    from pyiceberg.expressions import AlwaysTrue

    from lakeforge.lake.iceberg.lake import _has_rows, iceberg_error
    from lakeforge.lake.iceberg.schema import check_types, create_table, evolve_in, optional

    check_types(name, schema)
    table = lake._load(name) or create_table(lake, name, schema, None)
    try:
        with table.transaction() as tx:
            evolve_in(tx, schema, replace=mode == "overwrite")
            if mode == "overwrite" and table.current_snapshot() is not None and _has_rows(table):
                tx.delete(AlwaysTrue(), snapshot_properties=summary)
            if files:
                tx.add_files([f.path for f in files], snapshot_properties=summary, check_duplicate_files=True)
            else:  # no rows: still one snapshot, so the checkpoint lands
                tx.append(pa.Table.from_batches([], schema=optional(schema)), snapshot_properties=summary)
    except LakeError:
        raise
    except Exception as exc:
        raise iceberg_error(name, "commit of distributed files", exc) from exc
