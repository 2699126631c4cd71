"""ML features: a model built as of a date sees no later rows (point-in-time), and an export's manifest
rebuilds the identical file after the source tables changed (Delta time travel)."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import json
import textwrap
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from lakeforge import Project
from lakeforge.errors import ModelError
from tests.conftest import PgDatabase, write_project

pytestmark = pytest.mark.usefixtures("lake_format")

FEATURES = """\
/* lakeforge
as_of:
  silver.orders: ordered_on
*/
select
    c.id as customer_id,
    getvariable('as_of')::date as as_of,
    count(o.id) as frequency,
    coalesce(sum(o.amount), 0) as monetary,
    date_diff('day', max(o.ordered_on), getvariable('as_of')::date) as recency_days
from silver.customers c
left join silver.orders o on o.customer_id = c.id
group by all
"""


def setup(path: Path, pg_db: PgDatabase) -> Project:
    pg_db.execute("""
        CREATE TABLE customers (id int PRIMARY KEY, name text);
        CREATE TABLE orders (id int PRIMARY KEY, customer_id int, ordered_on date, amount numeric(10,2));
        INSERT INTO customers VALUES (1, 'ann'), (2, 'bob'), (3, 'cid');
        INSERT INTO orders VALUES (1, 1, '2004-03-01', 10.00), (2, 1, '2004-11-30', 20.00),
                                  (3, 2, '2004-12-31', 5.50), (4, 2, '2005-01-01', 100.00),
                                  (5, 3, '2005-02-01', 7.00);
    """)
    project = Project(
        write_project(path, f"lake:\n  path: ./lakehouse\nsources:\n  app:\n    type: postgres\n    url: {pg_db.url}\n")
    )
    models = project.path / "models"
    (models / "silver").mkdir(parents=True)
    (models / "gold").mkdir()
    (models / "silver" / "customers.sql").write_text("select id, name from bronze.app_customers")
    (models / "silver" / "orders.sql").write_text("select id, customer_id, ordered_on, amount from bronze.app_orders")
    (models / "gold" / "features.sql").write_text(textwrap.dedent(FEATURES))
    assert project.run().ok
    return project


def features(project: Project) -> dict[int, tuple[int, decimal.Decimal, int | None]]:
    return {
        r["customer_id"]: (r["frequency"], r["monetary"], r["recency_days"])
        for r in project.sql("select * from gold.features").to_pylist()
    }


def test_as_of_build_has_no_leakage_and_export_replays(project_dir: Path, pg_db: PgDatabase, tmp_path: Path) -> None:
    project = setup(project_dir, pg_db)
    as_of = dt.datetime(2005, 1, 1, tzinfo=dt.UTC)
    assert project.build(as_of=as_of).ok
    d = decimal.Decimal
    expected = {1: (2, d("30.00"), 32), 2: (1, d("5.50"), 1), 3: (0, d("0.00"), None)}
    assert features(project) == expected  # the order of 2005-01-01 and later are invisible
    assert project.build().ok  # a normal build: as of now, every order
    assert features(project)[2][:2] == (2, d("105.50"))

    train = tmp_path / "out" / "train.parquet"
    first = project.export("gold.features", to=train, as_of=as_of)
    assert first.rows == 3 and first.as_of.startswith("2005-01-01")
    manifest = json.loads((tmp_path / "out" / "train.parquet.manifest.json").read_text())
    pinned = {n: project.lake.version(n) for n in ("silver.customers", "silver.orders")}
    assert manifest["inputs"] == pinned == first.inputs
    assert manifest["sha256"] == hashlib.sha256(train.read_bytes()).hexdigest()
    exported = pq.read_table(train).to_pylist()
    assert {r["customer_id"]: (r["frequency"], r["monetary"], r["recency_days"]) for r in exported} == expected

    # the sources change: a late-arriving order before the as-of date, a new customer; reload and rebuild
    pg_db.execute("""
        INSERT INTO orders VALUES (6, 3, '2004-06-01', 1000.00);
        INSERT INTO customers VALUES (4, 'dee');
        UPDATE orders SET amount = 999 WHERE id = 1;
    """)
    assert project.run().ok and project.build().ok
    fresh = project.export("gold.features", to=tmp_path / "fresh.parquet", as_of=as_of)
    assert fresh.rows == 4 and fresh.sha256 != first.sha256  # today's lake gives other features

    again = project.export(
        from_manifest=tmp_path / "out" / "train.parquet.manifest.json", to=tmp_path / "again.parquet"
    )
    assert again.sha256 == first.sha256 and again.inputs == first.inputs
    assert pq.read_table(tmp_path / "again.parquet").to_pylist() == exported

    with pytest.raises(ModelError, match="no model gold.nope"):
        project.export("gold.nope", to=tmp_path / "x.parquet")
