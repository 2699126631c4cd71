"""Full mode: the new snapshot replaces the table in one atomic commit.

Readers see the old snapshot until the commit lands, then the new one; never a half-loaded table. The
replaced versions stay readable by time travel until vacuumed.
"""

from __future__ import annotations

from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.schema import evolve
from lakeforge.load.batches import counted, stamp_and_cast, with_meta
from lakeforge.load.context import LoadContext
from lakeforge.sources.base import Source, TablePlan


def load_full(ctx: LoadContext, source: Source, plan: TablePlan, name: str) -> Checkpoint:
    evolution = evolve(name, ctx.lake.schema(name), with_meta(plan.arrow_schema()))
    checkpoint = Checkpoint(
        run_id=ctx.stamp.run_id,
        mode="full",
        sequence=ctx.lake.next_sequence(name),
        source=source.name,
        source_table=plan.ref.qualified,
    )
    batches = source.read(plan, batch_size=ctx.run.batch_size, partitions=_partitions(ctx, plan))
    ctx.lake.write(
        name,
        counted(stamp_and_cast(batches, evolution.schema, ctx.stamp), ctx.on_rows),
        schema=evolution.schema,
        mode="overwrite",
        checkpoint=checkpoint,
        schema_mode="overwrite",
    )
    return checkpoint


def _partitions(ctx: LoadContext, plan: TablePlan) -> int:
    return ctx.run.partitions if plan.estimated_rows >= ctx.run.parallel_min_rows else 1
