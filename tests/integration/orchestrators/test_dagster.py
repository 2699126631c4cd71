"""``lakeforge.dagster`` for real: ``dagster asset materialize -f defs.py --select '*'`` (DAGSTER_HOME in a
temporary folder, no webserver, no daemon) over a PostgreSQL and a MariaDB source. The lake afterwards equals
the sources; the Dagster instance's event log holds each asset's materialization and each check's result; a
source that is down is retried, a broken model and a failed error-severity check are not; the new-data sensor
asks the sources and requests only what changed."""

from __future__ import annotations

import json
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase, write_project
from tests.integration.orchestrators.shop import (
    BIN,
    CUSTOMERS,
    ORDERS,
    dagster_home,
    env_with,
    revenue_expected,
    run_cli,
    shop_project,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]
EVENTS = Path(__file__).with_name("dagster_events.py")


def materialize(tmp_path: Path, defs: str) -> tuple[int, str, dict[str, Any]]:
    """``dagster asset materialize --select '*'`` on ``defs`` in a fresh DAGSTER_HOME: exit code, output, and
    what the instance recorded (see dagster_events.py)."""
    home = dagster_home(tmp_path / "dagster_home")
    (tmp_path / "defs.py").write_text(textwrap.dedent(defs), encoding="utf-8")
    env = env_with(home, DAGSTER_HOME=str(home))
    done = run_cli([str(BIN / "dagster"), "asset", "materialize", "-f", "defs.py", "--select", "*"], env, tmp_path)
    events = run_cli([sys.executable, str(EVENTS)], env, tmp_path, timeout=120)
    assert events.returncode == 0, events.stderr[-3000:]
    return done.returncode, done.stdout + done.stderr, json.loads(events.stdout)


def test_materialize_all_assets_with_checks(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase) -> None:
    project_dir = shop_project(tmp_path / "project", pg_db, my_db)
    code, output, recorded = materialize(
        tmp_path,
        f"""\
        from lakeforge.dagster import definitions

        defs = definitions({str(project_dir)!r}, schedule="*/15 * * * *")
        """,
    )
    assert code == 0, output[-4000:]
    steps = recorded["steps"]
    for step in ("bronze__crm_customers", "bronze__shop_orders", "silver__customers", "silver__orders",
                 "gold__revenue_by_country"):
        assert steps == {**steps, f"{step}:STEP_SUCCESS": 1}, steps
    assert not [s for s in steps if "FAILURE" in s or "RETRY" in s]
    materialized = recorded["materialized"]
    assert materialized["bronze/crm_customers"]["rows"] == len(CUSTOMERS)
    assert materialized["bronze/shop_orders"]["rows"] == len(ORDERS)
    assert materialized["gold/revenue_by_country"]["rows"] == len(revenue_expected())
    assert recorded["checks"] == {
        "silver/customers:unique_customer_id": {"passed": True, "severity": "ERROR", "status": "pass"},
        "silver/customers:not_null_name": {"passed": True, "severity": "WARN", "status": "pass"},
        "gold/revenue_by_country:not_null_country": {"passed": True, "severity": "ERROR", "status": "pass"},
        "gold/revenue_by_country:revenue_positive": {"passed": True, "severity": "ERROR", "status": "pass"},
    }
    project = Project(project_dir)
    customers = project.sql("select id, name, country from bronze.crm_customers order by id").to_pylist()
    assert [(r["id"], r["name"], r["country"]) for r in customers] == CUSTOMERS
    orders = project.sql("select id, customer_id, amount::varchar as a from bronze.shop_orders order by id")
    assert [(r["id"], r["customer_id"], r["a"]) for r in orders.to_pylist()] == ORDERS
    gold = project.sql("select country, orders, revenue::double as revenue from gold.revenue_by_country")
    assert {r["country"]: (r["orders"], r["revenue"]) for r in gold.to_pylist()} == revenue_expected()


def test_failures_retries_and_failed_checks(tmp_path: Path, pg_db: PgDatabase) -> None:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    pg_db.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, NULL)")
    project_dir = write_project(
        tmp_path / "project",
        f"""\
        lake:
          path: ./lakehouse
        sources:
          crm: {{type: postgres, url: "{pg_db.url}"}}
          down: {{type: postgres, url: "postgresql://postgres@127.0.0.1:9/nowhere"}}
        """,
    )
    models = project_dir / "models" / "silver"
    models.mkdir(parents=True)
    (models / "broken.sql").write_text("select no_such_column from bronze.crm_customers\n")
    (models / "checked.sql").write_text(
        "/* lakeforge\nchecks:\n  - {type: expression, name: id_over_100, expression: id > 100}\n"
        "  - {type: not_null, column: name, severity: warn}\n*/\nselect id, name from bronze.crm_customers\n"
    )
    (models / "after_checked.sql").write_text("select * from silver.checked\n")
    (models / "fine.sql").write_text("select id from bronze.crm_customers\n")
    code, output, recorded = materialize(
        tmp_path,
        f"""\
        from lakeforge.dagster import definitions

        defs = definitions({str(project_dir)!r}, retries=2, retry_delay=0.5,
                           tables={{"bronze.crm_customers": "crm", "bronze.down_things": "down"}})
        """,
    )
    assert code != 0
    steps = recorded["steps"]
    assert steps["bronze__down_things:STEP_UP_FOR_RETRY"] == 2, steps  # transient: retried twice, then failed
    assert steps["bronze__down_things:STEP_FAILURE"] == 1
    assert steps["silver__broken:STEP_FAILURE"] == 1  # terminal: no retry
    assert "silver__broken:STEP_UP_FOR_RETRY" not in steps
    assert steps["silver__fine:STEP_SUCCESS"] == 1
    # the failed error-severity check is a failed, blocking asset check: downstream is not materialized
    assert recorded["checks"] == {
        "silver/checked:id_over_100": {"passed": False, "severity": "ERROR", "status": "fail"},
        "silver/checked:not_null_name": {"passed": False, "severity": "WARN", "status": "warn"},
    }
    assert "silver/checked" in recorded["materialized"]
    assert "silver/after_checked" not in recorded["materialized"]
    assert "bronze/down_things" not in recorded["materialized"]
    assert "source 'down'" in output and "no_such_column" in output
    assert Project(project_dir).sql("select count(*) as n from silver.fine").to_pylist() == [{"n": 2}]


def test_sensor_asks_the_sources_and_requests_what_changed(
    tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home(tmp_path / "dagster_home")))
    import dagster as dg

    from lakeforge.dagster import asset_key, definitions

    project_dir = shop_project(tmp_path / "project", pg_db, my_db)
    defs = definitions(project_dir, schedule="0 * * * *", timezone="Europe/Oslo", sensor_interval=30, running=True)
    schedule = defs.resolve_schedule_def("lakeforge_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 * * * *", "Europe/Oslo")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    sensor = defs.resolve_sensor_def("lakeforge_new_source_data")
    assert sensor.minimum_interval_seconds == 30
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING

    first = sensor(dg.build_sensor_context(cursor=None))
    assert isinstance(first, dg.SensorResult) and first.run_requests
    assert set(first.run_requests[0].asset_selection or []) == {
        asset_key(n) for n in ("bronze.crm_customers", "bronze.shop_orders", "silver.customers", "silver.orders",
                               "gold.revenue_by_country")
    }
    marks = json.loads(first.cursor or "{}")
    assert marks == {"bronze.crm_customers": "4", "bronze.shop_orders": "5"}

    quiet = sensor(dg.build_sensor_context(cursor=first.cursor))
    assert isinstance(quiet, dg.SensorResult) and not quiet.run_requests and quiet.skip_reason

    my_db.execute("INSERT INTO orders VALUES (15, 2, 9.00)")
    changed = sensor(dg.build_sensor_context(cursor=quiet.cursor))
    assert isinstance(changed, dg.SensorResult) and len(changed.run_requests or []) == 1
    request = changed.run_requests[0]  # type: ignore[index]
    assert request.asset_selection == [asset_key("bronze.shop_orders"), asset_key("silver.orders"),
                                       asset_key("gold.revenue_by_country")]
    assert json.loads(changed.cursor or "{}")["bronze.shop_orders"] == "6"
