"""Each materialisation against real Delta and Iceberg tables: table, view, scd2 (three builds), incremental (equal to a
full rebuild, reading only new bronze rows from a real PostgreSQL load), Python models."""

from __future__ import annotations

import datetime as dt
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lakeforge import Project
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.usefixtures("lake_format")


def model(project: Project, name: str, text: str) -> None:
    path = project.path / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def put(project: Project, name: str, rows: list[dict[str, Any]], *, mode: str = "overwrite") -> None:
    """Write a bronze-like table (with ``_lf_extracted_at``) straight into the lake."""
    stamp = dt.datetime.now(dt.UTC)
    table = pa.Table.from_pylist([{**r, "_lf_extracted_at": stamp} for r in rows])
    project.lake.write(
        name,
        table.to_batches(),
        schema=table.schema,
        mode=mode,  # type: ignore[arg-type]
        schema_mode="overwrite" if mode == "overwrite" else "merge",
    )


def rows(project: Project, sql: str) -> list[dict[str, Any]]:
    return list(project.sql(sql).to_pylist())


def lake_project(path: Path, extra: str = "") -> Project:
    return Project(write_project(path, "lake:\n  path: ./lakehouse\n" + extra))


def test_table_replaces_atomically_and_view_is_not_stored(project_dir: Path) -> None:
    project = lake_project(project_dir)
    put(project, "bronze.items", [{"id": 1, "price": 10}, {"id": 2, "price": 20}, {"id": 2, "price": 20}])
    model(project, "silver/items.sql", "select distinct id, price from bronze.items")
    model(
        project,
        "silver/priced.sql",
        "/* lakeforge\nmaterialized: view\n*/\nselect id, price * 2 as double_price from silver.items",
    )
    model(project, "gold/total.sql", "select count(*) as n, sum(double_price) as total from silver.priced")
    first = project.build()
    assert first.ok, [m.error for m in first.models]
    assert not project.lake.exists("silver.priced")  # a view is not stored
    assert first.model("silver.priced").rows == 2
    assert rows(project, "select n, total from gold.total") == [{"n": 2, "total": 60}]
    checkpoint = project.lake.checkpoint("gold.total")
    assert checkpoint is not None and checkpoint.mode == "table"
    assert checkpoint.position["inputs"] == {}  # reads only a view; silver.items is recorded on silver.priced's reader
    read = {"bronze.items": project.lake.version("bronze.items")}
    assert project.lake.checkpoint("silver.items").position["inputs"] == read  # type: ignore[union-attr]
    first_total = project.lake.version("gold.total")

    put(project, "bronze.items", [{"id": 3, "price": 5}])
    second = project.build()
    assert second.ok
    assert rows(project, "select n, total from gold.total") == [{"n": 1, "total": 10}]
    assert project.lake.version("gold.total") > first_total  # one commit (Iceberg: its delete + append snapshots)
    old = project.lake.read("gold.total", version=first_total).to_pylist()  # the replaced version stays readable
    assert old == [{"n": 2, "total": 60}]


def test_scd2_history_across_three_builds(project_dir: Path) -> None:
    project = lake_project(project_dir)
    model(
        project,
        "gold/dim_customer.sql",
        """\
        /* lakeforge
        materialized: scd2
        unique_key: id
        surrogate_key: customer_key
        */
        select id, name, city from bronze.customers
        """,
    )
    put(
        project,
        "bronze.customers",
        [
            {"id": 1, "name": "Ann", "city": "Oslo"},
            {"id": 2, "name": "Bob", "city": "Rome"},
            {"id": 3, "name": "Cid", "city": "Lima"},
        ],
    )
    b1 = project.build()
    assert b1.ok and b1.model("gold.dim_customer").detail == {"opened": 3}
    # build 2: Ann moves, Bob unchanged, Cid deleted, Dee new
    put(
        project,
        "bronze.customers",
        [
            {"id": 1, "name": "Ann", "city": "Bergen"},
            {"id": 2, "name": "Bob", "city": "Rome"},
            {"id": 4, "name": "Dee", "city": "Kyiv"},
        ],
    )
    b2 = project.build()
    assert b2.model("gold.dim_customer").detail == {"opened": 2, "closed": 2}
    # build 3: Ann moves again, Cid comes back, Bob and Dee unchanged
    put(
        project,
        "bronze.customers",
        [
            {"id": 1, "name": "Ann", "city": "Tromso"},
            {"id": 2, "name": "Bob", "city": "Rome"},
            {"id": 3, "name": "Cid", "city": "Cusco"},
            {"id": 4, "name": "Dee", "city": "Kyiv"},
        ],
    )
    b3 = project.build()
    assert b3.model("gold.dim_customer").detail == {"opened": 2, "closed": 1}
    t1, t2, t3 = (b.model("gold.dim_customer") for b in (b1, b2, b3))
    history = rows(
        project,
        "select customer_key, id, city, valid_from, valid_to, is_current "
        "from gold.dim_customer order by id, valid_from",
    )
    starts = [r["valid_from"] for r in history]
    s1, s2, s3 = sorted(set(starts))
    assert [
        (r["customer_key"], r["id"], r["city"], r["valid_from"], r["valid_to"], r["is_current"]) for r in history
    ] == [
        (1, 1, "Oslo", s1, s2, False),
        (4, 1, "Bergen", s2, s3, False),
        (6, 1, "Tromso", s3, None, True),
        (2, 2, "Rome", s1, None, True),  # unchanged: one version
        (3, 3, "Lima", s1, s2, False),
        (7, 3, "Cusco", s3, None, True),  # deleted, then back
        (5, 4, "Kyiv", s2, None, True),
    ]
    assert s1 < s2 < s3
    assert t1.delta_version is not None and t2.delta_version is not None and t3.delta_version is not None
    assert t1.delta_version < t2.delta_version < t3.delta_version
    # a fourth build with nothing changed writes nothing
    b4 = project.build()
    assert b4.model("gold.dim_customer").status == "unchanged"
    assert project.lake.version("gold.dim_customer") == t3.delta_version


def test_python_model(project_dir: Path) -> None:
    project = lake_project(project_dir)
    put(project, "bronze.readings", [{"sensor": "a", "v": 1.0}, {"sensor": "a", "v": 3.0}, {"sensor": "b", "v": 5.0}])
    model(
        project,
        "silver/spread.py",
        """\
        import pyarrow as pa
        import pyarrow.compute as pc

        INPUTS = {"readings": "bronze.readings"}
        CONFIG = {"checks": [{"type": "unique", "column": "sensor"}]}

        def model(readings: pa.Table) -> pa.Table:
            out = readings.group_by("sensor").aggregate([("v", "max"), ("v", "min")])
            return pa.table({"sensor": out["sensor"],
                             "spread": pc.subtract(out["v_max"], out["v_min"])}).sort_by("sensor")
        """,
    )
    model(
        project,
        "silver/ranked.py",
        """\
        import polars as pl

        INPUTS = {"spread": "silver.spread"}
        FORMAT = "polars"

        def model(spread: pl.DataFrame) -> pl.DataFrame:
            return spread.with_columns(pl.col("spread").rank("dense", descending=True).cast(pl.Int64).alias("rank"))
        """,
    )
    model(
        project,
        "silver/broken.py",
        """\
        INPUTS = {"readings": "bronze.readings"}

        def model(readings):
            return 1 / 0
        """,
    )
    result = project.build()
    assert result.model("silver.spread").status == "success"
    assert rows(project, "select * from silver.spread order by sensor") == [
        {"sensor": "a", "spread": 2.0},
        {"sensor": "b", "spread": 0.0},
    ]
    assert rows(project, "select sensor, rank from silver.ranked order by sensor") == [
        {"sensor": "a", "rank": 1},
        {"sensor": "b", "rank": 2},
    ]
    broken = result.model("silver.broken")
    assert broken.status == "failed"
    assert "broken.py:4" in (broken.error or "") and "ZeroDivisionError" in (broken.error or "")


def test_incremental_reads_only_new_rows_and_equals_full_rebuild(project_dir: Path, pg_db: PgDatabase) -> None:
    pg_db.execute("""
        CREATE TABLE orders (id int PRIMARY KEY, customer text NOT NULL, amount numeric(10,2) NOT NULL,
                             updated_at timestamptz NOT NULL DEFAULT now());
        INSERT INTO orders (id, customer, amount, updated_at)
        SELECT g, 'c' || (g % 7), (g * 1.25)::numeric(10,2), '2024-01-01'::timestamptz + g * interval '1 minute'
        FROM generate_series(1, 200) g;
    """)
    project = lake_project(
        project_dir,
        f"""\
sources:
  app:
    type: postgres
    url: {pg_db.url}
    tables:
      orders: {{mode: incremental, cursor: [updated_at]}}
""",
    )
    model(
        project,
        "silver/orders.sql",
        """\
        /* lakeforge
        materialized: incremental
        unique_key: id
        */
        select id, upper(customer) as customer, amount, amount * 2 as doubled, updated_at
        from bronze.app_orders
        """,
    )
    model(
        project,
        "gold/by_customer.sql",
        "select customer, count(*) as n, sum(amount) as total from silver.orders group by all",
    )
    assert project.run().ok
    first = project.build()
    assert first.ok and first.model("silver.orders").rows == 200
    pg_db.execute("""
        UPDATE orders SET amount = amount + 100, updated_at = '2024-06-01' WHERE id IN (3, 150);
        INSERT INTO orders (id, customer, amount, updated_at)
        SELECT g, 'new', 1.00, '2024-06-02'::timestamptz + g * interval '1 second' FROM generate_series(201, 205) g;
    """)
    assert project.run().ok
    second = project.build()
    inc = second.model("silver.orders")
    assert inc.status == "success" and inc.rows == 7  # only the 2 changed + 5 new bronze rows were read
    checkpoint = project.lake.checkpoint("silver.orders")
    assert checkpoint is not None and checkpoint.mode == "incremental"
    assert "bronze.app_orders" in checkpoint.position["watermarks"]
    incremental = rows(project, "select * from silver.orders order by id")
    assert len(incremental) == 205
    assert next(r for r in incremental if r["id"] == 3)["doubled"] == (3 * 1.25 + 100) * 2
    third = project.build()
    assert third.model("silver.orders").status == "unchanged"

    full = project.build(full_refresh=True)
    assert full.ok and full.model("silver.orders").rows == 205
    assert rows(project, "select * from silver.orders order by id") == incremental
    # the gold model over it agrees with the source database
    source = {
        c.upper(): (n, t)
        for c, n, t in pg_db.execute("select customer, count(*), sum(amount) from orders group by customer")
    }
    assert {r["customer"]: (r["n"], r["total"]) for r in rows(project, "select * from gold.by_customer")} == source


def test_incremental_failed_merge_keeps_its_watermark(project_dir: Path) -> None:
    """A build whose merge fails commits neither data nor watermark: the next build reads the same rows."""
    project = lake_project(project_dir)
    put(project, "bronze.events", [{"id": i, "v": i * 10} for i in range(1, 6)])
    sql = "/* lakeforge\nmaterialized: incremental\nunique_key: id\n*/\nselect id, v from bronze.events"
    model(project, "silver/events.sql", sql)
    assert project.build().ok
    version = project.lake.version("silver.events")
    watermark = project.lake.checkpoint("silver.events").position["watermarks"]  # type: ignore[union-attr]
    # two new bronze rows update the same key: the merge must refuse (one target row, two source rows)
    put(project, "bronze.events", [{"id": 2, "v": 21}, {"id": 2, "v": 22}, {"id": 6, "v": 60}], mode="append")
    failed = project.build()
    events = failed.model("silver.events")
    assert events.status == "failed" and "merge failed" in (events.error or "")
    assert project.lake.version("silver.events") == version
    assert project.lake.checkpoint("silver.events").position["watermarks"] == watermark  # type: ignore[union-attr]
    # fixed model (newest value per key): the same window is read again, nothing is lost or doubled
    model(
        project,
        "silver/events.sql",
        sql.replace(
            "from bronze.events", "from bronze.events qualify row_number() over (partition by id order by v desc) = 1"
        ),
    )
    fixed = project.build()
    assert fixed.ok and fixed.model("silver.events").rows == 2
    expected = [
        {"id": 1, "v": 10},
        {"id": 2, "v": 22},
        {"id": 3, "v": 30},
        {"id": 4, "v": 40},
        {"id": 5, "v": 50},
        {"id": 6, "v": 60},
    ]
    assert rows(project, "select id, v from silver.events order by id") == expected
    assert project.build(full_refresh=True).ok
    assert rows(project, "select id, v from silver.events order by id") == expected
