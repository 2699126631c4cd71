"""Load one source table into its bronze table: pick the strategy, retry what is transient, report."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lakeforge.errors import ConfigError, LakeforgeError
from lakeforge.interrupt import RunInterrupted
from lakeforge.load import killpoint
from lakeforge.load.context import LoadContext, maybe_maintain
from lakeforge.load.plan import PlannedTable
from lakeforge.sources.base import Source

if TYPE_CHECKING:
    from lakeforge.lake.base import Lake


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
    transient: bool = False
    """The failure may pass by itself (a connection reset): a scheduler may retry the run."""
    reason: str | None = None
    """Why the load did more than its mode says (a full reload after the cursor changed, a rewrite after
    schema drift), or what an interruption left; shown by ``lakeforge run`` and kept in the run history."""


def load_table(ctx: LoadContext, source: Source, item: PlannedTable) -> TableResult:
    name, ref, mode = item.table, item.ref, item.mode
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
        attempt_ctx = dataclasses.replace(ctx, on_rows=on_rows, notes=[])
        try:
            committed = _load_once(attempt_ctx, source, item)
            if committed:
                killpoint.kill_at("committed", name)
            status = "success" if committed else "unchanged"
            version = ctx.lake.version(name) if committed else None
            result = TableResult(
                source.name,
                ref.qualified,
                name,
                mode,
                status,
                rows,
                time.perf_counter() - started,
                version,
                attempts=attempt,
                reason=attempt_ctx.reason(),
            )
            break
        except RunInterrupted as exc:
            return TableResult(
                source.name,
                ref.qualified,
                name,
                mode,
                "interrupted",
                rows,
                time.perf_counter() - started,
                error=str(exc),
                attempts=attempt,
            )
        except LakeforgeError as exc:
            if exc.transient and attempt <= ctx.run.retries:
                time.sleep(ctx.run.retry_backoff * 2 ** (attempt - 1))
                continue
            return TableResult(
                source.name,
                ref.qualified,
                name,
                mode,
                "failed",
                rows,
                time.perf_counter() - started,
                error=str(exc),
                attempts=attempt,
                transient=exc.transient,
                reason=attempt_ctx.reason(),
            )
    if result.status == "success":
        try:
            maybe_maintain(ctx, name)
        except LakeforgeError as exc:  # the load committed: it stays a success, the failed upkeep is reported
            result.error = f"automatic maintenance failed: {exc}"
    return result


def record_interrupted(lake: Lake, item: PlannedTable, run_id: str, why: str) -> TableResult | None:
    """After an interruption (Ctrl-C) during ``item``'s load: its result if this run's commit landed, so the
    run history tells the truth about the lake; None if the table is as the previous run left it."""
    checkpoint = lake.checkpoint(item.table)
    if checkpoint is None or checkpoint.run_id != run_id:
        return None
    return TableResult(
        item.source,
        item.ref.qualified,
        item.table,
        item.mode,
        "success",
        delta_version=lake.version(item.table),
        reason=f"committed, then the run was {why}",
    )


def _load_once(ctx: LoadContext, source: Source, item: PlannedTable) -> bool:
    # each loader is imported by the branch that uses it: a database table's run does not import the record
    # sources' machinery (docs/benchmarks.md, "Fixed cost of a run", fourth pass)
    from lakeforge.sources.sql import SqlSource

    plan = source.describe(item.ref, item.options)
    if not isinstance(source, SqlSource):
        from lakeforge.load.records import load_records
        from lakeforge.sources.records import RecordSource

        if isinstance(source, RecordSource):
            return load_records(ctx, source, plan, item.table, item.mode)
        raise LakeforgeError(f"table {item.table}: source type {source.type_name} is neither a SQL nor a record source")
    if item.mode == "append":
        raise ConfigError(
            f"table {item.table}: mode append is for record sources (files, streams, python); "
            "a database table is loaded with full, incremental or cdc"
        )
    if item.mode == "full":
        from lakeforge.load.full import load_full

        if ctx.extractor is not None and ctx.extractor.refuses(ctx.lake, source, plan, ctx.run) is None:
            ctx.extractor.load_full(ctx, source, plan, item.table)
        else:
            load_full(ctx, source, plan, item.table)
        return True
    if item.mode == "incremental":
        from lakeforge.load.incremental import load_incremental

        return load_incremental(ctx, source, plan, item.table) is not None
    raise LakeforgeError(f"table {item.table}: mode '{item.mode}' is loaded per source (Project.run), not per table")
