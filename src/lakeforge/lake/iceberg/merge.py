"""MERGE by key on an Iceberg table, computed in Arrow, committed as one catalog commit.

Iceberg has no streaming MERGE: the input is taken in windows of ``WINDOW_BYTES`` (64 MiB of Arrow data) held in
memory one at a time; each window's matched rows are found with a key filter (``In`` for one key column), rows
to replace are deleted copy-on-write and the new images appended, all windows in one transaction whose snapshots
carry the checkpoint. Nothing to change: no commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from lakeforge.lake.base import MERGE_COUNTS

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.table import Table

    from lakeforge.lake.iceberg.lake import IcebergLake


WINDOW_BYTES = 64 * 2**20
"""Arrow bytes of input a MERGE holds at a time: a larger input is merged window by window inside the one
transaction (each window's deletes and appends are snapshots of the same catalog commit)."""


def merge(
    lake: IcebergLake,
    table: Table,
    batches: Iterable[pa.RecordBatch],
    *,
    name: str,
    schema: pa.Schema,
    keys: list[str],
    summary: dict[str, str],
    delete_column: str | None,
    keep_deleted: Sequence[str] | None,
    compare: list[str] | None,
) -> dict[str, Any]:
    """Merge ``batches`` window by window (``WINDOW_BYTES`` of Arrow data each) in one transaction.

    Windows never share a key (a key seen in an earlier window is the duplicate error below; only the keys
    are kept across windows), so each window's matches are read from the snapshot the MERGE started from and
    its deletes touch rows no other window changes: the result equals one MERGE of the whole input."""
    from lakeforge.lake.iceberg.schema import evolve_in, optional
    from lakeforge.load.killpoint import kill_at

    counts = dict.fromkeys(MERGE_COUNTS, 0)
    snap = table.current_snapshot()
    seen: pa.Table | None = None
    evolved = False
    with table.transaction() as tx:
        for source in _windows(batches, schema, WINDOW_BYTES):
            source = source.cast(optional(schema))
            seen = _refuse_duplicates(source, keys, seen)
            remove, insert = _changes(table, snap, source, keys, counts, delete_column, keep_deleted, compare)
            if (remove.num_rows or insert.num_rows) and not evolved:
                evolve_in(tx, schema, replace=False)
                evolved = True
            _stage(tx, remove, insert, keys, summary)
        if evolved:
            kill_at("commit", name)  # crash test: data files written, catalog commit not made
    return counts


def _windows(batches: Iterable[pa.RecordBatch], schema: pa.Schema, limit: int) -> Iterator[pa.Table]:
    import pyarrow as pa

    held: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        held.append(batch)
        size += batch.nbytes
        if size >= limit:
            yield pa.Table.from_batches(held, schema=schema)
            held, size = [], 0
    if held:
        yield pa.Table.from_batches(held, schema=schema)


def _refuse_duplicates(source: pa.Table, keys: list[str], seen: pa.Table | None) -> pa.Table:
    """The keys seen so far, with ``source``'s; a key twice in the input (in one window or two) is refused."""
    import pyarrow as pa

    duplicated = _duplicated_keys(source, keys)
    mine = source.select(keys)
    if not duplicated and seen is not None and seen.num_rows:
        duplicated = mine.join(seen, keys, join_type="inner").num_rows
    if duplicated:
        raise ValueError(
            f"{duplicated} key(s) appear in more than one source row; a MERGE needs one row per key ({', '.join(keys)})"
        )
    return mine if seen is None else pa.concat_tables([seen, mine])


def _stage(tx: Any, remove: pa.Table, insert: pa.Table, keys: list[str], summary: dict[str, str]) -> None:
    from pyiceberg.table.upsert_util import create_match_filter

    if remove.num_rows:
        tx.delete(create_match_filter(remove, keys), snapshot_properties=summary)
    if insert.num_rows:
        tx.append(insert, snapshot_properties=summary)


def _changes(
    table: Table,
    snap: Any,
    source: pa.Table,
    keys: list[str],
    counts: dict[str, int],
    delete_column: str | None,
    keep_deleted: Sequence[str] | None,
    compare: list[str] | None,
) -> tuple[pa.Table, pa.Table]:
    """The rows one window removes (by key) and inserts; adds its row counts to ``counts``."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyiceberg.table.upsert_util import create_match_filter

    target = (
        table.scan(row_filter=create_match_filter(source, keys), snapshot_id=snap.snapshot_id).to_arrow()
        if snap is not None
        else source.slice(0, 0)
    )
    s_idx, t_idx = _match(source, target, keys)
    matched = pc.is_valid(t_idx)
    deleted = (
        _flat(pc.fill_null(source[delete_column], False)) if delete_column else pa.array([False] * source.num_rows)
    )
    if delete_column and keep_deleted is not None:  # soft: a delete flags its match, and is kept when unmatched
        rows = source.take(s_idx)
        flagged = pc.and_(matched, deleted)
        updated = pc.sum(matched).as_py() or 0
        counts["num_target_rows_updated"] += updated
        counts["num_target_rows_inserted"] += rows.num_rows - updated
        return rows.filter(matched), _with_flags(rows, target, t_idx, flagged, keep_deleted)
    rows, deleted = source.take(s_idx), deleted.take(s_idx)
    changed = matched
    if compare and not delete_column and target.num_rows:
        changed = pc.and_(matched, _differs(rows, target.take(pc.fill_null(t_idx, 0)), compare))
    keep = pc.invert(deleted)
    counts["num_target_rows_deleted"] += pc.sum(pc.and_(matched, deleted)).as_py() or 0
    counts["num_target_rows_updated"] += pc.sum(pc.and_(changed, keep)).as_py() or 0
    counts["num_target_rows_inserted"] += pc.sum(pc.and_(keep, pc.invert(matched))).as_py() or 0
    remove = rows.filter(pc.or_(pc.and_(matched, deleted), pc.and_(changed, keep)))
    insert = rows.filter(pc.and_(keep, pc.or_(changed, pc.invert(matched))))
    return remove, insert


def _match(source: pa.Table, target: pa.Table, keys: list[str]) -> tuple[pa.Array, pa.Array]:
    """Row indices of ``source`` and, aligned, of each one's match in ``target`` (null: none)."""
    import pyarrow as pa

    left = source.select(keys).append_column("__s", pa.array(range(source.num_rows), pa.int64()))
    right = (
        target.select(keys)
        .cast(left.select(keys).schema)
        .append_column("__t", pa.array(range(target.num_rows), pa.int64()))
    )
    joined = left.join(right, keys, join_type="left outer").sort_by("__s")
    return joined["__s"].combine_chunks(), joined["__t"].combine_chunks()


def _differs(rows: pa.Table, old: pa.Table, columns: list[str]) -> pa.Array:
    """True where a column of ``columns`` IS DISTINCT FROM its match (NaN equals NaN, NULL equals NULL)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    result = pa.array([False] * rows.num_rows)
    for column in columns:
        if column not in old.column_names:
            return pa.array([True] * rows.num_rows)
        a, b = rows[column], old[column].cast(rows.schema.field(column).type)
        same = pc.or_(pc.fill_null(pc.equal(a, b), False), pc.and_(pc.is_null(a), pc.is_null(b)))
        if pa.types.is_floating(a.type):
            same = pc.or_(same, pc.fill_null(pc.and_(pc.is_nan(a), pc.is_nan(b)), False))
        result = pc.or_(result, pc.invert(same))
    return result


def _with_flags(rows: pa.Table, target: pa.Table, t_idx: pa.Array, flagged: pa.Array, flags: Sequence[str]) -> pa.Table:
    """``rows`` where a flagged row (a delete of an existing key) keeps its match's values except ``flags``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not pc.any(flagged).as_py():
        return rows
    old = target.take(pc.fill_null(t_idx, 0))
    columns = []
    for f in rows.schema:
        new = rows[f.name]
        if f.name not in flags and f.name in old.column_names:
            new = pc.if_else(flagged, old[f.name].cast(f.type), new)
        columns.append(new)
    return pa.table(columns, schema=rows.schema)


def _flat(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    import pyarrow as pa

    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _duplicated_keys(source: pa.Table, keys: list[str]) -> int:
    import pyarrow.compute as pc

    counts = source.select(keys).group_by(keys).aggregate([([], "count_all")])
    return len(counts.filter(pc.greater(counts["count_all"], 1)))
