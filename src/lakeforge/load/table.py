"""Load one source table into its bronze table: pick the strategy, retry what is transient, report."""

from __future__ import annotations

import time
from dataclasses import dataclass

from lakeforge.config.models import TableConfig
from lakeforge.errors import LakeforgeError
from lakeforge.lake.naming import bronze_table_name
from lakeforge.load import killpoint
from lakeforge.load.context import LoadContext, maybe_maintain
from lakeforge.sources.base import Source, TableRef


@dataclass
class TableResult:
    source: str
    source_table: str
    table: str
    """Lake table, ``bronze.<name>``."""
    mode: str
    status: str
    """success, unchanged (incremental with nothing new), failed."""
    rows: int = 0
    seconds: float = 0.0
    delta_version: int | None = None
    error: str | None = None
    attempts: int = 1


def lake_name(source: Source, ref: TableRef, options: TableConfig) -> str:
    if options.name:
        return f"bronze.{options.name}"
    return "bronze." + bronze_table_name(source.name, ref.schema, ref.name, source.DEFAULT_SCHEMA or ref.schema)


def load_table(ctx: LoadContext, source: Source, ref: TableRef, options: TableConfig, mode: str) -> TableResult:
    name = lake_name(source, ref, options)
    started = time.perf_counter()
    rows = 0

    def on_rows(n: int) -> None:
        nonlocal rows
        rows += n
        ctx.on_rows(n)

    attempt = 0
    while True:
        attempt += 1
        rows = 0
        try:
            inner = LoadContext(ctx.lake, ctx.run, ctx.stamp, on_rows, ctx.maintenance)
            committed = _load_once(inner, source, ref, options, mode, name)
            if committed:
                killpoint.kill_at("committed", name)
            status = "success" if committed else "unchanged"
            version = ctx.lake.version(name) if committed else None
            result = TableResult(source.name, ref.qualified, name, mode, status, rows,
                                 time.perf_counter() - started, version, attempts=attempt)
            break
        except LakeforgeError as exc:
            if exc.transient and attempt <= ctx.run.retries:
                time.sleep(ctx.run.retry_backoff * 2 ** (attempt - 1))
                continue
            return TableResult(source.name, ref.qualified, name, mode, "failed", rows,
                               time.perf_counter() - started, error=str(exc), attempts=attempt)
    if result.status == "success":
        try:
            maybe_maintain(ctx, name)
        except LakeforgeError as exc:  # the load committed: it stays a success, the failed upkeep is reported
            result.error = f"automatic maintenance failed: {exc}"
    return result


def _load_once(
    ctx: LoadContext, source: Source, ref: TableRef, options: TableConfig, mode: str, name: str
) -> bool:
    from lakeforge.load.full import load_full
    from lakeforge.load.incremental import load_incremental

    plan = source.describe(ref, options)
    if mode == "full":
        load_full(ctx, source, plan, name)
        return True
    if mode == "incremental":
        return load_incremental(ctx, source, plan, name) is not None
    raise LakeforgeError(f"table {name}: mode '{mode}' is loaded per source (Project.run), not per table")
