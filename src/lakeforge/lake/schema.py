"""Schema drift: how a lake table's schema follows its source.

- a new source column is added (older rows read NULL);
- a column gone from the source stays in the lake (its history is kept) and new rows get NULL;
- a widening change evolves: int8 < int16 < int32 < int64 < decimal, float32 < float64, a decimal whose
  integer digits and scale both grow or stay; a longer VARCHAR is the same Arrow string;
- a narrowing change keeps the lake's wider type (new values are cast up exactly);
- anything else raises :class:`SchemaDriftError` naming the table, column, old and new type.

Source columns come first and lakeforge's metadata columns (``_lf_*``) last, in every table: a column added
by drift goes after the other source columns, before the metadata. Delta appends a new column at the end of
a table's schema, so a table that gains a column is rewritten once in the new order (``Evolution.rewrite``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lakeforge.errors import SchemaDriftError

if TYPE_CHECKING:
    import pyarrow as pa

_INT_BITS = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_INT_DIGITS = {"int8": 3, "int16": 5, "int32": 10, "int64": 19}


@dataclass
class Evolution:
    schema: pa.Schema
    """Schema the new data is cast to and the table ends with."""
    added: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    """Columns whose lake type must widen: existing files need rewriting (``schema_mode=overwrite``)."""
    replaced: bool = False
    """The lake schema is dropped for the source's (``schema_change: replace``): the table is reloaded whole."""
    reordered: bool = False
    """A column was added before existing (metadata) columns: appending it would put it after them."""

    @property
    def rewrite(self) -> bool:
        """Existing data files must be rewritten in one commit before new rows go in (widened or reordered)."""
        return bool(self.widened) or self.reordered

    def rewrite_reason(self) -> str:
        parts = []
        if self.widened:
            parts.append(f"column type widened ({', '.join(self.widened)})")
        if self.reordered:
            parts.append(f"column added ({', '.join(self.added)}) before the _lf_ metadata columns")
        return "; ".join(parts) + ": the table was rewritten once in one commit"


def evolve(table: str, lake: pa.Schema | None, source: pa.Schema) -> Evolution:
    import pyarrow as pa

    if lake is None:
        return Evolution(pa.schema(metadata_last(list(source))))
    fields: list[pa.Field] = []
    result = Evolution(source)
    source_names = set(source.names)
    for lake_field in lake:
        if lake_field.name in source_names:
            new_type = source.field(lake_field.name).type
            target = wider(lake_field.type, new_type)
            if target is None:
                raise SchemaDriftError(table, lake_field.name, str(lake_field.type), str(new_type))
            if target != lake_field.type:
                result.widened.append(lake_field.name)
            fields.append(pa.field(lake_field.name, target, nullable=True))
        else:
            result.dropped.append(lake_field.name)
            fields.append(lake_field.with_nullable(True))
    for src_field in source:
        if src_field.name not in lake.names:
            result.added.append(src_field.name)
            fields.append(src_field)
    ordered = metadata_last(fields)
    # only an added column is moved: a table whose metadata columns already sit between source columns (made
    # before new tables were ordered) keeps its order rather than being rewritten on every run
    result.reordered = bool(result.added) and [f.name for f in ordered] != [f.name for f in fields]
    result.schema = pa.schema(ordered)
    return result


def metadata_last(fields: list[pa.Field]) -> list[pa.Field]:
    """``fields`` with the ``_lf_*`` metadata columns moved to the end, each group in its order."""
    from lakeforge.lake.naming import META_PREFIX

    return [f for f in fields if not f.name.startswith(META_PREFIX)] + [
        f for f in fields if f.name.startswith(META_PREFIX)
    ]


def wider(old: pa.DataType, new: pa.DataType) -> pa.DataType | None:
    """The type that holds every value of both, if one of them already is it; else None."""
    if old == new or _same_family(old, new):
        return old
    if _widens(old, new):
        return new
    if _widens(new, old):
        return old
    return None


def _same_family(a: pa.DataType, b: pa.DataType) -> bool:
    import pyarrow as pa

    strings = (pa.string(), pa.large_string())
    binaries = (pa.binary(), pa.large_binary())
    return (a in strings and b in strings) or (a in binaries and b in binaries)


def _widens(old: pa.DataType, new: pa.DataType) -> bool:
    """True when every ``old`` value is exactly representable as ``new``."""
    import pyarrow as pa

    o, n = str(old), str(new)
    if o in _INT_BITS and n in _INT_BITS:
        return _INT_BITS[o] <= _INT_BITS[n]
    if o in _INT_BITS and pa.types.is_decimal(new):
        return bool(new.precision - new.scale >= _INT_DIGITS[o])
    if o in ("int8", "int16", "int32") and n == "double":
        return True
    if o == "float" and n == "double":
        return True
    if pa.types.is_decimal(old) and pa.types.is_decimal(new):
        return bool(new.scale >= old.scale and new.precision - new.scale >= old.precision - old.scale)
    return False
