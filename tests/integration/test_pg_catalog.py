"""PostgreSQL catalog queries over ADBC (sources/postgres/catalog.py): the same answers as psycopg.

Schema and table names are written into the SQL as literals, so names holding a quote, a backslash or a
``{`` must still find exactly their own table; every catalog value (names, kinds, formatted types, array
dimensions, keys, estimates) must equal what psycopg returns for the same query.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from deltalake import DeltaTable

from lakeforge import Project
from lakeforge.config.models import PostgresSource as PostgresConfig
from lakeforge.config.models import TableConfig
from lakeforge.sources.base import TableRef
from lakeforge.sources.postgres import source as pg_source
from lakeforge.sources.postgres.catalog import literal
from lakeforge.sources.postgres.source import PostgresSource
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.integration

ODD_SCHEMA = "we'ird\\sch"
ODD_TABLE = "o'dd\\ta{b}le"


@pytest.fixture
def source(pg_db: PgDatabase) -> Iterator[PostgresSource]:
    pg_db.execute(f"""
        CREATE SCHEMA "{ODD_SCHEMA}";
        CREATE TABLE "{ODD_SCHEMA}"."{ODD_TABLE}" (id int, k text, v numeric(10,3)[], PRIMARY KEY (k, id));
        INSERT INTO "{ODD_SCHEMA}"."{ODD_TABLE}" VALUES (1, 'a''b', ARRAY[1.5, NULL]), (2, 'c\\d', NULL);
        CREATE TABLE "{ODD_SCHEMA}".plain (id int PRIMARY KEY);
        CREATE TABLE public.other (id bigint PRIMARY KEY, ts timestamptz, d date[][]);
        CREATE VIEW public.v AS SELECT id FROM public.other;
        CREATE MATERIALIZED VIEW public.mv AS SELECT id FROM public.other;
        ANALYZE;
    """)
    src = PostgresSource("src", PostgresConfig(type="postgres", url=pg_db.url, schemas=["public", ODD_SCHEMA]))
    yield src
    src.close()


def test_literal_escapes_quotes_and_backslashes(pg_db: PgDatabase) -> None:
    for text in (ODD_TABLE, "'; DROP TABLE x; --", "\\'", "plain", ""):
        assert pg_db.execute(f"SELECT {literal(text)}")[0][0] == text
    assert pg_db.execute(f"SELECT {literal(['a', ODD_SCHEMA])}")[0][0] == ["a", ODD_SCHEMA]


def test_catalog_answers_equal_psycopgs(source: PostgresSource) -> None:
    refs = source.list_tables()
    assert [(r.schema, r.name, r.kind) for r in refs] == [
        ("public", "mv", "materialized_view"),
        ("public", "other", "table"),
        ("public", "v", "view"),
        (ODD_SCHEMA, ODD_TABLE, "table"),
        (ODD_SCHEMA, "plain", "table"),
    ]
    for sql, params in (
        (pg_source._TABLES_SQL, (["public", ODD_SCHEMA],)),
        (pg_source._COLUMNS_SQL, (ODD_SCHEMA, ODD_TABLE)),
        (pg_source._COLUMNS_SQL, ("public", "other")),
        (pg_source._PK_SQL, (ODD_SCHEMA, ODD_TABLE)),
    ):
        over_adbc = source.catalog(sql, *params)
        over_psycopg = source.query(sql.replace("{}", "%s"), params)
        assert over_adbc == over_psycopg and over_adbc, sql
    plan = source.describe(TableRef(ODD_SCHEMA, ODD_TABLE, "table"), TableConfig())
    assert plan.primary_key == ["k", "id"]
    assert [c.source_type for c in plan.columns] == ["integer", "text", "numeric(10,3)[]"]
    assert plan.estimated_rows == 2


def test_a_run_loads_the_table_with_the_odd_name(pg_db: PgDatabase, tmp_path: Path) -> None:
    pg_db.execute(f"""
        CREATE SCHEMA "{ODD_SCHEMA}";
        CREATE TABLE "{ODD_SCHEMA}"."{ODD_TABLE}" (id int PRIMARY KEY, k text);
        INSERT INTO "{ODD_SCHEMA}"."{ODD_TABLE}" SELECT g, 'k' || g FROM generate_series(1, 1000) g;
    """)
    schema = "'" + ODD_SCHEMA.replace("'", "''") + "'"  # YAML single quotes: the backslash stays as written
    write_project(tmp_path, f"""
        sources:
          src: {{type: postgres, url: "{pg_db.url}", schemas: [{schema}]}}
    """)
    project = Project(tmp_path)
    result = project.run()
    assert result.ok, [r.error for r in result.tables] + result.errors
    [table] = result.tables
    data = DeltaTable(project.lake.uri(table.table)).to_pyarrow_table()
    assert data.num_rows == 1000 and sum(data.column("id").to_pylist()) == 500500
