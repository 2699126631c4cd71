"""Other engines read what lakeforge writes: Delta tables with delta-rs, Polars and DuckDB; Iceberg tables with
PyIceberg (its own SQL catalog, not lakeforge's), Polars and DuckDB. The same rows, the same types."""

from __future__ import annotations

import datetime as dt
import decimal
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import PgDatabase, write_project

T0 = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)
EXPECTED = [
    {"id": 1, "name": "a", "amount": decimal.Decimal("1.10"), "at": T0},
    {"id": 2, "name": None, "amount": None, "at": None},
    {"id": 3, "name": "ü😀", "amount": decimal.Decimal("-99999999.99"), "at": T0 + dt.timedelta(days=1)},
]


@pytest.fixture
def loaded(lake_format: str, pg_db: PgDatabase, project_dir: Path) -> Project:
    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(10,2), at timestamptz)")
    for row in EXPECTED:
        pg_db.execute("INSERT INTO t VALUES (%s, %s, %s, %s)", tuple(row.values()))
    p = Project(write_project(project_dir, f"""
    lake: {{path: ./lake}}
    sources:
      src: {{type: postgres, url: {pg_db.url}, include: [], tables: {{t: {{mode: full}}}}}}
    """))
    assert p.run().ok
    return p


def _plain(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = [{k: r[k] for k in ("id", "name", "amount", "at")} for r in rows]
    for r in out:  # engines give back UTC as their own tzinfo object
        if r["at"] is not None:
            r["at"] = r["at"].astimezone(dt.UTC)
    return sorted(out, key=lambda r: r["id"])


def test_polars_reads_the_table(loaded: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    import polars as pl

    monkeypatch.setenv("POLARS_ICEBERG_PLANNER", "pyiceberg")  # the faster planner is another package
    uri = loaded.lake.uri("bronze.src_t")
    if loaded.lake.FORMAT == "delta":
        frame = pl.scan_delta(uri).collect()
    else:
        frame = pl.scan_iceberg(loaded.lake.table("bronze.src_t")).collect()  # type: ignore[attr-defined]
    assert _plain(frame.to_dicts()) == EXPECTED
    assert frame.schema["amount"] == pl.Decimal(10, 2)


def test_the_format_library_reads_the_table(loaded: Project) -> None:
    if loaded.lake.FORMAT == "delta":
        from deltalake import DeltaTable

        data = DeltaTable(loaded.lake.uri("bronze.src_t")).to_pyarrow_table()
    else:
        from pyiceberg.catalog.sql import SqlCatalog

        root = loaded.lake.root
        catalog = SqlCatalog("lakeforge", uri=f"sqlite:///{root}/catalog.db", warehouse=f"file://{root}")
        table = catalog.load_table(("bronze", "src_t"))
        data = table.scan().to_arrow()
        assert str(table.schema().find_field("at").field_type) == "timestamptz"
        assert str(table.schema().find_field("amount").field_type) == "decimal(10, 2)"
    assert _plain(data.to_pylist()) == EXPECTED


def test_daft_reads_the_table(loaded: Project) -> None:
    """Daft (``daft.read_deltalake`` / ``daft.read_iceberg`` on the PyIceberg table) reads the same rows and types."""
    import daft

    if loaded.lake.FORMAT == "delta":
        frame = daft.read_deltalake(loaded.lake.uri("bronze.src_t"))
    else:
        frame = daft.read_iceberg(loaded.lake.table("bronze.src_t"))  # type: ignore[attr-defined]
    data = frame.to_arrow()
    assert _plain(data.to_pylist()) == EXPECTED
    assert str(data.schema.field("amount").type) == "decimal128(10, 2)"
    assert str(data.schema.field("at").type) == "timestamp[us, tz=UTC]"


def test_duckdb_reads_the_table(loaded: Project) -> None:
    data = loaded.sql('SELECT id, name, amount, "at" FROM bronze.src_t ORDER BY id')
    assert _plain(data.to_pylist()) == EXPECTED
    assert str(data.schema.field("amount").type) == "decimal128(10, 2)"


def test_iceberg_with_a_postgresql_sql_catalog(pg_db: PgDatabase, project_dir: Path) -> None:
    """The SQL catalog on PostgreSQL instead of SQLite (here the source database also holds the catalog's
    tables); another process finds the tables through the same catalog."""
    from pyiceberg.catalog.sql import SqlCatalog

    pg_db.execute("CREATE TABLE t (id int PRIMARY KEY, name text, amount numeric(10,2), at timestamptz)")
    for row in EXPECTED:
        pg_db.execute("INSERT INTO t VALUES (%s, %s, %s, %s)", tuple(row.values()))
    catalog_url = pg_db.url.replace("postgresql://", "postgresql+psycopg2://")
    p = Project(write_project(project_dir, f"""
    lake: {{path: ./lake, format: iceberg, catalog: {{type: sql, uri: '{catalog_url}'}}}}
    sources:
      src: {{type: postgres, url: {pg_db.url}, include: [], tables: {{t: {{mode: full}}}}}}
    """))
    assert p.run().ok
    assert [t.name for t in p.tables()] == ["bronze.src_t"] and p.tables()[0].format == "iceberg"
    catalog = SqlCatalog("lakeforge", uri=catalog_url)
    assert _plain(catalog.load_table(("bronze", "src_t")).scan().to_arrow().to_pylist()) == EXPECTED
    assert ("lakeforge_internal", "runs") in catalog.list_tables("lakeforge_internal")
    catalog.engine.dispose()
    p.lake.close()
