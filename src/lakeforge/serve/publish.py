"""Publishing lake tables into a target database (``lakeforge publish``).

Receives what it needs (the lake, the target's config, keys and indexes the models declare); reads the
destination's capability flags, never its type name. Each table is read at one pinned lake version, streamed
in record batches (bounded memory) and written in the target's ``replace`` or ``upsert`` way; the version is
recorded in the target so an unchanged table is skipped.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from lakeforge.errors import ConfigError, LakeforgeError, PublishError
from lakeforge.load.killpoint import kill_at
from lakeforge.serve.destinations.base import TableSpec, signature

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from lakeforge.lake.base import Lake
    from lakeforge.serve.config import PublishTarget
    from lakeforge.serve.destinations.base import Destination

BATCH_ROWS = 65_536


@dataclass(frozen=True)
class TableHints:
    """What a model declares that publishing uses: its key, the columns worth an index, its references."""

    primary_key: list[str] = field(default_factory=list)
    indexes: list[list[str]] = field(default_factory=list)
    references: list[tuple[str, str, str]] = field(default_factory=list)
    """(column, referenced lake table, referenced column) from the model's ``relationships`` checks."""


@dataclass
class PublishedTable:
    target: str
    lake_table: str
    target_table: str
    mode: str
    status: Literal["published", "unchanged", "failed"]
    version: int | None = None
    rows: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    """Columns the target cannot hold in the lake's exact type: what was chosen."""
    error: str | None = None


def select(names: list[str], cfg: PublishTarget) -> list[str]:
    """The lake tables ``cfg.tables`` matches and ``cfg.exclude`` does not, sorted."""
    return [
        n
        for n in names
        if any(fnmatch.fnmatchcase(n, p) for p in cfg.tables)
        and not any(fnmatch.fnmatchcase(n, p) for p in cfg.exclude)
    ]


def target_names(target: str, tables: list[str], cfg: PublishTarget) -> dict[str, str]:
    """Lake table -> target table (the options' ``name``, else the table's name without its layer)."""
    names: dict[str, str] = {}
    seen: dict[str, str] = {}
    for table in tables:
        opts = cfg.options.get(table)
        name = opts.name if opts and opts.name else table.partition(".")[2]
        if name in seen:
            raise ConfigError(
                f"publish target '{target}': {seen[name]} and {table} would both be published as '{name}'; "
                f"set options.{table}.name"
            )
        seen[name] = table
        names[table] = name
    return names


def publish_target(
    name: str,
    cfg: PublishTarget,
    lake: Lake,
    *,
    hints: dict[str, TableHints] | None = None,
    tables: list[str] | None = None,
    force: bool = False,
) -> list[PublishedTable]:
    """Publish the selected lake tables (or just ``tables``, globs) into the target ``name``.

    Every table is planned first (so the foreign keys touching a table about to change are dropped before it
    is replaced), then written, then the star schema's foreign keys are (re)created."""
    from lakeforge.serve.destinations import create_destination
    from lakeforge.serve.foreign_keys import drop_touching, ensure, wanted

    selected = select(lake.names(), cfg)
    names = target_names(name, selected, cfg)
    chosen = [t for t in selected if any(fnmatch.fnmatchcase(t, p) for p in tables)] if tables else selected
    hints = hints or {}
    with create_destination(name, cfg) as dest:
        jobs = [_prepare(dest, lake, table, names[table], cfg, hints.get(table), force) for table in chosen]
        keys = wanted(names, cfg, hints) if dest.SUPPORTS_FOREIGN_KEYS else []  # over every selected table
        drop_touching(dest, keys, {j.result.target_table for j in jobs if j.needed})
        for job in jobs:
            if job.needed:
                started = time.monotonic()
                try:
                    _write(dest, job)
                except LakeforgeError as exc:
                    job.result.status, job.result.error = "failed", str(exc)
                job.result.seconds = round(time.monotonic() - started, 3)
        failed = {j.result.target_table for j in jobs if j.result.status == "failed"}
        ensure(dest, keys, set(names.values()) - failed, [j.result for j in jobs])
    return [j.result for j in jobs]


def plan(
    dest: Destination,
    lake: Lake,
    table: str,
    target_table: str,
    cfg: PublishTarget,
    hints: TableHints | None,
    version: int,
    schema: pa.Schema,
) -> TableSpec:
    """The table's target shape: exact column types, key and indexes (checked against the columns)."""
    opts = cfg.options.get(table)
    key = (opts.primary_key if opts and opts.primary_key else None) or (hints.primary_key if hints else [])
    indexes = (opts.indexes if opts else []) + (hints.indexes if hints else [])
    indexes = [i for n, i in enumerate(indexes) if i not in indexes[:n] and i != key]
    json_cols = set(opts.json_columns if opts else [])
    for col in [*key, *(c for i in indexes for c in i), *json_cols]:
        if col not in schema.names:
            raise dest.error(
                f"table {table}: column '{col}' (key, index or json) is not in the table; "
                f"columns: {', '.join(schema.names)}"
            )
    keyed = set(key) | {c for i in indexes for c in i}
    columns = [dest.column(f, key=f.name in keyed, json=f.name in json_cols) for f in schema]
    return dest.adjust(TableSpec(table, target_table, columns, cfg.mode_of(table), version, list(key), indexes))


@dataclass
class _Job:
    result: PublishedTable
    spec: TableSpec | None = None
    dataset: pads.Dataset | None = None
    same_shape: bool = False
    needed: bool = False


def _prepare(
    dest: Destination,
    lake: Lake,
    table: str,
    target_table: str,
    cfg: PublishTarget,
    hints: TableHints | None,
    force: bool,
) -> _Job:
    """Plan the table at its current version and decide whether the target already holds it."""
    result = PublishedTable(dest.name, table, target_table, cfg.mode_of(table), "unchanged")
    try:
        result.version = version = lake.version(table)
        dataset = lake.dataset(table, version)
        spec = plan(dest, lake, table, target_table, cfg, hints, version, dataset.schema)
        result.notes = [f"{c.name}: {c.note}" for c in spec.columns if c.note]
        current = dest.published(spec)
    except LakeforgeError as exc:
        result.status, result.error = "failed", str(exc)
        return _Job(result)
    same_shape = current is not None and current.lake_table == table and current.columns == signature(spec)
    needed = force or not (same_shape and current is not None and current.version == version)
    return _Job(result, spec, dataset, same_shape, needed)


def _write(dest: Destination, job: _Job) -> None:
    spec, result = job.spec, job.result
    assert spec is not None and job.dataset is not None
    batches = _watch(spec.lake_table, job.dataset.to_batches(batch_size=BATCH_ROWS))
    if spec.mode == "upsert":
        if not spec.primary_key:
            raise PublishError(
                dest.name,
                f"table {spec.lake_table}: mode upsert needs a primary key; set "
                f"options.{spec.lake_table}.primary_key or the model's unique_key",
            )
        if not dest.SUPPORTS_UPSERT:
            raise PublishError(dest.name, f"table {spec.lake_table}: type {dest.TYPE} does not support mode upsert")
        # a first publish or a changed shape creates the table: replace does that atomically
        result.rows = dest.upsert(spec, batches) if job.same_shape else dest.replace(spec, batches)
    else:
        result.rows = dest.replace(spec, batches)
    result.status = "published"


def _watch(table: str, batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
    """Pass batches through; the crash test's ``publish:<table>`` kill point fires after the first one."""
    for batch in batches:
        yield batch
        kill_at("publish", table)
