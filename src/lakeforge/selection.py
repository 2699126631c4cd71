"""Which source tables a run loads: include/exclude globs, explicit tables, ``--select``."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable

from lakeforge.config.models import SourceBase, TableConfig
from lakeforge.errors import TableNotFound
from lakeforge.sources.base import TableRef


def _matches(patterns: Iterable[str], ref: TableRef) -> bool:
    return any(fnmatch.fnmatchcase(ref.name, p) or fnmatch.fnmatchcase(ref.qualified, p) for p in patterns)


def options_for(config: SourceBase, ref: TableRef) -> TableConfig | None:
    return config.tables.get(ref.qualified) or config.tables.get(ref.name)


def select_tables(source_name: str, config: SourceBase, available: list[TableRef]) -> list[TableRef]:
    """Tables to load, in a stable order; a table named in ``tables:`` must exist.

    ``include`` globs pick base tables; a view or materialized view is loaded only when it is named under
    ``tables:`` (a glob such as ``*`` would otherwise start loading every view a database has)."""
    names = {r.name for r in available} | {r.qualified for r in available}
    for key in config.tables:
        if key not in names:
            listed = ", ".join(sorted(r.qualified for r in available)) or "(none readable)"
            raise TableNotFound(
                source_name,
                f"table '{key}' (in lakeforge.yml sources.{source_name}.tables) does not exist "
                f"or is not readable; tables: {listed}",
            )
    chosen = []
    for ref in available:
        explicit = options_for(config, ref) is not None
        included = explicit or (ref.kind == "table" and _matches(config.include, ref))
        if included and not _matches(config.exclude, ref):
            chosen.append(ref)
    return chosen
