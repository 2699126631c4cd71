"""PostgreSQL change data capture: a publication and a logical replication slot owned by lakeforge, read with
psycopg2's replication connection and the built-in ``pgoutput`` plugin.

- The permanent slot (``lakeforge_<source>``) is created once, without a snapshot. A table that needs a
  first load is read in the snapshot exported by a *temporary* slot created afterwards; the temporary slot's
  consistent point is the table's starting position, so the permanent slot (older) sends every later change
  and the loader skips the ones at or before it.
- The slot is acknowledged (``flush_lsn``) only up to what every lake table has committed.
"""

from __future__ import annotations

import contextlib
import select
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar

from lakeforge.errors import SourceError
from lakeforge.sources.cdc import CdcReader, Change, Position, Problem, Snapshot, Txn
from lakeforge.sources.postgres.pgoutput import Begin, Commit, Decoder, Row, Truncate, lsn_text, lsn_value

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import ColumnPlan, TablePlan, TableRef
    from lakeforge.sources.postgres.source import PostgresSource

_SESSION = "-c DateStyle=ISO -c TimeZone=UTC -c IntervalStyle=iso_8601 -c extra_float_digits=3"
_SLOT_SQL = """
SELECT active, active_pid, confirmed_flush_lsn::text, restart_lsn::text, wal_status, plugin,
       pg_current_wal_lsn()::text,
       pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::bigint,
       pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint
FROM pg_replication_slots WHERE slot_name = %s AND database = current_database()
"""


class PostgresCdc(CdcReader):
    LOG_NAME: ClassVar[str] = "LSN"
    source: PostgresSource

    def __init__(self, source: PostgresSource, plans: list[TablePlan]) -> None:
        super().__init__(source, plans)
        self.slot = source.config.slot_name or f"lakeforge_{source.name}"
        self.publication = source.config.publication or f"lakeforge_{source.name}"
        self._conn: Any = None
        self._cur: Any = None
        self._pending_ack: int | None = None

    # -- connections --------------------------------------------------------------------------------
    def _replication_connection(self) -> Any:
        try:
            import psycopg2
            import psycopg2.extras
        except ImportError:
            from lakeforge.errors import MissingExtraError

            raise MissingExtraError("psycopg2", "cdc") from None
        cfg = self.source.config
        params = {"host": cfg.host, "port": cfg.port or 5432, "user": cfg.user or "postgres",
                  "dbname": cfg.database, "connect_timeout": cfg.connect_timeout, "options": _SESSION}
        if cfg.password is not None:
            params["password"] = cfg.password.get_secret_value()
        with self.source.errors("cannot open a replication connection"):
            return psycopg2.connect(connection_factory=psycopg2.extras.LogicalReplicationConnection, **params)

    # -- readiness ----------------------------------------------------------------------------------
    def check(self) -> list[Problem]:
        q = self.source.query
        problems = []
        user = self.source.config.user or "postgres"
        wal_level = q("SELECT current_setting('wal_level')")[0][0]
        if wal_level != "logical":
            problems.append(Problem(f"wal_level is '{wal_level}', CDC needs 'logical'",
                                    "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL"))
        rep, sup = q("SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = current_user")[0]
        if not (rep or sup):
            problems.append(Problem(f"role '{user}' has no REPLICATION privilege",
                                    f'ALTER ROLE "{user}" WITH REPLICATION;'))
        exists = q("SELECT pubowner::regrole::text FROM pg_publication WHERE pubname = %s", (self.publication,))
        if not exists and not q("SELECT has_database_privilege(current_database(), 'CREATE')")[0][0]:
            problems.append(Problem(f"role '{user}' cannot create publication '{self.publication}'",
                                    f'GRANT CREATE ON DATABASE "{self.source.config.database}" TO "{user}"; or '
                                    f"create it as the tables' owner: CREATE PUBLICATION {self.publication} "
                                    "FOR TABLE ...;"))
        for plan in self.plans.values():
            problems.extend(self._table_problems(plan, bool(exists)))
        slot = q(_SLOT_SQL, (self.slot,))
        if slot and slot[0][0]:
            problems.append(Problem(f"replication slot '{self.slot}' is in use by process {slot[0][1]}",
                                    f"stop the other consumer, or SELECT pg_terminate_backend({slot[0][1]}); "
                                    "or set slot_name to another name"))
        return problems

    def _table_problems(self, plan: TablePlan, publication_exists: bool) -> list[Problem]:
        problems = []
        qualified = self.source.table_sql(plan.ref)
        owner, identity = self.source.query(
            "SELECT pg_has_role(c.relowner, 'USAGE'), c.relreplident FROM pg_class c "
            "WHERE c.oid = %s::regclass", (qualified,))[0]
        if not plan.primary_key and identity != "f":
            problems.append(Problem(
                f"table {plan.ref.qualified} has no primary key, so its UPDATE and DELETE cannot be captured",
                f"ALTER TABLE {qualified} REPLICA IDENTITY FULL; (and set merge_key for it in lakeforge.yml)"))
        if not plan.primary_key and not (plan.options.merge_key or plan.options.primary_key):
            problems.append(Problem(f"table {plan.ref.qualified} has no primary key to merge on",
                                    f"set tables.{plan.ref.name}.merge_key in lakeforge.yml"))
        if not owner and not self._published(plan.ref):
            problems.append(Problem(f"role cannot add table {plan.ref.qualified} to publication {self.publication}",
                                    f"as its owner: ALTER PUBLICATION {self.publication} ADD TABLE {qualified};"
                                    if publication_exists else
                                    f"as its owner: CREATE PUBLICATION {self.publication} FOR TABLE {qualified};"))
        return problems

    def _published(self, ref: TableRef) -> bool:
        return bool(self.source.query(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = %s AND schemaname = %s AND tablename = %s",
            (self.publication, ref.schema, ref.name)))

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
            raise SourceError(self.source.name, f"slot '{self.slot}' uses plugin {slot[0][5]}, not pgoutput; "
                              f"drop it (lakeforge cdc drop-slot {self.source.name}) or set slot_name")
        return Position(lsn_value(slot[0][2]), slot[0][2])

    @contextlib.contextmanager
    def snapshot(self, plans: list[TablePlan]) -> Iterator[Snapshot]:
        conn = self._replication_connection()
        try:
            cur = conn.cursor()
            temp = f"{self.slot}_snap_{int(time.time() * 1000) % 10**9}"
            with self.source.errors("cannot create a temporary slot"):
                cur.execute(f'CREATE_REPLICATION_SLOT "{temp}" TEMPORARY LOGICAL pgoutput EXPORT_SNAPSHOT')
                _, point, snapshot_name, _ = cur.fetchone()

            def read(plan: TablePlan, batch_size: int) -> Iterator[pa.RecordBatch]:
                return self._read_in_snapshot(plan, snapshot_name, batch_size)

            yield Snapshot(Position(lsn_value(point), point), read)
        finally:
            conn.close()

    def _read_in_snapshot(self, plan: TablePlan, snapshot: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        import adbc_driver_postgresql.dbapi as adbc

        from lakeforge.sources.convert import conform

        schema = plan.arrow_schema()
        with self.source.errors("cannot connect (ADBC)"):
            conn = adbc.connect(self.source.dsn, autocommit=True)
        try:
            with self.source.errors("snapshot read failed"):
                cur = conn.cursor()
                for statement in ("SET intervalstyle TO iso_8601", "SET TIME ZONE 'UTC'",
                                  "BEGIN ISOLATION LEVEL REPEATABLE READ", f"SET TRANSACTION SNAPSHOT '{snapshot}'"):
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
        self._conn = self._replication_connection()
        self._cur = self._conn.cursor()
        options = {"proto_version": "1", "publication_names": self.publication}
        with self.source.errors(f"cannot start replication from slot '{self.slot}'"):
            self._cur.start_replication(slot_name=self.slot, decode=False, options=options, status_interval=5)
        decoder = Decoder()
        txn: Txn | None = None
        last = time.monotonic()
        while True:
            with self.source.errors("replication stream failed"):
                msg = self._cur.read_message()
            if msg is None:
                if self._pending_ack is not None:
                    self._send_ack()
                if time.monotonic() - last >= idle_seconds:
                    last = time.monotonic()
                    yield None
                select.select([self._conn], [], [], min(idle_seconds, 0.2))
                continue
            item = decoder.decode(msg.payload)
            if isinstance(item, Begin):
                txn = Txn(Position(0, ""), item.commit_time)
            elif isinstance(item, Commit) and txn is not None:
                txn.position = Position(item.end_lsn, lsn_text(item.end_lsn))
                last = time.monotonic()
                yield txn
                txn = None
            elif isinstance(item, Row) and txn is not None:
                change = self._change(item)
                if change is not None:
                    txn.changes.append(change)
            elif isinstance(item, Truncate) and txn is not None:
                for rel in item.relations:
                    ref = self._ref(rel.schema, rel.name)
                    if ref is not None:
                        txn.changes.append(Change(ref, "truncate"))

    def _ref(self, schema: str, name: str) -> TableRef | None:
        from lakeforge.sources.base import TableRef

        ref = TableRef(schema, name)
        return ref if ref in self.plans else None

    def _change(self, row: Row) -> Change | None:
        ref = self._ref(row.relation.schema, row.relation.name)
        if ref is None:
            return None
        if row.kind == "insert":
            return Change(ref, "insert", row.new, unchanged=row.unchanged)
        if row.kind == "update":
            return Change(ref, "update", row.new, old_key=row.old, unchanged=row.unchanged)
        return Change(ref, "delete", row.old)

    def ack(self, position: Position) -> None:
        self._pending_ack = position.value
        if self._cur is not None:
            self._send_ack()
        else:
            self.source.query("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", (self.slot, lsn_text(position.value)))

    def _send_ack(self) -> None:
        with self.source.errors("cannot acknowledge the slot"):
            self._cur.send_feedback(flush_lsn=self._pending_ack, reply=True)
        self._pending_ack = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                if self._pending_ack is not None:
                    self._send_ack()
                time.sleep(0.05)
                self._conn.close()
            self._conn = self._cur = None

    # -- operations ---------------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        rows = self.source.query(_SLOT_SQL, (self.slot,))
        if not rows:
            return {"slot": self.slot, "exists": False, "publication": self.publication}
        active, pid, confirmed, restart, wal_status, _, current, lag, retained = rows[0]
        limit = self.source.config.max_slot_lag_bytes
        warning = None
        if retained is not None and retained > limit:
            warning = (f"slot {self.slot} holds back {retained} bytes of WAL (limit max_slot_lag_bytes={limit}); "
                       f"run lakeforge run, or drop the slot with: lakeforge cdc drop-slot {self.source.name}")
        return {"slot": self.slot, "exists": True, "publication": self.publication, "active": active,
                "active_pid": pid, "confirmed_flush_lsn": confirmed, "restart_lsn": restart,
                "wal_status": wal_status, "current_lsn": current, "lag_bytes": lag, "retained_wal_bytes": retained,
                "warning": warning}

    def drop_slot(self) -> bool:
        rows = self.source.query(_SLOT_SQL, (self.slot,))
        if not rows:
            return False
        if rows[0][0]:
            raise SourceError(self.source.name, f"slot '{self.slot}' is in use by process {rows[0][1]}; stop "
                              f"that consumer first (SELECT pg_terminate_backend({rows[0][1]}))")
        self.source.query("SELECT pg_drop_replication_slot(%s)", (self.slot,))
        return True

    def to_arrow(self, values: list[Any], column: ColumnPlan) -> pa.Array:
        from lakeforge.sources.postgres.pgoutput import text_to_arrow

        if "money" in column.source_type:
            values = [None if v is None else v.replace("$", "").replace(",", "") for v in values]
        return text_to_arrow(values, column.arrow_type)
