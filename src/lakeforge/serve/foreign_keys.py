"""A star schema's foreign keys in the target, from the models' ``relationships`` checks.

A constraint is made when the referencing and the referenced table are published to the same target and the
referenced column is the referenced table's whole primary key. Constraints are named ``lf_fk_<table>_<column>``.
Before a table that takes part in one is replaced or merged, the constraint is dropped (a replaced dimension
could not be dropped, a merged one could not lose rows); after the tables are written every wanted constraint
that is missing is created, which checks every row. A constraint that cannot be made (rows pointing nowhere) is
a note on the referencing table, not a failure: the ``relationships`` check reports those rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.errors import LakeforgeError

if TYPE_CHECKING:
    from lakeforge.serve.config import PublishTarget
    from lakeforge.serve.destinations.base import Destination
    from lakeforge.serve.publish import PublishedTable, TableHints


@dataclass(frozen=True)
class ForeignKey:
    table: str
    """Target table holding the key."""
    column: str
    ref_table: str
    ref_column: str

    @property
    def name(self) -> str:
        return f"lf_fk_{self.table}_{self.column}"[:64]


def wanted(names: dict[str, str], cfg: PublishTarget, hints: dict[str, TableHints]) -> list[ForeignKey]:
    """The constraints the published tables' models declare (``names``: lake table -> target table)."""

    def key(table: str) -> list[str]:
        opts = cfg.options.get(table)
        if opts and opts.primary_key:
            return list(opts.primary_key)
        return list(hints[table].primary_key) if table in hints else []

    found = []
    for table, target in names.items():
        for column, ref, ref_column in hints[table].references if table in hints else []:
            if ref in names and key(ref) == [ref_column]:
                found.append(ForeignKey(target, column, names[ref], ref_column))
    return found


def drop_touching(dest: Destination, keys: list[ForeignKey], changing: set[str]) -> None:
    """Drop the existing constraints whose table or referenced table is about to be written."""
    if not keys:
        return
    existing = dest.foreign_keys()
    for fk in keys:
        if fk.name in existing and (fk.table in changing or fk.ref_table in changing):
            dest.drop_foreign_key(fk)


def ensure(dest: Destination, keys: list[ForeignKey], tables: set[str], results: list[PublishedTable]) -> None:
    """Create every wanted constraint that is missing between ``tables`` (those published and not failed)."""
    if not keys:
        return
    by_table = {r.target_table: r for r in results}
    existing = dest.foreign_keys()
    for fk in keys:
        if fk.name in existing or fk.table not in tables or fk.ref_table not in tables:
            continue
        try:
            dest.add_foreign_key(fk)
        except LakeforgeError as exc:
            if fk.table not in by_table:
                continue  # the referencing table was not part of this publish (--table): it keeps no constraint
            by_table[fk.table].notes.append(
                f"{fk.column}: foreign key to {fk.ref_table}.{fk.ref_column} not created: {exc}"
            )
