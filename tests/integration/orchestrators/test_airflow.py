"""``lakeforge.airflow`` for real: ``airflow dags test`` (Airflow 3, SQLite metadata in a temporary
AIRFLOW_HOME, no webserver, no scheduler) runs DAGs built by ``lakeforge_dag`` over a PostgreSQL and a
MariaDB source. The lake afterwards equals the sources; the task states and try numbers Airflow recorded
show a transient failure (a source that is down) retried and terminal ones (a broken model, a failed check)
failed at once."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pytest

from lakeforge import Project
from tests.conftest import MyDatabase, PgDatabase, write_project
from tests.integration.orchestrators.shop import (
    BIN,
    CUSTOMERS,
    ORDERS,
    env_with,
    revenue_expected,
    run_cli,
    shop_project,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def dags_test(tmp_path: Path, dag_id: str, dag_file: str) -> tuple[str, dict[str, tuple[str, int]]]:
    """Run ``airflow dags test dag_id`` with ``dag_file`` in a fresh AIRFLOW_HOME; its output and, per task,
    the (state, try number) Airflow recorded."""
    home = tmp_path / "airflow"
    (home / "dags").mkdir(parents=True)
    (home / "dags" / f"{dag_id}.py").write_text(textwrap.dedent(dag_file), encoding="utf-8")
    env = env_with(
        home,
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )
    migrate = run_cli([str(BIN / "airflow"), "db", "migrate"], env, tmp_path, timeout=120)
    assert migrate.returncode == 0, migrate.stdout[-2000:] + migrate.stderr[-2000:]
    done = run_cli([str(BIN / "airflow"), "dags", "test", dag_id], env, tmp_path, timeout=240)
    output = done.stdout + done.stderr
    with sqlite3.connect(home / "airflow.db") as db:
        rows = db.execute("SELECT task_id, state, try_number FROM task_instance WHERE dag_id = ?", (dag_id,))
        return output, {task: (state, tries) for task, state, tries in rows}


def test_dag_loads_both_sources_and_builds_gold(tmp_path: Path, pg_db: PgDatabase, my_db: MyDatabase) -> None:
    project_dir = shop_project(tmp_path / "project", pg_db, my_db)
    output, tasks = dags_test(
        tmp_path,
        "lf_shop",
        f"""\
        import datetime as dt
        from lakeforge.airflow import lakeforge_dag

        dag = lakeforge_dag({str(project_dir)!r}, dag_id="lf_shop", schedule="@hourly", retries=1,
                            retry_delay=dt.timedelta(seconds=1))
        """,
    )
    assert tasks == {
        "bronze.crm_customers": ("success", 1),
        "bronze.shop_orders": ("success", 1),
        "silver.customers": ("success", 1),
        "silver.orders": ("success", 1),
        "gold.revenue_by_country": ("success", 1),
    }, output[-4000:]
    # the order came from lineage: gold ran after both silver models, each after its bronze table
    started = [line.split("task_id=")[1].split()[0] for line in output.splitlines() if "[DAG TEST] starting" in line]
    assert started.index("gold.revenue_by_country") == len(started) - 1
    assert started.index("silver.orders") > started.index("bronze.shop_orders")
    assert started.index("silver.customers") > started.index("bronze.crm_customers")

    project = Project(project_dir)
    customers = project.sql("select id, name, country from bronze.crm_customers order by id").to_pylist()
    assert [(r["id"], r["name"], r["country"]) for r in customers] == CUSTOMERS
    orders = project.sql("select id, customer_id, amount::varchar as a from bronze.shop_orders order by id")
    assert [(r["id"], r["customer_id"], r["a"]) for r in orders.to_pylist()] == ORDERS
    gold = project.sql("select country, orders, revenue::double as revenue from gold.revenue_by_country")
    assert {r["country"]: (r["orders"], r["revenue"]) for r in gold.to_pylist()} == revenue_expected()
    checks = {(c["model"], c["check"]): c["status"] for c in project.checks()}
    assert checks[("gold.revenue_by_country", "revenue_positive")] == "pass"
    assert checks[("silver.customers", "unique_customer_id")] == "pass"


def test_transient_failure_is_retried_and_terminal_ones_are_not(tmp_path: Path, pg_db: PgDatabase) -> None:
    pg_db.execute("CREATE TABLE customers (id int PRIMARY KEY, name text)")
    pg_db.execute("INSERT INTO customers VALUES (1, 'Ada'), (2, 'Bo')")
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
    (models / "after_broken.sql").write_text("select * from silver.broken\n")
    (models / "checked.sql").write_text(
        "/* lakeforge\nchecks:\n  - {type: expression, name: id_over_100, expression: id > 100}\n*/\n"
        "select id from bronze.crm_customers\n"
    )
    (models / "fine.sql").write_text("select id, name from bronze.crm_customers\n")
    # the tables are pinned (lake table -> source): parsing the DAG file connects to no source
    output, tasks = dags_test(
        tmp_path,
        "lf_fail",
        f"""\
        import datetime as dt
        from lakeforge.airflow import lakeforge_dag

        dag = lakeforge_dag({str(project_dir)!r}, dag_id="lf_fail", retries=2, retry_delay=dt.timedelta(seconds=1),
                            tables={{"bronze.crm_customers": "crm", "bronze.down_things": "down"}})
        """,
    )
    assert tasks == {
        "bronze.crm_customers": ("success", 1),
        "bronze.down_things": ("failed", 3),  # source down: transient, tried 1 + retries times
        "silver.broken": ("failed", 1),  # a query error: terminal, no retry
        "silver.after_broken": ("upstream_failed", 0),
        "silver.checked": ("failed", 1),  # a failed error-severity check: terminal, no retry
        "silver.fine": ("success", 1),
    }, output[-6000:]
    assert "source 'down'" in output and "127.0.0.1:9" in output
    assert "no_such_column" in output
    assert "check id_over_100 fail" in output
    project = Project(project_dir)
    assert project.sql("select count(*) as n from silver.fine").to_pylist() == [{"n": 2}]
    assert "bronze.down_things" not in project.lake.names()
