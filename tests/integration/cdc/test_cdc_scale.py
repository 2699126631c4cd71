"""CDC at scale: 100,000 changes after a snapshot (50,000 inserts, 30,000 updates, 20,000 deletes, in
transactions of 10 to 25,000 changes, some mixing all three ops), then one catch-up run: the lake equals the
source (count, sum, every row) and the change log holds exactly 50,000 / 30,000 / 20,000 of each op."""

from __future__ import annotations

import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import cdc_project
from tests.integration.cdc.test_cdc_crash import SOURCES, Src

COLUMNS = "id, k, amount, note"


def changes(src: Src) -> dict[str, int]:
    """Make the 100,000 changes; return the affected rows per op (as the database counted them)."""
    done = {"insert": 0, "update": 0, "delete": 0}

    def run(*statements: tuple[str, str]) -> None:
        counts = src.txn(*(sql for _, sql in statements))
        for (op, _), n in zip(statements, counts, strict=True):
            done[op] += n

    def insert(first: int, last: int) -> tuple[str, str]:
        return "insert", (f"INSERT INTO t SELECT g, g % 1000, g * 0.01, concat('new ', g) "
                          f"FROM {src.series(first, last)}")

    def update(first: int, last: int) -> tuple[str, str]:
        return "update", (f"UPDATE t SET k = k + 1, amount = amount + 0.5, note = 'upd' "
                          f"WHERE id BETWEEN {first} AND {last}")

    def delete(first: int, last: int) -> tuple[str, str]:
        return "delete", f"DELETE FROM t WHERE id BETWEEN {first} AND {last}"

    run(insert(100_001, 125_000))  # one transaction of 25,000
    for i in range(10):  # 10 of 2,000
        run(insert(125_001 + i * 2000, 127_000 + i * 2000))
    for i in range(500):  # 500 mixed ones: 10 inserts, 20 updates, 10 deletes
        run(insert(145_001 + i * 10, 145_010 + i * 10), update(100_001 + i * 20, 100_020 + i * 20),
            delete(140_001 + i * 10, 140_010 + i * 10))
    run(update(1, 10_000))
    for i in range(10):
        run(update(10_001 + i * 1000, 11_000 + i * 1000))
    for i in range(3):
        run(delete(20_001 + i * 5000, 25_000 + i * 5000))
    return done


@pytest.mark.parametrize("kind", SOURCES)
def test_100k_changes_one_catch_up_run(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    src = Src(request.getfixturevalue("cdc_pg" if kind == "postgres" else "cdc_my"))
    src.db.execute("CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL, amount numeric(12,2), note text)")
    src.txn(f"INSERT INTO t SELECT g, g % 1000, g * 0.01, concat('row ', g) FROM {src.series(1, 40_000)}")
    p = Project(cdc_project(tmp_path / "p", src.db, {"t": {"mode": "cdc"}}))
    first = p.run()
    assert first.ok, first
    assert first.tables[0].rows == 40_000

    assert changes(src) == {"insert": 50_000, "update": 30_000, "delete": 20_000}
    started = time.perf_counter()
    result = p.run()
    seconds = time.perf_counter() - started
    assert result.ok, result
    assert result.tables[0].rows == 100_000, result.tables[0]
    print(f"{kind}: 100,000 changes applied in {seconds:.1f} s ({100_000 / seconds:,.0f}/s, whole run)")

    want: list[Any] = src.db.execute("SELECT count(*), sum(amount) FROM t")
    got = p.sql("select count(*) n, sum(amount) s from bronze.src_t").to_pylist()[0]
    assert (got["n"], Decimal(got["s"])) == (want[0][0], Decimal(want[0][1])) == (70_000, want[0][1])
    lake = sorted(tuple(r.values()) for r in p.sql(f"select {COLUMNS} from bronze.src_t").to_pylist())
    assert lake == src.rows("t", COLUMNS)
    ops = p.sql("select _lf_op, count(*) n from bronze.src_t_changes group by 1 order by 1").to_pylist()
    assert ops == [{"_lf_op": "delete", "n": 20_000}, {"_lf_op": "insert", "n": 50_000},
                   {"_lf_op": "update", "n": 30_000}]
    dup = p.sql("select count(*) n from (select _lf_position_value, _lf_seq from bronze.src_t_changes "
                "group by 1, 2 having count(*) > 1)").to_pylist()
    assert dup == [{"n": 0}]
