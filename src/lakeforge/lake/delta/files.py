"""Delta: Parquet files written by distributed workers join a table in one commit of add (and, for an
overwrite, remove) actions, carrying the checkpoint like every other lakeforge commit."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

from lakeforge.errors import LakeError
from lakeforge.lake.base import DataFile

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.lake.delta.lake import DeltaLake


def commit_files(
    lake: DeltaLake,
    name: str,
    files: Sequence[DataFile],
    *,
    schema: pa.Schema,
    mode: Literal["overwrite", "append"],
    commit: Any,
) -> None:
    from deltalake import Schema
    from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

    from lakeforge.lake.delta.stats import delta_stats

    root = lake.uri(name).rstrip("/") + "/"
    now = int(time.time() * 1000)
    actions: list[AddAction | RemoveAction] = []
    for f in files:
        if not f.path.startswith(root):
            raise LakeError(f"lake table {name}: file {f.path} is outside the table's folder {root}")
        stats = delta_stats(f.meta, schema, f.rows) if f.meta is not None else json.dumps({"numRecords": f.rows})
        actions.append(AddAction(f.path[len(root) :], f.bytes, {}, now, True, stats))
    table = lake._open(name)
    try:
        if table is None:
            create_table_with_add_actions(
                lake.uri(name),
                Schema.from_arrow(schema),
                [a for a in actions if isinstance(a, AddAction)],
                mode="error",
                storage_options=lake.storage_options,
                commit_properties=commit,
            )
        else:
            table.create_write_transaction(actions, mode, schema, commit_properties=commit)
    except Exception as exc:
        from lakeforge.lake.delta.lake import delta_error

        raise delta_error(name, "commit of distributed files", exc) from exc
