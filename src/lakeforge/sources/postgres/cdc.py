"""PostgreSQL change data capture: a publication and a logical replication slot owned by lakeforge, read with
the streaming replication protocol (``replication.py``) and the built-in ``pgoutput`` plugin.

- The permanent slot (``lakeforge_<source>``) is created once, without a snapshot. A table that needs a
  first load is read in the snapshot exported by a *temporary* slot created afterwards; the temporary slot's
  consistent point is the table's starting position, so the permanent slot (older) sends every later change
  and the loader skips the ones at or before it.
- The slot is acknowledged (``flush_lsn``) only up to what every lake table has committed, never beyond
  (see replication.py for why not psycopg2). When only other tables change for a while, the position moves
  on by itself (a transaction with no changes) so the slot can release WAL.
- "Caught up" (where a run without ``follow`` stops) is the WAL position the server had when streaming
  started: a commit ending at or past it, or a keepalive past it between transactions.
- Log values arrive as text and follow the snapshot's type rules (pgoutput.text_to_arrow); an ALTER TABLE
  in the log replans the table from the relation message that follows it.
"""

from __future__ import annotations

import contextlib
import struct
import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.cdc import CdcReader, Op, Position, Problem, RowBatch, Snapshot, Txn, Undecoded
from lakeforge.sources.postgres.pgcolumns import RawRows
from lakeforge.sources.postgres.pgoutput import (
    Begin,
    Commit,
    Decoder,
    Relation,
    Row,
    Truncate,
    lsn_text,
    lsn_value,
    tuple_at,
)
from lakeforge.sources.postgres.replication import Keepalive, ReplicationStream, conninfo

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef
    from lakeforge.sources.postgres.source import PostgresSource

_SESSION = (
    "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3 "
    "-c lc_monetary=C -c bytea_output=hex"
)
"""How the walsender writes values as text: the forms pgoutput.text_to_arrow reads."""
_SLOT_SQL = """
SELECT active, active_pid, confirmed_flush_lsn::text, restart_lsn::text, wal_status, plugin,
       pg_current_wal_lsn()::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
FROM pg_replication_slots WHERE slot_name = %s AND database = current_database()
"""

_UNKNOWN: Any = object()
_ROWS = frozenset(b"IUD")
_OPS: dict[int, Op] = {73: "insert", 85: "update", 68: "delete"}
"""pgoutput message kinds of a row change: Insert, Update, Delete."""
_I32 = struct.Struct("!i").unpack_from
_STALLED_SECONDS = 10.0
"""A server whose decoding position has not moved for this long has nothing more to send: caught up even if
that position is short of the target (the target is read from pg_current_wal_lsn(), which may point past the
last record's end, e.g. into the padding after a WAL segment switch)."""
_TYPE_SQL = """
SELECT format_type(%s, %s), bt.typname, bt.typtype, et.typname
FROM pg_type t
JOIN pg_type bt ON bt.oid = coalesce(nullif(t.typbasetype, 0), t.oid)
LEFT JOIN pg_type et ON et.oid = bt.typelem AND bt.typcategory = 'A'
WHERE t.oid = %s
"""


class PostgresCdc(CdcReader):
    LOG_NAME: ClassVar[str] = "LSN"
    source: PostgresSource

    def __init__(self, source: PostgresSource, plans: list[TablePlan]) -> None:
        super().__init__(source, plans)
        self.slot = source.config.slot_name or f"lakeforge_{source.name}"
        self.publication = source.config.publication or f"lakeforge_{source.name}"
        self._stream: ReplicationStream | None = None
        self._relations: dict[TableRef, Relation] = {}
        self._refs: dict[tuple[str, str], TableRef | None] = {}
        self._by_oid: dict[int, TableRef | None] = {}

    # -- connections --------------------------------------------------------------------------------
    def _replication_connection(self) -> ReplicationStream:
        with self.source.errors("cannot open a replication connection"):
            return ReplicationStream(
                conninfo(self.source.dsn, options=_SESSION, connect_timeout=self.source.config.connect_timeout)
            )

    # -- readiness ----------------------------------------------------------------------------------
    def check(self) -> list[Problem]:
        q = self.source.query
        problems = []
        user = self.source.config.user or "postgres"
        wal_level = q("SELECT current_setting('wal_level')")[0][0]
        if wal_level != "logical":
            problems.append(
                Problem(
                    f"wal_level is '{wal_level}', CDC needs 'logical'",
                    "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL",
                )
            )
        rep, sup = q("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user")[0]
        if not (rep or sup):
            problems.append(
                Problem(f"role '{user}' has no REPLICATION privilege", f'ALTER ROLE "{user}" WITH REPLICATION;')
            )
        exists = q("SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = %s", (self.publication,))
        if not exists and not q("SELECT has_database_privilege(current_database(), 'CREATE')")[0][0]:
            problems.append(
                Problem(
                    f"role '{user}' cannot create publication '{self.publication}'",
                    f'GRANT CREATE ON DATABASE "{self.source.config.database}" TO "{user}"; or '
                    f"create it as the tables' owner: CREATE PUBLICATION {self.publication} "
                    "FOR TABLE ...;",
                )
            )
        for plan in self.plans.values():
            problems.extend(self._table_problems(plan, bool(exists)))
        slot = q(_SLOT_SQL, (self.slot,))
        if slot and slot[0][0]:
            problems.append(
                Problem(
                    f"replication slot '{self.slot}' is in use by process {slot[0][1]}",
                    f"stop the other consumer, or SELECT pg_terminate_backend({slot[0][1]}); "
                    "or set slot_name to another name",
                )
            )
        return problems

    def _table_problems(self, plan: TablePlan, publication_exists: bool) -> list[Problem]:
        problems = []
        qualified = self.source.table_sql(plan.ref)
        owner, identity = self.source.query(
            "SELECT pg_has_role(c.relowner, 'USAGE'), c.relreplident FROM pg_class c WHERE c.oid = %s::regclass",
            (qualified,),
        )[0]
        if not plan.primary_key and identity != "f":
            problems.append(
                Problem(
                    f"table {plan.ref.qualified} has no primary key, so its UPDATE and DELETE cannot be captured",
                    f"ALTER TABLE {qualified} REPLICA IDENTITY FULL; (and set merge_key for it in lakeforge.yml)",
                )
            )
        if not plan.primary_key and not (plan.options.merge_key or plan.options.primary_key):
            problems.append(
                Problem(
                    f"table {plan.ref.qualified} has no primary key to merge on",
                    f"set tables.{plan.ref.name}.merge_key in lakeforge.yml",
                )
            )
        if not owner and not self._published(plan.ref):
            problems.append(
                Problem(
                    f"role cannot add table {plan.ref.qualified} to publication {self.publication}",
                    f"as its owner: ALTER PUBLICATION {self.publication} ADD TABLE {qualified};"
                    if publication_exists
                    else f"as its owner: CREATE PUBLICATION {self.publication} FOR TABLE {qualified};",
                )
            )
        return problems

    def _published(self, ref: TableRef) -> bool:
        return bool(
            self.source.query(
                "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s",
                (self.publication, ref.schema, ref.name),
            )
        )

    # -- set-up -------------------------------------------------------------------------------------
    def prepare(self) -> Position | None:
        q = self.source.query
        missing = [p.ref for p in self.plans.values() if not self._published(p.ref)]
        names = ", ".join(self.source.table_sql(r) for r in missing)
        if not q("SELECT 1 FROM pg_publication WHERE pubname = %s", (self.publication,)):
            q(f"CREATE PUBLICATION {self.source.quote(self.publication)}" + (f" FOR TABLE {names}" if names else ""))
        elif missing:
            q(f"ALTER PUBLICATION {self.source.quote(self.publication)} ADD TABLE {names}")
        slot = q(_SLOT_SQL, (self.slot,))
        if slot and slot[0][4] == "lost":
            q("SELECT pg_drop_replication_slot(%s)", (self.slot,))
            slot = []
        if not slot:
            q("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", (self.slot,))
            return None
        if slot[0][5] != "pgoutput":
            raise SourceError(
                self.source.name,
                f"slot '{self.slot}' uses plugin {slot[0][5]}, not pgoutput; "
                f"drop it (lakeforge cdc drop-slot {self.source.name}) or set slot_name",
            )
        return Position(lsn_value(slot[0][2]), slot[0][2])

    @contextlib.contextmanager
    def snapshot(self, plans: list[TablePlan]) -> Iterator[Snapshot]:
        stream = self._replication_connection()
        try:
            temp = f"{self.slot}_snap_{int(time.time() * 1000) % 10**9}"
            with self.source.errors("cannot create a temporary slot"):
                _, point, snapshot_name, _ = stream.command(
                    f'CREATE_REPLICATION_SLOT "{temp}" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT'
                )[0]
            if point is None or snapshot_name is None:
                raise SourceError(self.source.name, f"temporary slot {temp} exported no snapshot")

            def read(plan: TablePlan, batch_size: int) -> Iterator[pa.RecordBatch]:
                return self._read_in_snapshot(plan, snapshot_name, batch_size)

            yield Snapshot(Position(lsn_value(point), point), read, {"snapshot": snapshot_name})
        finally:
            stream.conn.finish()

    def _read_in_snapshot(self, plan: TablePlan, snapshot: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        import adbc_driver_postgresql.dbapi as adbc

        from lakeforge.sources.convert import conform

        schema = plan.arrow_schema()
        with self.source.errors("cannot connect (ADBC)"):
            conn = adbc.connect(self.source.dsn, autocommit=True)
        try:
            with self.source.errors("snapshot read failed"):
                cur = conn.cursor()
                for statement in (
                    "SET intervalstyle TO iso_8601",
                    "SET TIME ZONE 'UTC'",
                    "BEGIN ISOLATION LEVEL REPEATABLE READ",
                    f"SET TRANSACTION SNAPSHOT '{snapshot}'",
                ):
                    cur.execute(statement)
                cur.execute(self.source.select_sql(plan))
                reader = cur.fetch_record_batch()
                for batch in reader:
                    yield conform(batch, schema)
                cur.execute("COMMIT")
        finally:
            with contextlib.suppress(Exception):
                conn.close()

    # -- streaming ----------------------------------------------------------------------------------
    def changes(self, start: Position | None, idle_seconds: float) -> Iterator[Txn | None]:
        """Transactions after ``start``. Yields None once caught up with the WAL position the server had when
        streaming started (a commit ending at or past it, or a keepalive past it between transactions), then
        after each ``idle_seconds`` without a transaction. Before that, silence is not "caught up": the server
        is still decoding, and a keepalive it is asked for says how far it got."""
        stream, target = self._start(start)
        decoder = Decoder()
        txn: Txn | None = None
        batches: dict[int, RowBatch] = {}  # the open transaction's row batch per relation oid
        caught_up = False
        moved = start.value if start is not None else 0  # the last position passed on
        advance = max(self.source.config.max_slot_lag_bytes // 16, 1)
        quiet = time.monotonic()
        seen = (0, quiet)  # the server's decoding position and since when it has not moved
        wait = min(idle_seconds, 0.5)
        while True:
            try:  # not ``with self.source.errors(...)`` around each read: a context manager per change costs
                msg = stream.read(wait)
            except Exception:
                with self.source.errors("replication stream failed"):
                    raise
            if type(msg) is bytes:  # the usual case first: a row
                if msg[0] in _ROWS:
                    if txn is not None:
                        self._add_row(msg, decoder.relations, txn, batches)
                    continue
                item = decoder.decode(msg)
            elif msg is None:
                if caught_up and time.monotonic() - quiet >= idle_seconds:
                    quiet = time.monotonic()
                    yield None
                elif not caught_up and txn is None:
                    with self.source.errors("replication stream failed"):
                        stream.feedback(reply=True)
                continue
            if isinstance(msg, Keepalive):
                if txn is not None:
                    continue
                if msg.wal_end - moved >= advance:
                    # only other tables' changes for a while: move the position so the slot can release WAL
                    moved = msg.wal_end
                    yield Txn(Position(msg.wal_end, lsn_text(msg.wal_end)), None)
                if msg.wal_end != seen[0]:
                    seen = (msg.wal_end, time.monotonic())
                stalled = time.monotonic() - seen[1] >= _STALLED_SECONDS
                if not caught_up and (msg.wal_end >= target or stalled):
                    caught_up, quiet = True, time.monotonic()
                    yield None
                continue
            if isinstance(item, Begin):
                txn = Txn(Position(0, ""), item.commit_time)
                batches = {}
            elif isinstance(item, Commit):
                if txn is None:
                    continue
                txn.position = Position(item.end_lsn, lsn_text(item.end_lsn))
                moved, quiet = max(moved, item.end_lsn), time.monotonic()
                yield txn
                txn = None
                if not caught_up and item.end_lsn >= target:
                    caught_up = True
                    yield None
            else:
                self._take(item, txn, batches)

    def _start(self, start: Position | None) -> tuple[ReplicationStream, int]:
        """Open the stream at ``start``; return it and the WAL position that counts as caught up."""
        target = lsn_value(self.source.query("SELECT pg_current_wal_lsn()::text")[0][0])
        stream = self._stream = self._replication_connection()
        options = {"proto_version": "1", "publication_names": self.source.quote(self.publication)}
        with self.source.errors(f"cannot start replication from slot '{self.slot}'"):
            stream.start(self.slot, lsn_text(start.value if start and start.value > 0 else 0), options)
        return stream, target

    def _take(self, item: Relation | Row | Truncate | None, txn: Txn | None, batches: dict[int, RowBatch]) -> None:
        """A row or truncate joins ``txn``; a relation message (sent before a table's first change and again
        after each ALTER TABLE) replans the table with the columns and types it carries."""
        if isinstance(item, Relation):
            ref = self._by_oid[item.oid] = self._ref(item.schema, item.name)
            if ref is not None:
                self._relations[ref] = item
                known = [c.name for c in self.plans[ref].columns]  # a dropped column stays (buffered rows)
                self.replan(ref, known + [c for c in item.columns if c not in known])
        elif isinstance(item, Truncate) and txn is not None:
            for rel in item.relations:
                batch = self._batch(rel, txn, batches)
                if batch is not None:
                    batch.decode()
                    batch.ops.append("truncate")
                    batch.rows.append([None] * len(rel.columns))

    def replan(self, ref: TableRef, columns: list[str]) -> TablePlan:
        """As the base class, but a column the catalog no longer has (dropped since) keeps the type the log's
        relation message gives it, so its values still land in its lake column."""
        from dataclasses import replace

        plan = super().replan(ref, columns)
        rel = self._relations.get(ref)
        if rel is None or not any(c.source_type == "unknown" for c in plan.columns):
            return plan
        types = dict(zip(rel.columns, rel.types, strict=True))
        planned = [
            self._typed(c, *types[c.name]) if c.source_type == "unknown" and c.name in types else c
            for c in plan.columns
        ]
        plan = replace(plan, columns=planned)
        self.plans[ref] = plan
        return plan

    def _typed(self, column: ColumnPlan, oid: int, typmod: int) -> ColumnPlan:
        """``column`` planned from its type oid and typmod (a type dropped since leaves it string)."""
        from dataclasses import replace

        from lakeforge.sources.postgres.types import map_type, render

        found = self.source.query(_TYPE_SQL, (oid, typmod, oid))
        if not found:
            return column
        formatted, typname, typtype, element = found[0]
        mapped = map_type(typname, formatted, typtype, element)
        select = render(mapped.select, self.source.quote(column.name), column.name)
        return replace(column, source_type=formatted, select_expr=select, arrow_type=mapped.arrow, kind=mapped.kind)

    def _ref(self, schema: str, name: str) -> TableRef | None:
        """The configured table ``schema.name`` (None for the publication's other tables); cached, as every
        row asks."""
        from lakeforge.sources.base import TableRef

        key = (schema, name)
        if key not in self._refs:
            ref = TableRef(schema, name)
            self._refs[key] = ref if ref in self.plans else None
        return self._refs[key]

    def _batch(self, rel: Relation, txn: Txn, batches: dict[int, RowBatch]) -> RowBatch | None:
        """The open transaction's batch of ``rel``'s table (a new one after a relation message changed its
        columns); None for a table not configured."""
        batch = batches.get(rel.oid)
        if batch is not None and batch.columns is rel.columns:
            return batch
        ref = self._by_oid.get(rel.oid, _UNKNOWN)
        if ref is _UNKNOWN:  # one lookup by oid per table, not a (schema, name) tuple
            ref = self._by_oid[rel.oid] = self._ref(rel.schema, rel.name)
        if ref is None:
            return None
        batch = batches[rel.oid] = RowBatch(ref, rel.columns, raw=RawRows(rel.columns))
        txn.changes.append(batch)
        return batch

    def _add_row(self, payload: bytes, relations: dict[int, Relation], txn: Txn, batches: dict[int, RowBatch]) -> None:
        """An Insert, Update or Delete message joins its table's batch: its values as they came (no dict, no
        object per row). Message layout: kind, relation oid, then 'N' new tuple (insert), 'K'/'O' old tuple
        (delete; update when the key changed or REPLICA IDENTITY FULL) and 'N' new tuple (update)."""
        oid = _I32(payload, 1)[0]
        rel = relations[oid]
        batch = batches.get(oid)
        if batch is None or batch.columns is not rel.columns:
            batch = self._batch(rel, txn, batches)
            if batch is None:
                return
        kind = payload[0]
        raw = batch.raw
        if raw is not None:
            if kind != 85 or payload[5] not in (75, 79):  # kept as it came (pgcolumns.py)
                batch.ops.append(_OPS[kind])
                raw.payloads.append(payload)  # type: ignore[attr-defined]  # a RawRows
                return
            batch.decode()  # an update with its old key: this batch goes row by row
        if kind == 68:  # 'D'
            old, _, _ = tuple_at(payload, 6)
            batch.ops.append("delete")
            batch.rows.append(old)
            return
        at = 5
        if kind == 85 and payload[5] in (75, 79):  # an update with its old key ('K') or old row ('O')
            old, _, at = tuple_at(payload, 6)
            batch.old_keys[len(batch.ops)] = dict(zip(rel.columns, old, strict=True))
        new, unchanged, _ = tuple_at(payload, at + 1)
        if unchanged is not None:
            batch.unchanged[len(batch.ops)] = frozenset(rel.columns[i] for i in unchanged)
        batch.ops.append("insert" if kind == 73 else "update")
        batch.rows.append(new)

    def ack(self, position: Position) -> None:
        """Report ``position`` as flushed: only ever a position every lake table has committed."""
        if self._stream is not None:
            with self.source.errors("cannot acknowledge the slot"):
                self._stream.feedback(position.value)
        else:
            self.source.query(
                "SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, lsn_text(position.value))
            )

    def close(self) -> None:
        if self._stream is not None:
            with contextlib.suppress(Exception):
                self._stream.close()
            self._stream = None

    # -- operations ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        rows = self.source.query(_SLOT_SQL, (self.slot,))
        if not rows:
            return {"slot": self.slot, "exists": False, "publication": self.publication}
        active, pid, confirmed, restart, wal_status, _, current, lag, retained = rows[0]
        limit = self.source.config.max_slot_lag_bytes
        warning = None
        if retained is not None and retained > limit:
            warning = (
                f"slot {self.slot} holds back {retained} bytes of WAL (limit max_slot_lag_bytes={limit}); "
                f"run lakeforge run, or drop the slot with: lakeforge cdc drop-slot {self.source.name}"
            )
        return {
            "slot": self.slot,
            "exists": True,
            "publication": self.publication,
            "active": active,
            "active_pid": pid,
            "confirmed_flush_lsn": confirmed,
            "restart_lsn": restart,
            "wal_status": wal_status,
            "current_lsn": current,
            "lag_bytes": lag,
            "retained_wal_bytes": retained,
            "warning": warning,
        }

    def drop_slot(self) -> bool:
        rows = self.source.query(_SLOT_SQL, (self.slot,))
        if not rows:
            return False
        if rows[0][0]:
            raise SourceError(
                self.source.name,
                f"slot '{self.slot}' is in use by process {rows[0][1]}; stop "
                f"that consumer first (SELECT pg_terminate_backend({rows[0][1]}))",
            )
        self.source.query("SELECT pg_drop_replication_slot(%s)", (self.slot,))
        return True

    def columns(self, raw: list[Undecoded], plan: TablePlan, names: Sequence[str]) -> list[pa.Array] | None:
        import pyarrow as pa

        from lakeforge.sources.postgres.pgcolumns import text_columns
        from lakeforge.sources.postgres.pgoutput import text_array_to_arrow

        texts = text_columns(raw)  # type: ignore[arg-type]  # this reader's own RawRows
        if texts is None:
            return None
        where = dict(zip(names, texts, strict=True))
        count = len(texts[0]) if texts else 0
        return [
            text_array_to_arrow(_money(where[c.name], c), c.arrow_type, c.name)
            if c.name in where
            else pa.nulls(count, c.arrow_type)
            for c in plan.columns
        ]

    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        from lakeforge.sources.postgres.pgoutput import text_to_arrow

        if "money" in column.source_type:  # the snapshot reads money::numeric; the walsender writes C-locale money
            values = [None if v is None else v.replace("$", "").replace(",", "") for v in values]
        return text_to_arrow(values, column.arrow_type, column.name)


def _money(text: pa.Array, column: ColumnPlan) -> pa.Array:
    """As :meth:`PostgresCdc.to_arrow` for a column of text values: C-locale money without ``$`` and ``,``."""
    import pyarrow.compute as pc

    if "money" not in column.source_type:
        return text
    return pc.replace_substring(pc.replace_substring(text, "$", ""), ",", "")
