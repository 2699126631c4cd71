"""Data-quality checks on real Delta tables: each passes on good data and fails, warns or quarantines on
planted bad rows; a broken model stops only its downstream; results are kept per build; the CLI."""

from __future__ import annotations

import datetime as dt
import json
import textwrap
from pathlib import Path
from typing import Any

import pyarrow as pa
from click.testing import CliRunner

from lakeforge import Project
from lakeforge.cli.main import main as cli
from tests.conftest import PgDatabase, write_project

CHECKS = """\
/* lakeforge
checks:
  - {type: not_null, column: [id, country]}
  - {type: unique, column: id}
  - {type: accepted_values, column: status, values: [open, closed]}
  - {type: relationships, column: country, to: silver.countries, field: code}
  - {type: row_count, compare_to: bronze.orders}
  - {type: row_count, source: app.orders, name: row_count_source}
  - {type: freshness, column: loaded_at, max_age: 1h}
  - {type: sql, name: no_big_amounts, sql: "select * from {this} where amount > 1000"}
  - {type: expression, name: amount_positive, expression: amount > 0}
*/
select id, country, status, amount, _lf_extracted_at as loaded_at from bronze.orders
"""


def model(project: Project, name: str, text: str) -> None:
    path = project.path / "models" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")


def put(project: Project, name: str, rows: list[dict[str, Any]], *, age: dt.timedelta = dt.timedelta(0)) -> None:
    stamp = dt.datetime.now(dt.UTC) - age
    table = pa.Table.from_pylist([{**r, "_lf_extracted_at": stamp} for r in rows])
    project.lake.write(name, table.to_batches(), schema=table.schema, mode="overwrite", schema_mode="overwrite")


GOOD = [
    {"id": 1, "country": "NO", "status": "open", "amount": 10},
    {"id": 2, "country": "IT", "status": "closed", "amount": 20},
    {"id": 3, "country": "NO", "status": "open", "amount": 30},
]
BAD = [
    *GOOD,
    {"id": 3, "country": "IT", "status": "open", "amount": 5},  # duplicate id
    {"id": 4, "country": None, "status": "lost", "amount": 5},  # null country, bad status
    {"id": 5, "country": "XX", "status": "open", "amount": 5000},  # unknown country, big amount
    {"id": 6, "country": "IT", "status": "open", "amount": -1},  # negative
]


def checks_project(path: Path, pg_db: PgDatabase) -> Project:
    pg_db.execute("CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 3)")
    project = Project(
        write_project(path, f"lake:\n  path: ./lakehouse\nsources:\n  app:\n    type: postgres\n    url: {pg_db.url}\n")
    )
    put(project, "bronze.countries", [{"code": "NO"}, {"code": "IT"}])
    model(project, "silver/countries.sql", "select code from bronze.countries")
    model(project, "silver/orders.sql", CHECKS)
    model(project, "gold/by_country.sql", "select country, sum(amount) as total from silver.orders group by all")
    return project


def by_name(results: list[Any]) -> dict[str, Any]:
    return {c.check: c for c in results}


def test_every_check_passes_on_good_data_and_fails_on_planted_rows(project_dir: Path, pg_db: PgDatabase) -> None:
    project = checks_project(project_dir, pg_db)
    put(project, "bronze.orders", GOOD)
    good = project.build()
    assert good.ok, [m.error for m in good.models]
    checks = by_name(good.model("silver.orders").checks)
    assert len(checks) == 9
    assert {c.status for c in checks.values()} == {"pass"}, {n: c.message for n, c in checks.items()}

    put(project, "bronze.orders", BAD, age=dt.timedelta(hours=2))
    bad = project.build()
    orders = bad.model("silver.orders")
    assert orders.status == "failed" and "check" in (orders.error or "")
    failing = {n: c.failing_rows for n, c in by_name(orders.checks).items()}
    assert failing == {
        "not_null_id_country": 1,
        "unique_id": 2,
        "accepted_values_status": 1,
        "relationships_country_silver_countries": 1,
        "row_count_bronze_orders": 0,
        "row_count_source": 4,
        "freshness_loaded_at": 1,
        "no_big_amounts": 1,
        "amount_positive": 1,
    }
    statuses = {n: c.status for n, c in by_name(orders.checks).items()}
    assert statuses["row_count_bronze_orders"] == "pass" and statuses["unique_id"] == "fail"
    assert "7 rows, source table app.orders has 3" in by_name(orders.checks)["row_count_source"].message
    # the failing model is written (checks run on the stored table) but its downstream is skipped
    assert bad.model("gold.by_country").status == "skipped"
    assert "upstream silver.orders failed" in (bad.model("gold.by_country").error or "")
    assert bad.model("silver.countries").status == "success"

    # results are kept per build; `checks` shows the newest
    latest = {(r["model"], r["check"]): r for r in project.checks()}
    assert latest[("silver.orders", "unique_id")]["status"] == "fail"
    assert latest[("silver.orders", "unique_id")]["build_id"] == bad.build_id
    history = [r for r in project.lake.read("_lakeforge.check_results").to_pylist() if r["check"] == "unique_id"]
    assert sorted(r["status"] for r in history) == ["fail", "pass"]
    assert {r["build_id"] for r in history} == {good.build_id, bad.build_id}


def test_warn_and_quarantine(project_dir: Path) -> None:
    project = Project(write_project(project_dir, "lake:\n  path: ./lakehouse\n"))
    put(project, "bronze.countries", [{"code": "NO"}, {"code": "IT"}])
    put(project, "bronze.orders", BAD)
    model(project, "silver/countries.sql", "select code from bronze.countries")
    model(
        project,
        "silver/orders.sql",
        """\
        /* lakeforge
        checks:
          - {type: not_null, column: country, on_fail: quarantine}
          - {type: relationships, column: country, to: silver.countries, field: code, on_fail: quarantine}
          - {type: expression, name: amount_positive, expression: amount > 0, on_fail: quarantine}
          - {type: unique, column: id, on_fail: quarantine}
          - {type: accepted_values, column: status, values: [open, closed], severity: warn}
        */
        select id, country, status, amount from bronze.orders
        """,
    )
    model(project, "gold/by_country.sql", "select country, sum(amount) as total from silver.orders group by all")
    result = project.build()
    assert result.ok, [m.error for m in result.models]
    checks = by_name(result.model("silver.orders").checks)
    assert {n: (c.status, c.quarantined_rows) for n, c in checks.items()} == {
        "not_null_country": ("quarantined", 1),
        "relationships_country_silver_countries": ("quarantined", 1),
        "amount_positive": ("quarantined", 1),
        "unique_id": ("quarantined", 2),
        "accepted_values_status": ("pass", 0),  # the 'lost' row was quarantined by not_null first
    }
    good = project.sql("select id, country, amount from silver.orders order by id").to_pylist()
    assert good == [{"id": 1, "country": "NO", "amount": 10}, {"id": 2, "country": "IT", "amount": 20}]
    quarantined = project.sql(
        "select id, _lf_check, _lf_quarantined_at, _lf_build_id from quarantine.silver_orders order by id, _lf_check"
    ).to_pylist()
    assert [(r["id"], r["_lf_check"]) for r in quarantined] == [
        (3, "unique_id"),
        (3, "unique_id"),
        (4, "not_null_country"),
        (5, "relationships_country_silver_countries"),
        (6, "amount_positive"),
    ]
    assert {r["_lf_build_id"] for r in quarantined} == {result.build_id}
    assert project.sql("select * from gold.by_country order by country").to_pylist() == [
        {"country": "IT", "total": 20},
        {"country": "NO", "total": 10},
    ]

    put(project, "bronze.orders", [*GOOD, {"id": 9, "country": "IT", "status": "lost", "amount": 1}])
    warned = project.build()
    assert warned.ok  # a warn check reports but does not fail the model
    assert by_name(warned.model("silver.orders").checks)["accepted_values_status"].status == "warn"


def test_broken_model_stops_only_its_downstream(project_dir: Path) -> None:
    project = Project(write_project(project_dir, "lake:\n  path: ./lakehouse\n"))
    put(project, "bronze.orders", GOOD)
    model(project, "silver/orders.sql", "select id, country, amount\nfrom bronze.orders\nwhere amount >\n  nosuchcol")
    model(project, "gold/a.sql", "select * from silver.orders")
    model(project, "gold/b.sql", "select count(*) as n from gold.a")
    model(project, "gold/fine.sql", "select count(*) as n from bronze.orders")
    result = project.build()
    assert not result.ok
    broken = result.model("silver.orders")
    assert broken.status == "failed"
    assert "silver/orders.sql:4" in (broken.error or "") and "nosuchcol" in (broken.error or "")
    assert {m.model: m.status for m in result.models if m.model.startswith("gold.")} == {
        "gold.a": "skipped",
        "gold.b": "skipped",
        "gold.fine": "success",
    }
    assert "upstream gold.a failed" in (result.model("gold.b").error or "")
    assert project.sql("select n from gold.fine").to_pylist() == [{"n": 3}]
    runs = project.lake.read("_lakeforge.model_runs").to_pylist()
    assert {r["model"]: r["status"] for r in runs} == {
        "gold.a": "skipped",
        "gold.b": "skipped",
        "gold.fine": "success",
        "silver.orders": "failed",
    }

    # the CLI: build exits 1 and names the file; checks and lineage as JSON
    runner = CliRunner()
    done = runner.invoke(cli, ["build", "-p", str(project.path)])
    assert done.exit_code == 1 and "orders.sql:4" in done.output
    (project.path / "models" / "silver" / "orders.sql").write_text(
        "/* lakeforge\nchecks: [{type: unique, column: id}]\n*/\nselect id, country, amount from bronze.orders"
    )
    done = runner.invoke(cli, ["build", "-p", str(project.path), "--select", "silver.orders+"])
    assert done.exit_code == 0, done.output
    done = runner.invoke(cli, ["checks", "-p", str(project.path), "-o", "json"])
    assert done.exit_code == 0
    assert [(r["model"], r["check"], r["status"]) for r in json.loads(done.output)] == [
        ("silver.orders", "unique_id", "pass")
    ]
    done = runner.invoke(cli, ["lineage", "gold.a", "-p", str(project.path), "-o", "json"])
    lineage = json.loads(done.output)
    assert lineage["upstream"] == ["silver.orders", "bronze.orders"] and lineage["downstream"] == ["gold.b"]
    edges = {(r["upstream"], r["model"]) for r in project.lake.read("_lakeforge.lineage").to_pylist()}
    assert edges == {
        ("bronze.orders", "silver.orders"),
        ("silver.orders", "gold.a"),
        ("gold.a", "gold.b"),
        ("bronze.orders", "gold.fine"),
    }
