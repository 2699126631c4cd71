"""Apply one micro-batch of log changes to one table: append them to its change log, MERGE the last state of
each key into its current-state table. Each commit carries the batch's log position (see load/cdc.py).

Change-log table ``bronze.<name>_changes``: every insert, update, delete and truncate, with ``_lf_op``,
``_lf_position`` (as the database writes it), ``_lf_position_value`` and ``_lf_seq`` (log order) and
``_lf_commit_ts`` (source commit time). Current-state table ``bronze.<name>``: one row per key.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from lakeforge.errors import ConfigError
from lakeforge.lake.checkpoint import Checkpoint
from lakeforge.lake.schema import Evolution, evolve
from lakeforge.load.batches import stamp_and_cast, with_meta
from lakeforge.load.cdc_state import PendingState, apply_state
from lakeforge.load.context import maybe_maintain
from lakeforge.load.killpoint import kill_at
from lakeforge.sources.base import TablePlan
from lakeforge.sources.cdc import CdcReader, Change, Position, RowBatch

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.load.context import LoadContext

_NOTHING: frozenset[str] = frozenset()
OP, POSITION, POSITION_VALUE, SEQ, COMMIT_TS, DELETED = (
    "_lf_op",
    "_lf_position",
    "_lf_position_value",
    "_lf_seq",
    "_lf_commit_ts",
    "_lf_deleted",
)


@dataclass(slots=True)
class Event:
    change: Change
    position: Position
    commit_time: dt.datetime | None
    seq: int


@dataclass(slots=True)
class BatchEvent:
    """A reader's row batch buffered for one table: its rows are log order from ``seq`` on."""

    batch: RowBatch
    position: Position
    commit_time: dt.datetime | None
    seq: int

    def events(self) -> list[Event]:
        """The rows as one :class:`Event` each (the general path)."""
        at, when, seq = self.position, self.commit_time, self.seq
        return [Event(change, at, when, seq + i) for i, change in enumerate(self.batch.changes())]


Buffered = Event | BatchEvent


def changes_name(name: str) -> str:
    return f"{name}_changes"


def merge_columns(plan: TablePlan) -> list[str]:
    keys = plan.merge_key()
    if not keys:
        raise ConfigError(
            f"source '{plan.source}': table {plan.ref.qualified} has no primary key; cdc mode needs "
            f"one: set tables.{plan.ref.name}.merge_key in lakeforge.yml"
        )
    return keys


def cdc_fields() -> list[pa.Field]:
    import pyarrow as pa

    return [
        pa.field(OP, pa.string()),
        pa.field(POSITION, pa.string()),
        pa.field(POSITION_VALUE, pa.int64()),
        pa.field(SEQ, pa.int64()),
        pa.field(COMMIT_TS, pa.timestamp("us", tz="UTC")),
    ]


def state_schema(plan: TablePlan) -> pa.Schema:
    import pyarrow as pa

    return with_meta(pa.schema([*plan.arrow_schema(), *cdc_fields(), pa.field(DELETED, pa.bool_())]))


def checkpoint_for(
    ctx: LoadContext, name: str, plan: TablePlan, position: Position, commit_time: dt.datetime | None
) -> Checkpoint:
    extra = {"commit_time": commit_time.isoformat() if commit_time else None}
    return Checkpoint(
        ctx.stamp.run_id,
        "cdc",
        ctx.lake.next_sequence(name),
        position={**position.to_json(), **extra},
        source=plan.source,
        source_table=plan.ref.qualified,
    )


def apply_batch(
    ctx: LoadContext,
    reader: CdcReader,
    plan: TablePlan,
    name: str,
    events: list[Buffered],
    log_after: int,
    state_after: int,
    position: Position,
    commit_time: dt.datetime | None,
    pending: PendingState,
    *,
    defer: bool = False,
) -> tuple[int, bool]:
    """Commit ``events`` (log order) to the change log (those past ``log_after``) and to the state table
    (those past ``state_after``; with ``defer``, possibly only to ``pending``, see load/cdc_state.py); returns
    the number of changes applied to the state and whether the state table committed ``position``."""
    import pyarrow.compute as pc

    events = [e for e in events if e.position.value > state_after]
    keys = merge_columns(plan)
    table = _batches_table(reader, plan, events)
    if table is None:
        table = _events_table(ctx, reader, plan, name, _expanded(events), keys)
    log_name = changes_name(name)
    if position.value > log_after:  # (not so when only deferred state changes are to be MERGEd)
        log_rows = table.filter(pc.greater(table[POSITION_VALUE], log_after)) if len(table) else table
        log_schema = widened(ctx, log_name, evolve(log_name, ctx.lake.schema(log_name), table.schema))
        ctx.lake.write(
            log_name,
            stamp_and_cast(log_rows.to_batches(), log_schema, ctx.stamp),
            schema=log_schema,
            mode="append",
            checkpoint=checkpoint_for(ctx, log_name, plan, position, commit_time),
        )
        kill_at("cdc_log_committed", name)
    merged = apply_state(ctx, plan, name, table, keys, position, commit_time, pending, defer=defer)
    for committed in (log_name, name) if merged else (log_name,):
        maybe_maintain(ctx, committed)
    return sum(len(e.batch.ops) if type(e) is BatchEvent else 1 for e in events), merged


def _expanded(events: list[Buffered]) -> list[Event]:
    out: list[Event] = []
    for e in events:
        if type(e) is BatchEvent:
            out += e.events()
        else:
            out.append(e)  # type: ignore[arg-type]  # an Event
    return out


def _batches_table(reader: CdcReader, plan: TablePlan, events: list[Buffered]) -> pa.Table | None:
    """The events as one table without a Python object per row, when every event is a plain row batch of the
    same columns (the usual case): the rows are transposed into columns in one step and each column converted
    once. None for the general path (a change one by one, a key change, unchanged values, other columns)."""
    import pyarrow as pa

    if not events or any(type(e) is not BatchEvent or not e.batch.plain for e in events):
        return None
    batches: list[RowBatch] = [e.batch for e in events]  # type: ignore[union-attr]
    names = batches[0].columns
    if any(b.columns is not names and b.columns != names for b in batches):
        return None
    arrays = _raw_columns(reader, plan, batches)
    if arrays is None:
        for b in batches:
            b.decode()
        if not all(b.plain for b in batches):  # values the log did not send: the general path
            return None
    rows: list[Any] = []
    ops: list[str] = []
    which: list[int] = []
    seqs: list[int] = []
    for i, (e, b) in enumerate(zip(events, batches, strict=True)):
        rows += b.rows
        ops += b.ops
        which += [i] * len(b.ops)
        seqs += range(e.seq, e.seq + len(b.ops))
    if arrays is None:
        where = {name: i for i, name in enumerate(names)}
        nothing = [None] * len(rows)
        arrays = [
            reader.to_arrow(list(map(itemgetter(where[c.name]), rows)) if c.name in where else nothing, c)
            for c in plan.columns
        ]
    index = pa.array(which, pa.int64())
    arrays += [
        pa.array(ops, pa.string()),
        pa.array([e.position.text for e in events], pa.string()).take(index),
        pa.array([e.position.value for e in events], pa.int64()).take(index),
        pa.array(seqs, pa.int64()),
        pa.array([e.commit_time for e in events], pa.timestamp("us", tz="UTC")).take(index),
    ]
    return pa.Table.from_arrays(arrays, schema=pa.schema([*plan.arrow_schema(), *cdc_fields()]))


def _raw_columns(reader: CdcReader, plan: TablePlan, batches: list[RowBatch]) -> list[pa.Array] | None:
    """The columns of batches that are all undecoded, decoded by the reader in one step (None otherwise)."""
    raw = [b.raw for b in batches]
    if any(r is None for r in raw):
        return None
    return reader.columns(raw, plan, batches[0].columns)  # type: ignore[arg-type]  # no None in raw


def _events_table(
    ctx: LoadContext, reader: CdcReader, plan: TablePlan, name: str, events: list[Event], keys: list[str]
) -> pa.Table:
    """One row per event in log order; a key-changing UPDATE becomes a delete of the old key then an insert;
    unchanged (TOAST) values are filled from the row's previous image (in this batch, else the lake)."""
    import pyarrow as pa

    rows: list[tuple[str, dict[str, Any], Event, frozenset[str], tuple[Any, ...]]] = []
    add = rows.append
    for event in events:
        ch = event.change
        op = ch.op
        if op == "truncate":
            add(("truncate", {}, event, _NOTHING, ()))
            continue
        row = ch.row or {}
        if op == "update" and ch.old_key is not None:
            key = tuple([row.get(k) for k in keys])
            old = tuple([ch.old_key.get(k) for k in keys])
            if old != key and all(k in ch.old_key for k in keys):
                add(("delete", dict(ch.old_key), event, _NOTHING, old))
                add(("insert", row, event, ch.unchanged, old))
                continue
        # the raw key is only read back to fill unchanged values (and for the halves of a key change, above)
        add((op, row, event, ch.unchanged, tuple([row.get(k) for k in keys]) if ch.unchanged else ()))
    schema = pa.schema([*plan.arrow_schema(), *cdc_fields()])
    arrays = [reader.to_arrow([r[1].get(c.name) for r in rows], c) for c in plan.columns]
    arrays += [pa.array([r[0] for r in rows], pa.string()), *_txn_columns([r[2] for r in rows])]
    table = pa.Table.from_arrays(arrays, schema=schema)
    if any(r[3] for r in rows):
        table = _fill_unchanged(ctx, plan, name, table, rows, keys)
    return table


def _txn_columns(events: list[Event]) -> list[pa.Array]:
    """Position text, position value, seq and commit time of each row. A transaction's events share one
    position and commit time: converted once per transaction and repeated with ``take`` (turning a zoned
    datetime into Arrow costs more than a microsecond a value)."""
    import pyarrow as pa

    firsts: list[Event] = []
    which: list[int] = []
    last: Event | None = None
    for event in events:
        if last is None or event.position is not last.position or event.commit_time is not last.commit_time:
            firsts.append(event)
            last = event
        which.append(len(firsts) - 1)
    index = pa.array(which, pa.int64())
    return [
        pa.array([e.position.text for e in firsts], pa.string()).take(index),
        pa.array([e.position.value for e in firsts], pa.int64()).take(index),
        pa.array([e.seq for e in events], pa.int64()),
        pa.array([e.commit_time for e in firsts], pa.timestamp("us", tz="UTC")).take(index),
    ]


def _fill_unchanged(
    ctx: LoadContext, plan: TablePlan, name: str, table: pa.Table, rows: list[Any], keys: list[str]
) -> pa.Table:
    lake_keys = [plan.column(k).lake_name for k in keys]
    columns = {c.lake_name: table[c.lake_name].to_pylist() for c in plan.columns}
    key_values = list(zip(*[columns[k] for k in lake_keys], strict=True))
    latest: dict[tuple[Any, ...], int] = {}
    lake_rows = _lake_rows(ctx, name, lake_keys, key_values)
    for i, (op, _, _, unchanged, lookup) in enumerate(rows):
        if op == "truncate":
            latest.clear()
            lake_rows.clear()
            continue
        if unchanged:
            lookup_key = key_values[i] if op != "insert" or lookup == () else _typed_key(lookup, key_values, rows)
            previous = latest.get(lookup_key)
            for col in unchanged:
                lake_col = plan.column(col).lake_name
                if previous is not None:
                    columns[lake_col][i] = columns[lake_col][previous]
                elif lookup_key in lake_rows:
                    columns[lake_col][i] = lake_rows[lookup_key].get(lake_col)
        if op != "delete":  # a delete may carry only the key: keep pointing at the last full image
            latest[key_values[i]] = i
    import pyarrow as pa

    arrays = [pa.array(columns[f.name], f.type) if f.name in columns else table[f.name] for f in table.schema]
    return pa.Table.from_arrays(arrays, schema=table.schema)


def _typed_key(raw: tuple[Any, ...], key_values: list[tuple[Any, ...]], rows: list[Any]) -> tuple[Any, ...]:
    """The typed key of the row whose raw key is ``raw`` (the delete half of a key change)."""
    for i, r in enumerate(rows):
        if r[0] == "delete" and r[4] == raw:
            return key_values[i]
    return ()


def _lake_rows(
    ctx: LoadContext, name: str, lake_keys: list[str], wanted: list[tuple[Any, ...]]
) -> dict[tuple[Any, ...], dict[str, Any]]:
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    if not wanted or not ctx.lake.exists(name):
        return {}
    dataset = ctx.lake.dataset(name)
    first = sorted({w[0] for w in wanted if w[0] is not None}, key=str)
    found = dataset.to_table(filter=pc.field(lake_keys[0]).isin(first) if first else ds.field(lake_keys[0]).is_null())
    result = {}
    for row in found.to_pylist():
        result[tuple(row[k] for k in lake_keys)] = row
    return result


def widened(ctx: LoadContext, name: str, evolution: Evolution) -> pa.Schema:
    """The schema to write with; a widened column type (int -> bigint in the log), or a new source column that
    must stand before the metadata columns, first rewrites the table, keeping its checkpoint (as incremental
    loads do)."""
    from lakeforge.load.incremental import rewrite_widened

    if evolution.rewrite and ctx.lake.exists(name):
        rewrite_widened(ctx, name, evolution.schema, ctx.lake.checkpoint(name))
    return evolution.schema
