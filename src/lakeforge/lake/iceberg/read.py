"""An Iceberg snapshot as a pyarrow dataset over its data files (what DuckDB views and readers scan).

lakeforge writes copy-on-write only (no delete files), so a snapshot's rows are exactly its data files'
rows; a snapshot with delete files (written by another engine) is read through PyIceberg instead.
Columns are matched by name: lakeforge never renames a column, and a column whose type cannot be promoted
is rewritten with all the data in one commit, so no file holds an older meaning of a name.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow.dataset as pads
    from pyiceberg.table import Table

    from lakeforge.lake.base import TableFiles
    from lakeforge.lake.iceberg.lake import IcebergLake


def dataset(lake: IcebergLake, table: Table, snap: Any) -> pads.Dataset:
    import pyarrow as pa
    import pyarrow.dataset as ds

    from lakeforge.lake.iceberg.schema import small_types

    iceberg_schema = table.schemas().get(snap.schema_id, table.schema()) if snap is not None else table.schema()
    schema = pa.schema([small_types(f).remove_metadata() for f in iceberg_schema.as_arrow()])
    if snap is None:
        return ds.dataset(schema.empty_table())
    tasks = list(table.scan(snapshot_id=snap.snapshot_id).plan_files())
    if any(t.delete_files for t in tasks):
        return ds.dataset(table.scan(snapshot_id=snap.snapshot_id).to_arrow().cast(schema))
    fs, _ = lake.storage.filesystem()
    paths = [_path(t.file.file_path) for t in tasks]
    if not paths:
        return ds.dataset(schema.empty_table())
    return ds.dataset(paths, schema=schema, format="parquet", filesystem=fs)


def data_files(lake: IcebergLake, table: Table, snap: Any) -> TableFiles | None:
    """The snapshot's data files (local paths or ``s3://`` URIs); None when it has delete files."""
    from lakeforge.lake.base import TableFiles

    if snap is None:
        return TableFiles([], lake.storage)
    tasks = list(table.scan(snapshot_id=snap.snapshot_id).plan_files())
    if any(t.delete_files for t in tasks):
        return None
    paths = [t.file.file_path for t in tasks]
    return TableFiles([p.removeprefix("file://") if p.startswith("file://") else p for p in paths], lake.storage)


def _path(uri: str) -> str:
    for prefix in ("file://", "s3://", "s3a://"):
        if uri.startswith(prefix):
            return uri[len(prefix) :]
    return uri
