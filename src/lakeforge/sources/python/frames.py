"""What a Python source yields, as one Arrow record batch (or bad records)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from lakeforge.sources.records import BadRecord

if TYPE_CHECKING:
    import pyarrow as pa


def to_batch(item: Any, first: int) -> tuple[pa.RecordBatch | None, list[BadRecord]]:
    """A dict, a list of dicts, an Arrow table/batch, a pandas or polars frame, or anything with
    ``__arrow_c_stream__``; ``first`` numbers the records (the offset in quarantine)."""
    batch, bad = _to_batch(item, first)
    return (plain_types(batch) if batch is not None else None), bad


def plain_types(batch: pa.RecordBatch) -> pa.RecordBatch:
    """View and large string/binary columns (polars hands out ``string_view``) as plain string/binary: the
    same values, one spelling, so files from different writers evolve as one column."""
    import pyarrow as pa

    plain = {
        pa.string_view(): pa.string(),
        pa.large_string(): pa.string(),
        pa.binary_view(): pa.binary(),
        pa.large_binary(): pa.binary(),
    }
    if not any(f.type in plain for f in batch.schema):
        return batch
    arrays = [c.cast(plain[c.type]) if c.type in plain else c for c in batch.columns]
    return pa.RecordBatch.from_arrays(arrays, names=batch.schema.names)


def _to_batch(item: Any, first: int) -> tuple[pa.RecordBatch | None, list[BadRecord]]:
    import pyarrow as pa

    if isinstance(item, pa.RecordBatch):
        return item, []
    if isinstance(item, pa.Table):
        return _one(item), []
    if isinstance(item, dict):
        item = [item]
    if isinstance(item, list | tuple):
        return _from_rows(list(item), first)
    module = type(item).__module__.split(".")[0]
    if module == "pandas":
        return _one(pa.Table.from_pandas(item, preserve_index=False)), []
    if hasattr(item, "__arrow_c_stream__"):  # polars, duckdb, ...
        return _one(pa.table(item)), []
    if module == "polars":
        return _one(item.to_arrow()), []
    reason = f"a {type(item).__name__} is not a record (a dict, list of dicts or frame)"
    return None, [BadRecord(reason, _text(item), offset=first)]


def _one(table: pa.Table) -> pa.RecordBatch:
    batches = table.combine_chunks().to_batches()
    return batches[0] if batches else _empty(table.schema)


def _empty(schema: pa.Schema) -> pa.RecordBatch:
    import pyarrow as pa

    return pa.RecordBatch.from_pylist([], schema=schema)


def _from_rows(rows: list[Any], first: int) -> tuple[pa.RecordBatch | None, list[BadRecord]]:
    good = [(i, r) for i, r in enumerate(rows) if isinstance(r, dict)]
    bad = [
        BadRecord(f"a {type(r).__name__} is not a record (a dict)", _text(r), offset=first + i)
        for i, r in enumerate(rows)
        if not isinstance(r, dict)
    ]
    batch, refused = rows_to_batch([r for _, r in good])
    bad += [BadRecord(reason, _text(good[n][1]), offset=first + good[n][0]) for n, reason in refused]
    bad.sort(key=lambda b: b.offset or 0)
    return batch, bad


def rows_to_batch(rows: list[dict[str, Any]]) -> tuple[pa.RecordBatch | None, list[tuple[int, str]]]:
    """Dicts as rows: the columns are every key of every dict (a missing key is NULL), each value's type
    inferred over all the rows. When a column's values have different types, the type of its first value
    wins and the rows with another are refused: ``(index, reason)``."""
    import pyarrow as pa

    if not rows:
        return None, []
    errors = (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, OverflowError)
    try:
        return plain_types(pa.RecordBatch.from_struct_array(pa.array(rows))), []
    except errors:
        pass
    keys = list(dict.fromkeys(k for r in rows for k in r))
    refused: dict[int, str] = {}
    for key in keys:
        values = [r.get(key) for r in rows]
        try:
            pa.array(values)
            continue
        except errors:
            pass
        present = [v for v in values if v is not None]
        try:
            kind = pa.array(present[:1]).type
        except errors:
            kind = pa.string()
        for n, value in enumerate(values):
            try:
                pa.array([value], type=kind)
            except errors:
                refused.setdefault(n, f"column {key}: {_text(value)} is not a {kind} like the column's first value")
    kept = [r for n, r in enumerate(rows) if n not in refused]
    if not kept:
        return None, sorted(refused.items())
    try:
        return plain_types(pa.RecordBatch.from_struct_array(pa.array(kept))), sorted(refused.items())
    except errors as exc:  # e.g. an integer beyond int64 inside a nested value: every such row is refused
        return None, [(n, refused.get(n, f"cannot be stored: {exc}")) for n in range(len(rows))]


def _text(value: Any) -> str:
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return repr(value)
