"""The incremental cursor applied in Arrow, for sources that cannot filter it themselves.

Rows whose cursor tuple is greater than the last committed one are kept (compared as a tuple, like the SQL
window of a database source); a row whose cursor is NULL is never kept, as in SQL. The highest cursor kept
becomes the next checkpoint's cursor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa


@dataclass
class CursorFilter:
    columns: list[str]
    """Lake names of the cursor columns."""
    lower: list[Any] | None
    """The last committed cursor values (None: keep every row whose cursor is set)."""
    highest: list[Any] | None = field(default=None)

    def apply(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow.compute as pc

        missing = [c for c in self.columns if c not in batch.schema.names]
        if missing:
            have = ", ".join(batch.schema.names)
            raise ConfigError(f"cursor column(s) {', '.join(missing)} not in the records; columns: {have}")
        arrays = [batch.column(c) for c in self.columns]
        keep = pc.and_(*[pc.is_valid(a) for a in arrays]) if len(arrays) > 1 else pc.is_valid(arrays[0])
        if self.lower is not None:
            keep = pc.and_(keep, _greater(arrays, self.lower))
        kept = batch.filter(pc.fill_null(keep, False))
        if kept.num_rows:
            top = _max_tuple([kept.column(c) for c in self.columns])
            if self.highest is None or _tuple_gt(top, self.highest):
                self.highest = top
        return kept


def _greater(arrays: list[pa.Array], lower: list[Any]) -> pa.Array:
    """Tuple comparison ``(a0, a1, ...) > (l0, l1, ...)`` as a boolean array."""
    import pyarrow as pa
    import pyarrow.compute as pc

    first, value = arrays[0], pa.scalar(lower[0], type=arrays[0].type)
    if len(arrays) == 1:
        return pc.greater(first, value)
    rest = _greater(arrays[1:], lower[1:])
    return pc.or_(pc.greater(first, value), pc.and_(pc.equal(first, value), rest))


def _max_tuple(arrays: list[pa.Array]) -> list[Any]:
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.table({str(i): a for i, a in enumerate(arrays)})
    indices = pc.sort_indices(table, sort_keys=[(str(i), "descending") for i in range(len(arrays))])
    top = indices[0].as_py()
    return [a[top].as_py() for a in arrays]


def _tuple_gt(a: list[Any], b: list[Any]) -> bool:
    return tuple(a) > tuple(b)
