"""``lakeforge maintain`` beside a ``--follow`` CDC run on the same tables (Delta and Iceberg): maintenance takes
its own lock, commits optimistically and starts over when the CDC writer wins a commit race (and the CDC MERGE
re-applies when maintenance wins). Afterwards the current-state table equals the source row for row, the change
log holds every change exactly once, and the table's position never went back."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import PgDb, cdc_project

pytestmark = pytest.mark.usefixtures("lake_format")
STATE, LOG = "bronze.src_orders", "bronze.src_orders_changes"


@pytest.mark.slow
def test_maintain_beside_a_follow_run_loses_and_doubles_nothing(cdc_pg: PgDb, tmp_path: Path) -> None:
    cdc_pg.execute("CREATE TABLE orders (id int PRIMARY KEY, qty int, price numeric(10,2))")
    cdc_pg.execute("INSERT INTO orders SELECT g, g, g * 1.5 FROM generate_series(1, 200) g")
    folder = cdc_project(tmp_path / "p", cdc_pg, {"orders": {"mode": "cdc"}}, cdc_commit_seconds=0.3)
    assert Project(folder).run().ok  # the snapshot
    stop = threading.Event()
    outcome: list[object] = []
    follower = threading.Thread(target=lambda: outcome.append(Project(folder).run(follow=True, stop=stop)))
    follower.start()
    maintainer = Project(folder)
    made = {"insert": 0, "update": 0, "delete": 0}
    compacted = 0
    sequences = []
    try:
        for round_ in range(6):
            first = 1000 + round_ * 20
            cdc_pg.execute(f"INSERT INTO orders SELECT g, g, g * 0.5 FROM generate_series({first}, {first + 19}) g")
            cdc_pg.execute(f"UPDATE orders SET qty = qty + 1 WHERE id BETWEEN {round_ * 10 + 1} AND {round_ * 10 + 10}")
            cdc_pg.execute(f"DELETE FROM orders WHERE id BETWEEN {100 + round_ * 5} AND {104 + round_ * 5}")
            made["insert"] += 20
            made["update"] += 10
            made["delete"] += 5
            time.sleep(0.4)  # a micro-batch or two lands while maintenance runs
            results = maintainer.maintain([STATE, LOG])  # not blocked by the follow run's lock
            compacted += sum(1 for r in results if any(a.startswith("compacted") for a in r.actions))
            checkpoint = maintainer.lake.checkpoint(STATE)
            assert checkpoint is not None
            sequences.append(checkpoint.sequence)
        deadline = time.monotonic() + 60
        want = sorted(cdc_pg.execute("SELECT id, qty, price FROM orders"))
        while time.monotonic() < deadline:  # the follower catches up with the last round
            got = sorted(tuple(r.values()) for r in maintainer.sql(f"SELECT id, qty, price FROM {STATE}").to_pylist())
            if got == want:
                break
            time.sleep(0.3)
    finally:
        stop.set()
        follower.join(timeout=120)
    assert not follower.is_alive() and outcome and outcome[0].ok, outcome  # type: ignore[attr-defined]
    got = sorted(tuple(r.values()) for r in maintainer.sql(f"SELECT id, qty, price FROM {STATE}").to_pylist())
    assert got == want
    ops = maintainer.sql(f"SELECT _lf_op AS op, count(*) AS n FROM {LOG} GROUP BY 1").to_pylist()
    assert {r["op"]: r["n"] for r in ops} == made  # every change once: nothing lost, nothing doubled
    dupes = maintainer.sql(f"SELECT _lf_position, _lf_seq, count(*) FROM {LOG} GROUP BY ALL HAVING count(*) > 1")
    assert dupes.num_rows == 0
    assert compacted > 0
    assert sequences == sorted(sequences)  # the position read back never went back
    final = maintainer.lake.checkpoint(STATE)
    assert final is not None and final.sequence >= sequences[-1]
    assert maintainer.lake.next_sequence(STATE) == final.sequence + 1
    maintainer.lake.close()
