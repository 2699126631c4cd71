"""MariaDB's default ``gtid_strict_mode = OFF`` is accepted; a GTID whose sequence number goes back in its
domain (what strict mode would have refused) stops the stream with an error before its batch commits."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_my_cdc import ORDER_COLUMNS, assert_same, op_counts, orders


@pytest.fixture
def lax(cdc_my: MyDb) -> Iterator[MyDb]:
    """The session server with MariaDB's default ``gtid_strict_mode = 0`` for this test."""
    cdc_my.execute("SET GLOBAL gtid_strict_mode = 0")
    try:
        yield cdc_my
    finally:
        cdc_my.execute("SET GLOBAL gtid_strict_mode = 1")


def test_default_server_without_strict_mode_is_accepted(lax: MyDb, tmp_path: Path) -> None:
    assert lax.execute("SELECT @@gtid_strict_mode")[0][0] == 0
    orders(lax, 20)
    project = Project(cdc_project(tmp_path / "p", lax, {"orders": {"mode": "cdc"}}))
    checks = project.check()
    assert [c.ok for c in checks] == [True], [str(p) for c in checks for p in c.problems]
    assert project.run().ok
    lax.execute("INSERT INTO orders VALUES (21, 'x', 1, 1.50, now(6), now(6), NULL)")
    lax.execute("UPDATE orders SET qty = 7 WHERE id <= 3")
    lax.execute("DELETE FROM orders WHERE id = 4")
    result = project.run()
    assert result.ok, result
    assert_same(project, lax, "orders", ORDER_COLUMNS)
    assert op_counts(project, "orders") == {"insert": 1, "update": 3, "delete": 1}


def test_gtid_going_back_in_its_domain_stops_the_stream(lax: MyDb, tmp_path: Path) -> None:
    orders(lax, 10)
    project = Project(cdc_project(tmp_path / "p", lax, {"orders": {"mode": "cdc"}}))
    assert project.run().ok
    lax.execute("UPDATE orders SET qty = 100 WHERE id = 1")  # in order, but in the batch the bad GTID stops
    domain, server, seq = lax.execute("SELECT @@gtid_binlog_pos")[0][0].split("-")
    # what strict mode would refuse: a sequence number below the domain's last one
    lax.execute(f"SET SESSION gtid_seq_no = {int(seq) - 5}")
    lax.execute("UPDATE orders SET qty = 200 WHERE id = 2")
    lax.execute("UPDATE orders SET qty = 300 WHERE id = 3")
    result = project.run()
    assert not result.ok
    error = " ".join(str(t.error) for t in result.tables if t.error) + " ".join(map(str, result.errors))
    assert f"binlog GTID {domain}-{server}-{int(seq) - 5} follows {domain}-{server}-{seq} in domain {domain}" in error
    assert "gtid_domain_id" in error and "gtid_strict_mode" in error, error
    got = {r["id"]: r["qty"] for r in project.sql("select id, qty from bronze.src_orders where id <= 3").to_pylist()}
    assert got == {1: 1, 2: 2, 3: 3}  # the batch was not committed: the lake keeps the last good commit
    again = project.run()  # stops at the same place, never skipping past it
    assert not again.ok and f"follows {domain}-{server}-{seq}" in " ".join(str(t.error) for t in again.tables)
