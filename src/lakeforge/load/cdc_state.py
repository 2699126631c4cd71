"""The current-state table of a CDC table: each key's last change per micro-batch, MERGEd by key.

A MERGE costs about the same whatever the number of changes it carries (delta-rs rewrites every target file a
key of the batch falls in; measured 0.2 s of CPU per MERGE of 50,000-200,000 changes into a 200,000-row
table, docs/benchmarks.md "Profiles 3"). While a backlog is read (a full micro-batch, ``cdc_commit_changes``
reached) the state MERGE is therefore *deferred*: the micro-batch's change log commits with its position as
before, and its last change per key waits in :class:`PendingState` (Arrow, in log order) for the next
micro-batch, which MERGEs them all at once with its own position. The state table keeps the position of its
last MERGE, the log is acknowledged only up to the smaller of the two tables' positions (load/cdc.py), and a
restart replays the state's changes from its own position: a crash between the two loses and duplicates
nothing (``tests/integration/cdc/test_cdc_crash.py``).

The wait is bounded: a micro-batch due by time (the reader has caught up), the end of the run, a truncate or
a column change MERGEs what waits; so do ``cdc_commit_seconds`` since the first deferral and ``commit_bytes``
of waiting Arrow data.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lakeforge.errors import LakeError
from lakeforge.lake.schema import evolve
from lakeforge.load.batches import META_COLUMNS, stamp_and_cast
from lakeforge.sources.base import TablePlan
from lakeforge.sources.cdc import Position

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.load.context import LoadContext

MERGE_ATTEMPTS = 5
"""Tries of a micro-batch's state MERGE that lost a commit race (a concurrent ``maintain``), 0.2 s, 0.4 s ... apart."""


@dataclass
class PendingState:
    """Last changes per key of deferred micro-batches, in log order, not yet MERGEd into the state table."""

    tables: list[pa.Table] = field(default_factory=list)
    position: Position | None = None
    """The position of the last deferred micro-batch (what a MERGE of these alone commits)."""
    commit_time: dt.datetime | None = None
    since: float = 0.0
    """``time.monotonic()`` of the first deferral."""
    nbytes: int = 0

    def add(self, final: pa.Table, position: Position, commit_time: dt.datetime | None) -> None:
        if not self.tables:
            self.since = time.monotonic()
        self.tables.append(final)
        self.position, self.commit_time = position, commit_time
        self.nbytes += final.nbytes

    def take(self) -> list[pa.Table]:
        tables = self.tables
        self.tables, self.position, self.commit_time, self.nbytes = [], None, None, 0
        return tables

    def room(self, ctx: LoadContext, final: pa.Table) -> bool:
        """Whether ``final`` may wait too: same columns, within the time and size bounds."""
        if not self.tables:
            return True
        return (
            self.tables[0].schema.equals(final.schema)
            and time.monotonic() - self.since < ctx.run.cdc_commit_seconds
            and self.nbytes + final.nbytes < ctx.run.commit_bytes
        )


def last_per_key(table: pa.Table, lake_keys: list[str]) -> pa.Array:
    """Row numbers of each key's last row, ascending: grouped by Arrow where it compares keys as Python does
    (floats not: -0.0 and NaN), else through a dict."""
    import pyarrow as pa

    if not len(table):
        return pa.array([], pa.int64())
    if len(lake_keys) == 1 and pa.types.is_integer(table.schema.field(lake_keys[0]).type):
        key = table[lake_keys[0]]
        if not key.null_count:  # one integer key (the usual case): numpy's sort is ~3x Arrow's group-by here
            import numpy as np

            values = key.to_numpy()[::-1]
            _, first = np.unique(values, return_index=True)  # the first of the reversed: the last of each key
            return pa.array(np.sort(len(values) - 1 - first), pa.int64())
    if not any(pa.types.is_floating(table.schema.field(k).type) for k in lake_keys):
        numbered = table.select(lake_keys).append_column("_lf_row", pa.array(range(len(table)), pa.int64()))
        try:
            grouped = numbered.group_by(lake_keys, use_threads=False).aggregate([("_lf_row", "max")])
            return grouped["_lf_row_max"].combine_chunks().sort()
        except (pa.ArrowNotImplementedError, pa.ArrowTypeError):
            pass  # a key type Arrow cannot group by
    last: dict[tuple[Any, ...], int] = {}
    for i, key in enumerate(zip(*[table[k].to_pylist() for k in lake_keys], strict=True)):
        last[key] = i
    return pa.array(sorted(last.values()), pa.int64())


def apply_state(
    ctx: LoadContext,
    plan: TablePlan,
    name: str,
    table: pa.Table,
    keys: list[str],
    position: Position,
    commit_time: dt.datetime | None,
    pending: PendingState,
    *,
    defer: bool,
) -> bool:
    """Bring the state table to ``position`` with ``table`` (the micro-batch's changes in log order), or with
    ``defer`` leave its last changes per key waiting in ``pending`` when they may; returns whether the state
    table committed ``position``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from lakeforge.load.cdc_apply import OP

    lake_keys = [plan.column(k).lake_name for k in keys]
    truncated = -1
    if len(table):  # (indices_nonzero of a column of no chunks crashes pyarrow 25)
        truncates = pc.indices_nonzero(pc.equal(table[OP].combine_chunks(), "truncate"))
        truncated = truncates[-1].as_py() if len(truncates) else -1
    if truncated >= 0:
        table = table.slice(truncated + 1)
        pending.take()  # what waited is emptied by the truncate, as the lake table is
    final = table.take(last_per_key(table, lake_keys))
    if pending.tables and not pending.tables[0].schema.equals(final.schema):  # the columns changed
        at, when = pending.position, pending.commit_time
        assert at is not None  # noqa: S101 - set with every table added
        _merge(ctx, plan, name, pa.concat_tables(pending.take()), lake_keys, at, when, truncated=False)
    if defer and truncated < 0 and ctx.lake.exists(name) and pending.room(ctx, final):
        pending.add(final, position, commit_time)
        return False
    if pending.tables:
        final = pa.concat_tables([*pending.take(), final])
        final = final.take(last_per_key(final, lake_keys))
    _merge(ctx, plan, name, final, lake_keys, position, commit_time, truncated=truncated >= 0)
    return True


def _merge(
    ctx: LoadContext,
    plan: TablePlan,
    name: str,
    final: pa.Table,
    lake_keys: list[str],
    position: Position,
    commit_time: dt.datetime | None,
    *,
    truncated: bool,
) -> None:
    """MERGE each key's last change (``final``) into the state table with ``position``."""
    import pyarrow.compute as pc

    from lakeforge.load.cdc_apply import (
        COMMIT_TS,
        DELETED,
        OP,
        POSITION,
        POSITION_VALUE,
        SEQ,
        checkpoint_for,
        state_schema,
        widened,
    )

    final = final.append_column(DELETED, pc.equal(final[OP], "delete"))
    evolution = evolve(name, ctx.lake.schema(name), state_schema(plan))
    widened(ctx, name, evolution)
    cp = checkpoint_for(ctx, name, plan, position, commit_time)
    batches = list(stamp_and_cast(final.to_batches(), evolution.schema, ctx.stamp))
    soft = plan.options.soft_delete
    if not ctx.lake.exists(name):
        kept = [b.filter(pc.invert(b.column(DELETED))) for b in batches]
        ctx.lake.write(name, kept, schema=evolution.schema, mode="append", checkpoint=cp)
        return
    if truncated:
        ctx.lake.delete_all(name, set_values={DELETED: True, OP: "truncate"} if soft else None)
    flags = (DELETED, OP, POSITION, POSITION_VALUE, SEQ, COMMIT_TS, *META_COLUMNS) if soft else None
    for attempt in range(MERGE_ATTEMPTS):
        version = ctx.lake.version(name)
        try:
            ctx.lake.merge(
                name,
                batches,
                schema=evolution.schema,
                keys=lake_keys,
                checkpoint=cp,
                delete_column=DELETED,
                keep_deleted=flags,
            )
            break
        except LakeError as exc:  # a concurrent commit (``lakeforge maintain`` compacting this table) won the race:
            if not exc.transient or attempt == MERGE_ATTEMPTS - 1:  # nothing of this MERGE landed, so it is
                raise  # applied again to the newer version, which holds the same rows
            time.sleep(0.2 * 2**attempt)
    if ctx.lake.version(name) == version:  # a MERGE that changes nothing makes no commit: the position
        ctx.lake.commit_checkpoint(name, cp, evolution.schema)  # must still be committed before the log is acked
