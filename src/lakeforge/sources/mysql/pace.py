"""MariaDB/MySQL: flow control for connectorx, by pausing the query in the server.

Why: connectorx fetches ahead of its consumer into an unbounded buffer (no flow control between its fetch
thread and the Python iterator). When the Delta writer is the slower side, the rows pile up there: MariaDB
wide 10M peaked at 1.02-1.15 GB RSS (docs/benchmarks.md, Profiles 2). Nothing in connectorx can be told to
wait, so the server is made to.

How: the query's WHERE ends in a *gate* that every row passing the rest of the condition goes through. It
counts the rows in a session variable and, before every ``every``-th row (``every`` = the batch size),
takes the user lock ``<prefix><n>`` (``GET_LOCK``). The reader's own control connection holds the locks of
the gates ahead and releases gate n only once the consumer has taken the batches before it, ``LEAD`` gates
ahead. So the server stops sending while more than ``LEAD + 1`` batches are unread: one query, one snapshot,
no privilege beyond SELECT (user locks need none). The gate costs the server a counter per row and one lock
per batch.

Safe by construction:

- the counter counts only rows that are sent: the gate is ``IF(<condition>, <gate>, 0)``, so a row the rest
  of the WHERE rejects never reaches it, whatever order the server evaluates the conjuncts in;
- a lock not granted within ``WAIT`` seconds fails the query (``IF(GET_LOCK(...) = 1, 1, <two-row
  subquery>)``), it never drops a row;
- without the session variables (the pre-execution statement failed: connectorx ignores such errors) every
  row passes ungated, i.e. the read is as before, unpaced;
- connectorx holds the GIL while it waits for a batch, so a consumer that waited on a gate it has not
  released would wait forever: gates are always released before the next batch is asked for, with
  ``LEAD`` >= 1 batch of room (the server can always finish the batch the consumer waits for).

The query's connection keeps each gate lock it passed (one per batch) until it closes. MySQL 8 accepts the
counter's assignment inside an expression with a deprecation warning; MariaDB without one.

When the read stops early, the query's connection (found by the marker lock it takes in its set-up) is
killed: once the control connection closes, its locks are free and the query would otherwise run to the end.
"""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from lakeforge.errors import SourceError

if TYPE_CHECKING:
    from lakeforge.sources.mysql.source import MySQLSource

LEAD = 2
"""Batches the server may send beyond the one the consumer is taking (the read-ahead bound)."""
WAIT = 900
"""Seconds the server waits at a gate before the query fails (a consumer this slow has stopped)."""
PREFIX_VAR = "@lf_pace"
"""Session variable holding this read's lock-name prefix (set before the query; marks a paced query)."""
_COUNT_VAR = "@lf_pace_n"


def paced_condition(where: str | None, every: int) -> str:
    """``where`` (None: every row) with the gate that pauses the server every ``every`` rows sent."""
    n = _COUNT_VAR
    lock = f"GET_LOCK(CONCAT({PREFIX_VAR}, {n} DIV {every}), {WAIT})"
    gate = (
        f"({PREFIX_VAR} IS NULL OR ({n} := {n} + 1) % {every} <> 0 OR "
        f"IF({lock} = 1, 1, (SELECT 1 UNION ALL SELECT 2)) = 1)"
    )
    if where is None:
        return gate
    return f"({where}) AND IF(({where}), {gate}, 0)"


class Pace:
    """One paced read: the control connection, its held gate locks, and the set-up of the query's session."""

    def __init__(self, source: MySQLSource, every: int) -> None:
        self.source = source
        self.every = every
        self.prefix = f"lf_{secrets.token_hex(6)}_"
        self.marker = f"{self.prefix}q"
        self._conn: Any = source.connect()
        self._held: set[int] = set()
        self._top = 0
        self.finished = False
        self.allow(0)

    def setup(self) -> list[str]:
        """connectorx pre-execution statements: the counter, the prefix, the marker lock."""
        return [f"SET {_COUNT_VAR} = 0, {PREFIX_VAR} = '{self.prefix}'", f"DO GET_LOCK('{self.marker}', 0)"]

    def _run(self, sql: str) -> Any:
        with self.source.errors("paced read"), self._conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetchall()

    def allow(self, rows: int) -> None:
        """The consumer has taken ``rows``: gates up to ``rows // every + LEAD`` pass, the next ones are held."""
        passable = rows // self.every + LEAD
        wanted = passable + LEAD
        if self._top < wanted:
            names = range(self._top + 1, wanted + 1)
            got = self._run("SELECT " + ", ".join(f"GET_LOCK('{self.prefix}{g}', 0)" for g in names))[0]
            if not all(v == 1 for v in got):
                raise SourceError(self.source.name, f"paced read: a gate lock {self.prefix}* is held elsewhere")
            self._held.update(names)
            self._top = wanted
        free = sorted(g for g in self._held if g <= passable)
        if free:
            self._run("DO " + ", ".join(f"RELEASE_LOCK('{self.prefix}{g}')" for g in free))
            self._held.difference_update(free)

    def close(self) -> None:
        """Kill the query when the read did not finish; close the control connection (freeing its locks)."""
        if self._conn is None:
            return
        with contextlib.suppress(Exception):
            if not self.finished:
                conn_id = self._run(f"SELECT IS_USED_LOCK('{self.marker}')")[0][0]
                if conn_id is not None:
                    self._run(f"KILL {int(conn_id)}")
        with contextlib.suppress(Exception):
            self._conn.close()
        self._conn = None
