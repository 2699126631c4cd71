"""MariaDB CDC across ALTER TABLE: changes before and after an ADD COLUMN and a DROP COLUMN, read in one
catch-up run, decode with the columns they were written with (binlog_row_metadata=FULL), never shifted."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path

from lakeforge import Project
from tests.integration.cdc.conftest import MyDb, cdc_project
from tests.integration.cdc.test_my_cdc import assert_same, lake_rows, op_counts


def test_add_and_drop_column_mid_stream(cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_my.execute("CREATE TABLE items (id int PRIMARY KEY, a int, b decimal(10,2), c varchar(20))")
    cdc_my.executemany("INSERT INTO items VALUES (%s, %s, %s, %s)",
                       [(i, i * 10, decimal.Decimal(i) + decimal.Decimal("0.25"), f"c{i}") for i in range(1, 6)])
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"items": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_my.execute("INSERT INTO items VALUES (6, 60, 6.25, 'c6')")
    cdc_my.execute("UPDATE items SET a = 11 WHERE id = 1")
    # the new column goes in the middle: a decoder that guessed names by position would shift c into d
    cdc_my.execute("ALTER TABLE items ADD COLUMN d timestamp(6) NULL AFTER a")
    cdc_my.execute("INSERT INTO items VALUES (7, 70, '2024-07-07 07:07:07.777777', 7.25, 'c7')")
    cdc_my.execute("UPDATE items SET d = '2024-02-02 02:02:02' WHERE id = 2")
    cdc_my.execute("ALTER TABLE items DROP COLUMN b")
    cdc_my.execute("INSERT INTO items VALUES (8, 80, '2024-08-08 08:08:08', 'c8')")
    cdc_my.execute("UPDATE items SET a = 33 WHERE id = 3")
    result = project.run()
    assert result.ok, result

    assert_same(project, cdc_my, "items", "id, a, d, c")
    # the dropped column keeps its history (typed as it was) and is NULL for rows written after the drop
    b = {r[0]: r[1] for r in lake_rows(project, "bronze.src_items", "id, b")}
    dec = decimal.Decimal
    assert b == {1: dec("1.25"), 2: dec("2.25"), 3: None, 4: dec("4.25"), 5: dec("5.25"), 6: dec("6.25"),
                 7: dec("7.25"), 8: None}
    d = {r[0]: r[1] for r in lake_rows(project, "bronze.src_items", "id, d")}
    assert d[7] == dt.datetime(2024, 7, 7, 7, 7, 7, 777777)
    assert d[2] == dt.datetime(2024, 2, 2, 2, 2, 2) and d[1] is None and d[6] is None
    columns = project.sql("describe bronze.src_items").to_pylist()
    types = {r["column_name"]: r["column_type"] for r in columns}
    assert types["b"] == "DECIMAL(10,2)" and types["d"].startswith("TIMESTAMP") and types["c"] == "VARCHAR"
    assert op_counts(project, "items") == {"insert": 3, "update": 3}
    # the change log keeps each row as written: row 6 with b (before the drop), row 8 without it
    log = {r[0]: r[1:] for r in lake_rows(project, "bronze.src_items_changes", "id, b, d, c", "_lf_op = 'insert'")}
    assert log == {6: (dec("6.25"), None, "c6"), 7: (dec("7.25"), dt.datetime(2024, 7, 7, 7, 7, 7, 777777), "c7"),
                   8: (None, dt.datetime(2024, 8, 8, 8, 8, 8), "c8")}

    # a later run, planned from the altered table, goes on without the dropped column
    cdc_my.execute("INSERT INTO items VALUES (9, 90, NULL, 'c9')")
    assert project.run().ok
    assert_same(project, cdc_my, "items", "id, a, d, c")
    assert lake_rows(project, "bronze.src_items", "id, b", "id = 9") == [(9, None)]


def test_add_datetime_column(cdc_my: MyDb, tmp_path: Path) -> None:
    cdc_my.execute("CREATE TABLE items (id int PRIMARY KEY, a int)")
    cdc_my.execute("INSERT INTO items VALUES (1, 10)")
    project = Project(cdc_project(tmp_path / "p", cdc_my, {"items": {"mode": "cdc"}}))
    assert project.run().ok
    cdc_my.execute("ALTER TABLE items ADD COLUMN d datetime(6) NULL")
    cdc_my.execute("INSERT INTO items VALUES (2, 20, '2024-07-07 07:07:07.777777')")
    result = project.run()
    assert result.ok, result.tables[0].error
    assert_same(project, cdc_my, "items", "id, a, d")
