"""Plan a run before anything is written: which lake table each selected source table becomes.

Two source tables that would land in the same lake table (``Dup Name`` and ``dup_name`` in one source; source
``my`` table ``x_y`` and source ``my_x`` table ``y``) are refused here, naming both and the ways out, so a
run never lets one silently overwrite the other. A ``--select`` that matches nothing is refused too, with the
closest names, unless the caller allows an empty run.
"""

from __future__ import annotations

import difflib
import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass

from lakeforge.config.models import SourceBase, TableConfig
from lakeforge.errors import ConfigError
from lakeforge.sources.base import Source, TableRef


@dataclass(frozen=True)
class PlannedTable:
    source: str
    ref: TableRef
    options: TableConfig
    table: str
    """Lake table, ``bronze.<name>``."""
    mode: str


def lake_name(source: Source, ref: TableRef, options: TableConfig) -> str:
    """``bronze.<name>`` from the table's ``name`` option, else ``<prefix>_[<schema>_]<table>``; the prefix is
    the source's ``prefix`` option, else its name."""
    if options.name:
        return f"bronze.{options.name}"
    return "bronze." + source.lake_table(ref)


def plan_source(source: Source, config: SourceBase, refs: Iterable[TableRef]) -> list[PlannedTable]:
    from lakeforge.selection import options_for

    planned = []
    for ref in refs:
        options = options_for(config, ref) or TableConfig()
        mode = options.mode or config.defaults.mode
        if mode == "cdc" and ref.kind != "table":
            raise ConfigError(
                f"source '{source.name}': {ref.qualified} is a {ref.kind.replace('_', ' ')}, which has no change "
                f"log; load it with mode: full, or mode: incremental with a cursor (tables.{ref.name}.mode)"
            )
        planned.append(PlannedTable(source.name, ref, options, lake_name(source, ref, options), mode))
    return planned


def check_collisions(planned: Iterable[PlannedTable]) -> None:
    """Raise one ConfigError listing every lake table that two or more source tables would write."""
    by_table: dict[str, list[PlannedTable]] = {}
    for item in planned:
        by_table.setdefault(item.table, []).append(item)
    clashes = {table: items for table, items in by_table.items() if len(items) > 1}
    if not clashes:
        return
    lines = [
        "two source tables would be loaded into the same lake table, and the last would overwrite the "
        "first; nothing was loaded:"
    ]
    for table, items in sorted(clashes.items()):
        names = " and ".join(f"{i.source}.{i.ref.qualified}" for i in items)
        lines.append(f"  {table} <- {names}")
    first = next(iter(sorted(clashes.items())))[1][0]
    lines.append(
        f"give one of them its own lake name (sources.{first.source}.tables.{first.ref.name}.name: <new name>), "
        f"or give a source another prefix (sources.{first.source}.prefix: <prefix>), or exclude one "
        f"(sources.{first.source}.exclude)"
    )
    raise ConfigError("\n".join(lines))


def selected(pattern: str, item: PlannedTable) -> bool:
    """Does ``--select`` pattern match the lake name (with or without layer), ``source.table`` or the source?"""
    candidates = (
        item.table,
        item.table.partition(".")[2],
        f"{item.source}.{item.ref.qualified}",
        f"{item.source}.{item.ref.name}",
        item.source,
    )
    return any(fnmatch.fnmatchcase(candidate, pattern) for candidate in candidates)


def apply_select(planned: list[PlannedTable], select: list[str] | None, *, allow_empty: bool) -> list[PlannedTable]:
    """The planned tables ``select`` matches (all without it); nothing matched is an error unless allowed."""
    chosen = [p for p in planned if not select or any(selected(s, p) for s in select)]
    if chosen or allow_empty:
        return chosen
    if not select:
        raise ConfigError(
            "no table is selected: the sources' include/exclude patterns match no table "
            "(pass --allow-empty to run anyway)"
        )
    names = sorted({p.table for p in planned} | {p.table.partition(".")[2] for p in planned})
    hints = []
    for pattern in select:
        close = difflib.get_close_matches(pattern.replace("*", ""), names, n=5, cutoff=0.4)
        hints.append(f"'{pattern}'" + (f" (close: {', '.join(close)})" if close else ""))
    listed = ", ".join(sorted(p.table for p in planned)[:20]) or "(none)"
    raise ConfigError(
        f"--select {'; '.join(hints)} matches no table; tables: {listed} (pass --allow-empty to run anyway)"
    )
