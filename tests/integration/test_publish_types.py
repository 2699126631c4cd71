"""Publishing a table of every contract type into PostgreSQL and MariaDB: every value and every column type
read back from the target equals the lake (NULLs stay NULL), and the notes name the inexact mappings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase
from tests.integration.publish_helpers import (
    TYPES_TABLE,
    comparable,
    target_value,
    types_table,
    write_lake,
    write_project,
)

PG_TYPES = {
    "id": "bigint", "c_int16": "smallint", "c_int32": "integer", "c_int64": "bigint", "c_float32": "real",
    "c_float64": "double precision", "c_dec_10_2": "numeric(10,2)", "c_dec_38_10": "numeric(38,10)",
    "c_dec_38_20": "numeric(38,20)", "c_dec_30_0": "numeric(30,0)", "c_varchar": "text", "c_text": "text",
    "c_date": "date", "c_ts": "timestamp without time zone", "c_tstz": "timestamp with time zone",
    "c_binary": "bytea", "c_blob": "bytea", "c_json": "json", "c_bool": "boolean",
}
MY_TYPES = {
    "id": "bigint(20)", "c_int16": "smallint(6)", "c_int32": "int(11)", "c_int64": "bigint(20)", "c_float32": "double",
    "c_float64": "double", "c_dec_10_2": "decimal(10,2)", "c_dec_38_10": "decimal(38,10)",
    "c_dec_38_20": "decimal(38,20)", "c_dec_30_0": "decimal(30,0)", "c_varchar": "longtext", "c_text": "longtext",
    "c_date": "date", "c_ts": "datetime(6)", "c_tstz": "datetime(6)", "c_binary": "longblob", "c_blob": "longblob",
    "c_json": "longtext", "c_bool": "tinyint(1)",
}


@pytest.fixture
def published(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase) -> tuple[Any, pa.Table, list[Any]]:
    project = write_project(tmp_path / "p", pg_db.url, my_db.url)
    lake = types_table()
    write_lake(project, TYPES_TABLE, lake)
    return project, lake, project.publish()


def test_every_type_round_trips_into_postgres(published: Any, pg_db: PgDatabase) -> None:
    _, lake, results = published
    assert {(r.target, r.status, r.rows) for r in results} == {("pg", "published", 4), ("my", "published", 4)}
    names = lake.column_names
    select = ", ".join(f"{n}::text" if n == "c_json" else n for n in names)
    rows = pg_db.execute(f"SELECT {select} FROM public.types ORDER BY id")
    assert len(rows) == lake.num_rows
    for field in lake.schema:
        got = [target_value(r[names.index(field.name)], field.type) for r in rows]
        want = [comparable(v, field.type, "pg") for v in lake.column(field.name).to_pylist()]
        assert got == want, field.name
    types = dict(pg_db.execute(
        "SELECT column_name, CASE WHEN data_type = 'numeric' THEN format('numeric(%s,%s)', numeric_precision, "
        "numeric_scale) ELSE data_type END FROM information_schema.columns WHERE table_name = 'types'"))
    assert types == PG_TYPES
    key = pg_db.execute("SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
                        "AND a.attnum = ANY(i.indkey) WHERE i.indrelid = 'public.types'::regclass AND i.indisprimary")
    assert key == [("id",)]
    recorded = pg_db.execute("SELECT lake_table, lake_version, row_count FROM _lakeforge_published")
    assert recorded == [("gold.types", 0, 4)]


def test_every_type_round_trips_into_mariadb(published: Any, my_db: MyDatabase) -> None:
    _, lake, results = published
    names = lake.column_names
    rows = my_db.execute(f"SELECT {', '.join(names)} FROM types ORDER BY id")
    assert len(rows) == lake.num_rows
    for field in lake.schema:
        got = [target_value(r[names.index(field.name)], field.type) for r in rows]
        want = [comparable(v, field.type, "my") for v in lake.column(field.name).to_pylist()]
        assert got == want, field.name
    types = dict(my_db.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS "
                               "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'types'"))
    assert types == MY_TYPES
    my = next(r for r in results if r.target == "my")
    notes = "\n".join(my.notes)
    assert "c_tstz: timestamp with time zone: DATETIME(6) holding UTC" in notes
    assert "c_bool: MariaDB's BOOLEAN is TINYINT(1)" in notes
    assert "c_json: MariaDB's JSON is LONGTEXT" in notes


def test_unchanged_table_is_not_republished_and_a_new_version_is(tmp_path: Path, pg_db: PgDatabase,
                                                                  my_db: MyDatabase) -> None:
    project = write_project(tmp_path / "p", pg_db.url, my_db.url)
    write_lake(project, TYPES_TABLE, types_table())
    assert {r.status for r in project.publish()} == {"published"}
    assert {(r.status, r.rows) for r in project.publish()} == {("unchanged", 0)}
    write_lake(project, TYPES_TABLE, types_table().slice(0, 2))
    again = project.publish()
    assert {(r.status, r.rows, r.version) for r in again} == {("published", 2, 1)}
    assert pg_db.execute("SELECT count(*) FROM types") == [(2,)]
    assert my_db.execute("SELECT count(*) FROM types") == [(2,)]


def test_a_value_the_target_cannot_hold_names_the_column(tmp_path: Path, pg_db: PgDatabase,
                                                          my_db: MyDatabase) -> None:
    project = write_project(tmp_path / "p", pg_db.url, my_db.url)
    table = pa.table({"id": pa.array([1, 2], pa.int64()), "ratio": pa.array([1.5, float("nan")])})
    write_lake(project, "gold.ratios", table)
    results = {r.target: r for r in project.publish()}
    assert results["pg"].status == "published"
    assert pg_db.execute("SELECT ratio::text FROM ratios ORDER BY 1") == [("1.5",), ("NaN",)]
    assert results["my"].status == "failed"
    assert "column 'ratio'" in (results["my"].error or "") and "NaN" in (results["my"].error or "")
    assert my_db.execute("SHOW TABLES LIKE 'ratios'") == []


def test_composite_string_keys_fit_mariadbs_key_limit(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase) -> None:
    project = write_project(tmp_path / "p", pg_db.url, my_db.url, mode="upsert", extra="""\
        serve: {}
        """)
    text = (project.path / "lakeforge.yml").read_text().replace(
        "gold.types: {primary_key: [id], json_columns: [c_json]}", "gold.sales: {primary_key: [country, line, n]}")
    (project.path / "lakeforge.yml").write_text(text)
    table = pa.table({"country": ["France", "France", "É" * 300], "line": ["Ships", "Planes", "x"],
                      "n": pa.array([1, 1, 2], pa.int32()), "revenue": pa.array([1, 2, 3], pa.int64())})
    write_lake(project, "gold.sales", table)
    results = Project(project.path).publish()
    assert {(r.status, r.rows) for r in results} == {("published", 3)}, [r.error for r in results]
    assert my_db.execute("SELECT COLUMN_NAME, COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = "
                         "DATABASE() AND TABLE_NAME = 'sales' AND COLUMN_KEY = 'PRI' ORDER BY ORDINAL_POSITION") == [
        ("country", "varchar(382)"), ("line", "varchar(382)"), ("n", "int(11)")]
    assert sorted(my_db.execute("SELECT country, line, n, revenue FROM sales")) == sorted(
        tuple(r.values()) for r in table.to_pylist())
    assert "country: key/index column: VARCHAR(382)" in "\n".join(next(r for r in results if r.target == "my").notes)
