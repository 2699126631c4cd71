"""Full mode: the new snapshot replaces the table in one atomic commit.

Readers see the old snapshot until the commit lands, then the new one; never a half-loaded table. The
replaced versions stay readable by time travel until vacuumed. A crash before the commit leaves the old
snapshot (and at most unreferenced Parquet files, which readers ignore and ``vacuum`` removes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from lakeforge.errors import SchemaDriftError
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.schema import Evolution, evolve
from lakeforge.load import killpoint
from lakeforge.load.batches import Constants, counted, rechunk, stamp_and_cast, with_meta
from lakeforge.load.context import LoadContext
from lakeforge.sources.base import TablePlan, row_bytes
from lakeforge.sources.sql import SqlSource

if TYPE_CHECKING:
    import pyarrow as pa


def load_full(ctx: LoadContext, source: SqlSource, plan: TablePlan, name: str) -> Checkpoint:
    evolution = plan_evolution(name, ctx.lake.schema(name), plan)
    checkpoint = Checkpoint(
        run_id=ctx.stamp.run_id,
        mode="full",
        sequence=ctx.lake.next_sequence(name),
        source=source.name,
        source_table=plan.ref.qualified,
    )
    batches = source.read(
        plan, batch_size=fetch_rows(ctx.run.batch_size, plan.arrow_schema()), partitions=_partitions(ctx, plan)
    )
    rows = stream(ctx, name, batches, evolution.schema, for_staged=ctx.lake.STAGED_FULL_LOAD)
    if ctx.lake.STAGED_FULL_LOAD:  # several encoders, one commit (load/staged.py)
        from lakeforge.load.staged import write_staged

        files = write_staged(ctx.lake, name, rows, schema=evolution.schema)
        ctx.lake.commit_files(name, files, schema=evolution.schema, mode="overwrite", checkpoint=checkpoint)
    else:
        ctx.lake.write(
            name, rows, schema=evolution.schema, mode="overwrite", checkpoint=checkpoint, schema_mode="overwrite"
        )
    return checkpoint


def stream(
    ctx: LoadContext, name: str, batches: Iterable[pa.RecordBatch], schema: pa.Schema, *, for_staged: bool = False
) -> Iterator[pa.RecordBatch]:
    """Source batches as the lake table's rows: sliced to ``run.batch_size``, stamped, cast, counted.
    ``for_staged``: the rows go to lakeforge's own encoders (load/staged.py), which take the load's text
    constants as one-value dictionaries (``Constants``); ``Lake.write`` gets plain columns."""
    constants = Constants(ctx.stamp, dictionary=for_staged)
    stamped = stamp_and_cast(rechunk(batches, ctx.run.batch_size), schema, ctx.stamp, constants)
    return killpoint.watch(name, counted(stamped, ctx.on_rows), ctx.lake.uri(name))


def plan_evolution(name: str, lake_schema: pa.Schema | None, plan: TablePlan) -> Evolution:
    """How the lake table's schema follows the source; an incompatible change names the source type too,
    unless the table has ``schema_change: replace``."""
    try:
        return evolve(name, lake_schema, with_meta(plan.arrow_schema()))
    except SchemaDriftError as exc:
        if plan.options.schema_change == "replace":
            return Evolution(with_meta(plan.arrow_schema()), replaced=True)
        source_type = next((c.source_type for c in plan.columns if c.lake_name == exc.column), "?")
        raise SchemaDriftError(name, exc.column, exc.old, f"{exc.new} (source type {source_type})") from None


FETCH_BYTES = 12 * 2**20
"""About this many bytes of Arrow data per fetched batch. connectorx (MariaDB) fetches ahead of its consumer
into an unbounded buffer whenever the Delta writer is the slower side, so the bytes of a batch multiply: at
100,000 rows of a 31-column table (~520 bytes a row) MariaDB wide 10M peaked at 1.2 GB RSS; 12 MiB (24,000 of
those rows) cost no CPU (docs/benchmarks.md, Profiles). Narrow rows (~100 bytes) keep ``run.batch_size``."""


def fetch_rows(batch_size: int, schema: pa.Schema) -> int:
    """Rows per fetched batch: ``batch_size``, fewer when a row of ``schema`` is wide (>= 1,000)."""
    return min(batch_size, max(1_000, FETCH_BYTES // row_bytes(schema)))


def _partitions(ctx: LoadContext, plan: TablePlan) -> int:
    return ctx.run.partitions if plan.estimated_rows >= ctx.run.parallel_min_rows else 1
