"""MariaDB/MySQL: a large table read in key ranges one after another, all of them in one snapshot.

Why: connectorx fetches ahead of its consumer into an unbounded buffer (no flow control between its fetch
thread and the Python iterator). When the Delta writer is the slower side, a whole table's rows pile up there:
MariaDB wide 10M peaked at 1.02-1.15 GB RSS (docs/benchmarks.md, Profiles 2). One query per key range
bounds that buffer to about one range. But each connectorx query has its own connection, hence its own
snapshot, and MariaDB cannot hand a snapshot to another connection.

How the ranges still read one state of the table:

1. a control connection takes ``LOCK TABLES <t> READ`` (writes to this table wait; reads go on) and one user
   lock per range: that range's *turn*;
2. every range's reader is opened at once: its connection starts ``START TRANSACTION WITH CONSISTENT SNAPSHOT``
   and takes a *marker* lock (connectorx pre-execution statements, run before ``read_sql`` returns), then
   sends its query, which waits in the server for its turn (``FROM (SELECT GET_LOCK(<turn>, ...)) gate
   STRAIGHT_JOIN <t>``: the derived row is read once, before any row of the table);
3. when every marker is held (every snapshot is open) the control connection runs ``UNLOCK TABLES``. No
   write to the table can commit between the first snapshot and the last, so all of them see the same rows.
   (The first range waits for its turn too: a range that ended would have dropped its marker.)
4. the ranges are consumed in key order. Range i+1's turn is released once 90% of range i's expected rows
   have arrived, so little more than one range is in flight at any time, and the next one is already
   streaming when the current one ends (two ranges streaming at once fetch faster than the writer takes
   them: releasing at half a range raised the peak, docs/benchmarks.md).

Each query carries a check evaluated once (an uncorrelated subquery): it fails the query unless it runs in a
transaction on the connection that took its marker. connectorx ignores errors of its pre-execution statements,
so without it a failed ``START TRANSACTION`` would go unnoticed. A turn not granted in ``TURN_WAIT`` seconds
fails the query too (never an empty range). On any stop, the ranges not yet read are killed.

Without the ``LOCK TABLES`` privilege, or when a writer keeps the lock from being granted within
``LOCK_WAIT`` seconds, the table is read by one query, as smaller tables are.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    import pyarrow as pa

    from lakeforge.sources.base import TablePlan
    from lakeforge.sources.mysql.source import MySQLSource

MAX_CHUNKS = 32
"""At most this many ranges (each one a connection, open for the whole read): larger tables get larger ranges."""
LOCK_WAIT = 30
"""Seconds to wait for ``LOCK TABLES ... READ`` (uncommitted writes to the table hold it off); then one query."""
TURN_WAIT = 7 * 86400
"""Seconds a range's query waits for its turn before it fails (a consumer this slow has stopped)."""
RELEASE_AT = 0.9
"""Share of a range's expected rows consumed before the next range may start sending."""
_NOT_GRANTED = (1044, 1142, 1205, 1227)  # access denied (db, table), lock wait timeout, no privilege
CHECK_FAILED = "Subquery returns more than 1 row"


def chunk_ranges(source: MySQLSource, plan: TablePlan, partitions: int, range_bytes: int) -> list[str] | None:
    """Key-range conditions that split ``plan``'s table into ranges of about ``range_bytes``; None when the
    table is small, a view, has no single integer key, or ``run.partitions`` asks for parallel readers."""
    if partitions > 1 or plan.ref.kind != "table" or len(plan.primary_key) != 1:
        return None
    key = plan.column(plan.primary_key[0])
    if key.kind != "number" or "int" not in str(key.arrow_type):
        return None
    count = range_count(plan, range_bytes)
    if count < 2:
        return None
    qkey = source.quote(key.name)
    low, high = source.query(f"SELECT MIN({qkey}), MAX({qkey}) FROM {source.table_sql(plan.ref)}")[0]
    if low is None or high is None or high - low + 1 < count:
        return None
    step = -(-(high - low + 1) // count)  # ceil: the last bound stays <= high
    bounds = [low + i * step for i in range(1, count)]
    # the first and last ranges are open-ended: rows added outside [low, high] before the snapshot are read too
    ranges = [f"{qkey} < {bounds[0]}"]
    ranges += [f"{qkey} >= {a} AND {qkey} < {b}" for a, b in zip(bounds, bounds[1:], strict=False)]
    ranges.append(f"{qkey} >= {bounds[-1]}")
    return ranges


def range_count(plan: TablePlan, range_bytes: int) -> int:
    """How many ranges: the table's estimated Arrow bytes over ``range_bytes``, at most ``MAX_CHUNKS``."""
    from lakeforge.sources.convert import row_bytes

    if range_bytes <= 0:
        return 1
    return int(min(MAX_CHUNKS, plan.estimated_rows * row_bytes(plan.arrow_schema()) // range_bytes))


class ChainedRead:
    """One table read as ``ranges`` in one snapshot (module docstring); ``stream`` yields its batches."""

    def __init__(self, source: MySQLSource, plan: TablePlan, where: str | None, ranges: list[str]) -> None:
        self.source = source
        self.plan = plan
        self.where = where
        self.ranges = ranges
        self.token = secrets.token_hex(6)
        self.expected = max(1, plan.estimated_rows // len(ranges))
        self._conn: Any = None
        self._released: set[int] = set()
        self._done: set[int] = set()

    def _turn(self, i: int) -> str:
        return f"lf_{self.token}_t{i}"

    def _marker(self, i: int) -> str:
        return f"lf_{self.token}_m{i}"

    def _run(self, sql: str) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def range_sql(self, i: int) -> str:
        """Range ``i``'s SELECT: waits for its turn, checks its transaction."""
        check = (
            "(SELECT 1 UNION ALL SELECT 2 FROM DUAL WHERE @@in_transaction <> 1 OR "
            f"NOT (IS_USED_LOCK('{self._marker(i)}') <=> CONNECTION_ID())) = 1"
        )
        cond = f"({self.ranges[i]}) AND {check}"
        if self.where:
            cond = f"({self.where}) AND {cond}"
        # IF(...) fails the query when the turn is not granted in time, instead of reading no rows
        turn = f"IF(GET_LOCK('{self._turn(i)}', {TURN_WAIT}) = 1, 1, (SELECT 1 UNION ALL SELECT 2))"
        gate = f"(SELECT {turn} AS lf_turn_granted) AS lf_gate STRAIGHT_JOIN {self.source.table_sql(self.plan.ref)}"
        return self.source.select_sql(self.plan, cond, from_sql=gate)

    def stream(self, sql: str, batch_size: int) -> Iterator[pa.RecordBatch]:
        """The table's batches in key order; ``sql`` (the plan's single SELECT) is read instead when the table
        cannot be locked."""
        self._conn = self.source.connect()
        try:
            if not self._lock():
                yield from self.source.stream(sql, batch_size)
                return
            readers = self._open(batch_size)
            for i, reader in enumerate(readers):
                yield from self._consume(i, reader)
        finally:
            self._close()

    def _lock(self) -> bool:
        import pymysql

        with self.source.errors("cannot lock the table for a chunked read"):
            self._run(f"SET SESSION lock_wait_timeout = {LOCK_WAIT}")
            try:
                self._run(f"LOCK TABLES {self.source.table_sql(self.plan.ref)} READ")
            except pymysql.MySQLError as exc:
                if exc.args and exc.args[0] in _NOT_GRANTED:
                    return False
                raise
            turns = ", ".join(f"GET_LOCK('{self._turn(i)}', 0)" for i in range(len(self.ranges)))
            if not all(v == 1 for v in self._run(f"SELECT {turns}")[0]):
                raise SourceError(self.source.name, "chunked read: a range lock is held by another session")
        return True

    def _open(self, batch_size: int) -> list[Any]:
        """Open every range's reader (each its own snapshot) while the table is locked, then unlock."""
        import connectorx as cx

        readers = []
        try:
            for i in range(len(self.ranges)):
                setup = [
                    "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
                    "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                    f"DO GET_LOCK('{self._marker(i)}', 0)",
                ]
                with self.source.errors("read failed"):
                    readers.append(
                        cx.read_sql(
                            self.source.dsn,
                            self.range_sql(i),
                            return_type="arrow_stream",
                            batch_size=batch_size,
                            pre_execution_query=setup,
                        )
                    )
            # read_sql returns after its setup statements: every snapshot is open once every marker is held
            held = ", ".join(f"IS_USED_LOCK('{self._marker(i)}') IS NOT NULL" for i in range(len(self.ranges)))
            with self.source.errors("chunked read"):
                if not all(self._run(f"SELECT {held}")[0]):
                    raise SourceError(self.source.name, "chunked read: a range did not open its snapshot")
        finally:
            with self.source.errors("chunked read"):
                self._run("UNLOCK TABLES")
        self._release(0)
        return readers

    def _consume(self, i: int, reader: Any) -> Iterator[pa.RecordBatch]:
        rows = 0
        while True:
            with self.source.errors("read failed"):
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                except SourceError:
                    raise
                except BaseException as exc:  # connectorx panics derive from BaseException
                    if CHECK_FAILED in str(exc):
                        raise SourceError(
                            self.source.name,
                            f"chunked read of {self.plan.ref.qualified}: range {i} did not run in its snapshot "
                            "or waited past its turn; the load starts over",
                            transient=True,
                        ) from None
                    raise
            rows += batch.num_rows
            if rows >= self.expected * RELEASE_AT:
                self._release(i + 1)
            yield batch
        self._done.add(i)
        self._release(i + 1)  # before the next range is pulled: connectorx waits for it holding the GIL

    def _release(self, i: int) -> None:
        if i < len(self.ranges) and i not in self._released:
            with self.source.errors("chunked read"):
                self._run(f"DO RELEASE_LOCK('{self._turn(i)}')")
            self._released.add(i)

    def _close(self) -> None:
        """Kill the ranges not read to the end (their queries would otherwise run on once the turns are
        released), then close the control connection (which releases every lock it holds)."""
        if self._conn is None:
            return
        pending = [i for i in range(len(self.ranges)) if i not in self._done]
        with contextlib.suppress(Exception):
            if pending:
                ids = self._run("SELECT " + ", ".join(f"IS_USED_LOCK('{self._marker(i)}')" for i in pending))[0]
                for conn_id in ids:
                    if conn_id is not None:
                        self._run(f"KILL {int(conn_id)}")
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
